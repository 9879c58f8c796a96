"""What the OpenAPI schema says of every error: the one body of common.errors."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField()
    detail = serializers.CharField()
    # The stubs see Serializer.fields overridden; DRF's metaclass takes declared
    # fields out of the class body, so the property stays and `fields` is a field.
    fields = serializers.DictField(required=False)  # type: ignore[assignment]


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    return {status: OpenApiResponse(ErrorSerializer) for status in statuses}
