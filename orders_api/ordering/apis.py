"""The orders JSON API (DRF): place an order, read it and its journey; and, for the
fulfillment queue only, take a failed order's units back before its replay.

Thin: validate with an InputSerializer, call one service, render with an
OutputSerializer. Errors are mapped by common.errors.exception_handler.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.auth import bearer_token_check
from common.errors import NotFound
from orders_api.models import Event, Order
from orders_api.ordering import selectors
from orders_api.ordering.clients import (
    CLIENT_SECRET_HEADER,
    client_key,
    client_secret_check,
    idempotency_client,
    session_orders,
)
from orders_api.ordering.idempotency import fingerprint_of, idempotency_key_check
from orders_api.ordering.intake import IdempotencyClaim, order_submit
from orders_api.ordering.order_input import order_input_parse
from orders_api.ordering.reclaim import order_units_reclaim
from orders_api.web.fast_lane import PRE_ADMISSION_SCOPE_KEY
from orders_api.web.schema import error_responses


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer, nothing coerced: "2", 2.0 and true are refused."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


TOKEN_PARAMETER = OpenApiParameter(
    "token",
    OpenApiTypes.STR,
    OpenApiParameter.QUERY,
    description="The order's access token (from the 202's status_url).",
)


class OrderCreateApi(APIView):
    class InputSerializer(serializers.Serializer):
        sku = serializers.CharField(max_length=32)
        quantity = StrictIntegerField(min_value=1)
        email = serializers.EmailField(max_length=254)

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            # Limits from settings, read per request (and shown in the schema).
            super().__init__(*args, **kwargs)
            self.fields["sku"] = serializers.ChoiceField(
                choices=sorted(settings.SALE_PRODUCTS.values())
            )
            self.fields["quantity"] = StrictIntegerField(
                min_value=1, max_value=settings.MAX_QUANTITY_PER_ORDER
            )

    class OutputSerializer(serializers.Serializer):
        id = serializers.UUIDField()
        number = serializers.CharField()
        status = serializers.CharField()
        status_url = serializers.CharField()
        ws_url = serializers.CharField()
        page_url = serializers.CharField()

    @extend_schema(
        operation_id="order_create",
        request=InputSerializer,
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=True,
                description="A unique key per order attempt (a UUID); keys live 24 h.",
            ),
            OpenApiParameter(
                CLIENT_SECRET_HEADER,
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                required=False,
                description=(
                    "A random secret of the client's own (16+ characters, a UUID), "
                    "the same on every request: the client's Idempotency-Keys are "
                    "its alone. Without one, the session's, else the address's."
                ),
            ),
        ],
        responses={
            202: OutputSerializer,
            **error_responses(400, 404, 409, 413, 415, 422, 429, 503),
        },
    )
    def post(self, request: Request) -> Response:
        data = order_input_parse(request.data)
        key = idempotency_key_check(request.headers.get("Idempotency-Key"))
        secret = client_secret_check(request.headers.get(CLIENT_SECRET_HEADER))
        slug = {sku: slug for slug, sku in settings.SALE_PRODUCTS.items()}.get(data.sku)
        if slug is None:
            raise NotFound(f"There is no sale of {data.sku!r}.")
        submitted = order_submit(
            slug=slug,
            quantity=data.quantity,
            email=data.email,
            client=client_key(request),
            traceparent=request.headers.get("traceparent"),
            idempotency=IdempotencyClaim(
                scope="POST /api/orders/",
                client=idempotency_client(request, secret=secret),
                key=key,
                fingerprint=fingerprint_of(
                    method="POST", path="/api/orders/", payload=request.data
                ),
            ),
            # The ASGI fast lane's verdict for this request, if it asked Redis.
            pre=(request.META.get("asgi.scope") or {}).get(PRE_ADMISSION_SCOPE_KEY),
        )
        stored, replayed = submitted.response, submitted.replayed
        headers = {"Idempotent-Replayed": "true"} if replayed else {}
        if stored.status == 202:
            headers["Location"] = stored.body["status_url"]
            # The stored body is the OutputSerializer's shape already (presentation).
            return Response(stored.body, status=202, headers=headers)
        return Response(stored.body, status=stored.status, headers=headers)


def _order_visible(request: Request, order_id: str) -> Order:
    """The order for its session or the holder of its ?token= (401/403/404 else)."""
    return selectors.order_get_visible(
        order_id=order_id,
        token=request.query_params.get("token"),
        session_orders=session_orders(request),
    )


class OrderDetailApi(APIView):
    class OutputSerializer(serializers.Serializer):
        id = serializers.UUIDField()
        number = serializers.CharField()
        status = serializers.CharField()
        sku = serializers.CharField()
        name = serializers.CharField()
        quantity = serializers.IntegerField()
        unit_price = serializers.DecimalField(max_digits=10, decimal_places=2)
        total = serializers.DecimalField(max_digits=12, decimal_places=2)
        created_at = serializers.DateTimeField()
        updated_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="order_retrieve",
        parameters=[TOKEN_PARAMETER],
        responses={200: OutputSerializer, **error_responses(401, 403, 404)},
    )
    def get(self, request: Request, order_id: str) -> Response:
        order = _order_visible(request, order_id)
        return Response(self.OutputSerializer(order).data)


class OrderJourneyApi(APIView):
    class OutputSerializer(serializers.ModelSerializer):
        # Each event in its envelope, and whether it changed the order's status.
        # The stubs see Serializer.data overridden; DRF's metaclass takes declared
        # fields out of the class body, so the property stays and `data` is a field.
        data = serializers.DictField()  # type: ignore[assignment]

        class Meta:
            model = Event
            fields = [
                "id",
                "type",
                "source",
                "time",
                "trace_id",
                "version",
                "data",
                "applied",
            ]

    @extend_schema(
        operation_id="order_journey",
        parameters=[TOKEN_PARAMETER],
        responses={200: OutputSerializer(many=True), **error_responses(401, 403, 404)},
    )
    def get(self, request: Request, order_id: str) -> Response:
        journey = selectors.order_journey(order=_order_visible(request, order_id))
        return Response(self.OutputSerializer(journey, many=True).data)


class OrderReclaimApi(APIView):
    """POST: a failed order takes its units back from the sale, before the fulfillment
    queue replays its dead letter (ordering/reclaim.py). 200: it may ship (units
    taken back, or it had none to take); 409 `units_gone`: it must not.

    Not in the public schema: internal token only, never routed by the edge.
    """

    class OutputSerializer(serializers.Serializer):
        number = serializers.CharField()
        status = serializers.CharField()
        reclaimed = serializers.IntegerField()

    @extend_schema(exclude=True)
    def post(self, request: Request, number: str) -> Response:
        bearer_token_check(
            request=request, expected=settings.INTERNAL_API_TOKEN, realm="orders"
        )
        reclaimed = order_units_reclaim(number=number)
        order = reclaimed.order
        return Response(
            self.OutputSerializer(
                {
                    "number": order.number,
                    "status": order.status,
                    "reclaimed": reclaimed.units,
                }
            ).data
        )
