"""The sale's JSON API: its board's figures (public) and its orders (internal).

Thin, like ordering/apis.py: one selector each; errors mapped by common.errors.
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.auth import bearer_token_check
from common.errors import InvalidRequest, NotFound
from orders_api.models import Sale
from orders_api.sales import selectors
from orders_api.web.schema import error_responses


def _sale_or_404(slug: str) -> Sale:
    sale = selectors.sale_current(slug=slug)
    if sale is None:
        raise NotFound(f"No sale of {slug!r}.")
    return sale


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
        responses={200: OutputSerializer, **error_responses(404)},
    )
    def get(self, request: Request, slug: str) -> Response:
        sale = _sale_or_404(slug)
        return Response(self.OutputSerializer(selectors.sale_board(sale=sale)).data)


MAX_ORDERS_PER_PAGE = 5000


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
        # The token the shop's internal API takes too: 401 none, 403 a wrong one.
        bearer_token_check(
            request=request, expected=settings.INTERNAL_API_TOKEN, realm="orders"
        )
        unknown = sorted(set(request.query_params) - {"offset", "limit"})
        if unknown:
            raise InvalidRequest(f"Unknown parameters: {', '.join(unknown)}.")
        query = self.InputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        offset, limit = query.validated_data["offset"], query.validated_data["limit"]
        sale = _sale_or_404(slug)
        orders = selectors.order_list_for_sale(sale=sale, offset=offset, limit=limit)
        return Response(
            {
                "sale": self.SaleSerializer(sale).data,
                "orders": self.OrderSerializer(orders, many=True).data,
                "next_offset": offset + limit if len(orders) == limit else None,
            }
        )
