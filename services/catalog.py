"""The catalog gRPC service, ``demo.catalog.v1.Catalog``.

- ``BatchGetProducts``: the known products among ``ids``, in request order.
- ``SearchProducts``: products (ascending numeric id) whose name or description contains
  ``query`` case-insensitively (empty matches all), in ``category`` when given;
  ``page_size`` 0 means 20, larger than 100 means 100, negative is INVALID_ARGUMENT.

Run it with ``python -m services.run catalog --port 7004``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import grpc.aio

from protos import catalog_pb2, catalog_pb2_grpc
from services.data import DemoData, Product
from services.faults import FaultConfig
from services.grpc_server import build_grpc_server, check_batch_size
from services.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, InvalidCursor, paginate

SERVICE_NAME = "catalog"
FULL_SERVICE_NAME = "demo.catalog.v1.Catalog"


def product_message(product: Product) -> Any:
    return catalog_pb2.Product(
        id=product.id,
        name=product.name,
        description=product.description,
        price_cents=product.price_cents,
        currency=product.currency,
        category=product.category,
    )


class CatalogServicer:
    """Implements ``demo.catalog.v1.Catalog`` over the generated products."""

    def __init__(self, data: DemoData) -> None:
        self._products = [(p, product_message(p)) for p in data.products]
        self._by_id = {p.id: message for p, message in self._products}
        self._haystacks = [f"{p.name}\n{p.description}".lower() for p, _ in self._products]

    async def BatchGetProducts(
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        await check_batch_size(request.ids, context)
        ids = dict.fromkeys(request.ids)
        return catalog_pb2.BatchGetProductsResponse(
            products=[self._by_id[i] for i in ids if i in self._by_id]
        )

    async def SearchProducts(
        self, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Any:
        if request.page_size < 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "page_size must not be negative")
        page_size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        query = request.query.lower()
        matches = [
            message
            for (product, message), haystack in zip(self._products, self._haystacks, strict=True)
            if query in haystack and (not request.category or product.category == request.category)
        ]
        try:
            window = paginate(len(matches), page_size, request.page_token or None)
        except InvalidCursor:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "invalid page_token")
        return catalog_pb2.SearchProductsResponse(
            products=matches[window.start : window.stop],
            next_page_token=window.end_cursor if window.has_next_page else "",
            total_size=len(matches),
        )


# The generated module is untyped.
_add_servicer: Callable[[object, grpc.aio.Server], None] = (
    catalog_pb2_grpc.add_CatalogServicer_to_server
)


async def create_server(data: DemoData, *, faults: FaultConfig | None = None) -> grpc.aio.Server:
    """The catalog server with health and admin; bind a port and start it."""
    servicer = CatalogServicer(data)
    return await build_grpc_server(
        SERVICE_NAME,
        FULL_SERVICE_NAME,
        lambda server: _add_servicer(servicer, server),
        faults=faults,
    )
