"""The orders JSON API (DRF). Thin: validate with an InputSerializer, call one service,
render with an OutputSerializer. Errors are mapped by exceptions.exception_handler.
"""

from __future__ import annotations

import hmac
from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orders_api import events, selectors, services
from orders_api.admission import rate_limit_hit
from orders_api.clients import client_key, session_orders
from orders_api.exceptions import (
    Forbidden,
    InvalidInput,
    NotAuthenticated,
    NotFound,
    RateLimited,
)
from orders_api.idempotency import (
    StoredResponse,
    fingerprint_of,
    idempotency_key_check,
    idempotent_call,
)


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField()
    detail = serializers.CharField()
    fields = serializers.DictField(required=False)


def _errors(*statuses: int) -> dict[int, OpenApiResponse]:
    return {status: OpenApiResponse(ErrorSerializer) for status in statuses}


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer, nothing coerced: "2", 2.0 and true are refused."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


def rate_limit_check(request: Request) -> None:
    retry_after = rate_limit_hit(client=client_key(request))
    if retry_after:
        raise RateLimited(
            "Too many orders from you at once; try again shortly.",
            retry_after=retry_after,
        )


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
            )
        ],
        responses={
            202: OutputSerializer,
            **_errors(400, 404, 409, 413, 415, 422, 429, 503),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        key = idempotency_key_check(request.headers.get("Idempotency-Key"))
        rate_limit_check(request)
        slug = {sku: slug for slug, sku in settings.SALE_PRODUCTS.items()}.get(
            data["sku"]
        )
        if slug is None:
            raise NotFound(f"There is no sale of {data['sku']!r}.")
        trace_id = events.trace_id_of_request(request.headers.get("traceparent"))

        def place(record: Any) -> StoredResponse:
            placed = services.order_place(
                slug=slug,
                quantity=data["quantity"],
                email=data["email"],
                trace_id=trace_id,
                idempotency=record,
            )
            body = services.order_accepted_body(order=placed.order, token=placed.token)
            return StoredResponse(202, body)

        stored, replayed = idempotent_call(
            scope="POST /api/orders/",
            key=key,
            fingerprint=fingerprint_of(
                method="POST", path="/api/orders/", payload=request.data
            ),
            call=place,
        )
        headers = {"Idempotent-Replayed": "true"} if replayed else {}
        if stored.status == 202:
            headers["Location"] = stored.body["status_url"]
            body = self.OutputSerializer(stored.body).data
            return Response(body, status=202, headers=headers)
        return Response(stored.body, status=stored.status, headers=headers)


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
        responses={200: OutputSerializer, **_errors(401, 403, 404)},
    )
    def get(self, request: Request, order_id: str) -> Response:
        order = selectors.order_get_visible(
            order_id=order_id,
            token=request.query_params.get("token"),
            session_orders=session_orders(request),
        )
        return Response(self.OutputSerializer(order).data)


class OrderJourneyApi(APIView):
    class OutputSerializer(serializers.Serializer):
        id = serializers.UUIDField()
        type = serializers.CharField()
        source = serializers.CharField()
        time = serializers.DateTimeField()
        trace_id = serializers.CharField()
        version = serializers.IntegerField()
        data = serializers.DictField()
        applied = serializers.BooleanField()

    @extend_schema(
        operation_id="order_journey",
        parameters=[TOKEN_PARAMETER],
        responses={200: OutputSerializer(many=True), **_errors(401, 403, 404)},
    )
    def get(self, request: Request, order_id: str) -> Response:
        order = selectors.order_get_visible(
            order_id=order_id,
            token=request.query_params.get("token"),
            session_orders=session_orders(request),
        )
        journey = selectors.order_journey(order=order)
        return Response(self.OutputSerializer(journey, many=True).data)


class SaleDetailApi(APIView):
    class OutputSerializer(serializers.Serializer):
        sale = serializers.CharField()
        name = serializers.CharField()
        status = serializers.CharField()
        allocated = serializers.IntegerField()
        remaining = serializers.IntegerField()
        sold_out = serializers.BooleanField()
        units_sold = serializers.IntegerField()
        accepted = serializers.IntegerField()
        queued = serializers.IntegerField()
        in_warehouse = serializers.IntegerField()
        fulfilled = serializers.IntegerField()
        failed = serializers.IntegerField()
        turned_away = serializers.IntegerField()

    @extend_schema(
        operation_id="sale_retrieve",
        responses={200: OutputSerializer, **_errors(404)},
    )
    def get(self, request: Request, slug: str) -> Response:
        sale = selectors.sale_current(slug=slug)
        if sale is None:
            raise NotFound(f"No sale of {slug!r}.")
        return Response(self.OutputSerializer(selectors.sale_board(sale=sale)).data)


MAX_ORDERS_PER_PAGE = 5000


def internal_token_check(request: Request) -> None:
    """The internal token (shared with the shop's internal API): 401 none, 403 wrong."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("Send Authorization: Bearer <token>.")
    expected = settings.INTERNAL_API_TOKEN.encode()
    if not hmac.compare_digest(token.strip().encode(), expected):
        raise Forbidden("That token is not valid here.")


class SaleOrderListApi(APIView):
    """The current sale's orders, for other services (the sale run's reconciliation).

    Not in the public schema: it needs the internal token and shows e-mail addresses.
    """

    class InputSerializer(serializers.Serializer):
        offset = serializers.IntegerField(min_value=0, default=0)
        limit = serializers.IntegerField(
            min_value=1, max_value=MAX_ORDERS_PER_PAGE, default=1000
        )

    class SaleSerializer(serializers.Serializer):
        id = serializers.IntegerField(source="pk")
        slug = serializers.CharField()
        sku = serializers.CharField()
        status = serializers.CharField()
        units_allocated = serializers.IntegerField()
        units_sold = serializers.IntegerField()
        opened_at = serializers.DateTimeField()

    class OrderSerializer(serializers.Serializer):
        id = serializers.UUIDField()
        number = serializers.CharField()
        email = serializers.EmailField()
        sku = serializers.CharField()
        quantity = serializers.IntegerField()
        status = serializers.CharField()
        created_at = serializers.DateTimeField()

    @extend_schema(exclude=True)
    def get(self, request: Request, slug: str) -> Response:
        internal_token_check(request)
        unknown = sorted(set(request.query_params) - {"offset", "limit"})
        if unknown:
            raise InvalidInput(f"Unknown parameters: {', '.join(unknown)}.")
        query = self.InputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        offset, limit = query.validated_data["offset"], query.validated_data["limit"]
        sale = selectors.sale_current(slug=slug)
        if sale is None:
            raise NotFound(f"No sale of {slug!r}.")
        orders = selectors.order_list_for_sale(sale=sale, offset=offset, limit=limit)
        return Response(
            {
                "sale": self.SaleSerializer(sale).data,
                "orders": self.OrderSerializer(orders, many=True).data,
                "next_offset": offset + limit if len(orders) == limit else None,
            }
        )
