"""Client for the catalog gRPC service (demo.catalog.v1.Catalog)."""

from __future__ import annotations

from protos import catalog_pb2
from switchyard import Service
from switchyard.upstream import CallScope, GrpcRequest, Upstream

CATALOG = Service("catalog")

_BATCH_GET = "/demo.catalog.v1.Catalog/BatchGetProducts"
_SEARCH = "/demo.catalog.v1.Catalog/SearchProducts"


async def products_by_id(
    upstream: Upstream, ids: list[str], scope: CallScope
) -> dict[str, catalog_pb2.Product]:
    """Products by id; unknown ids are absent from the answer."""
    request = GrpcRequest(
        _BATCH_GET,
        catalog_pb2.BatchGetProductsRequest(ids=ids),
        catalog_pb2.BatchGetProductsResponse,
    )
    answer: catalog_pb2.BatchGetProductsResponse = await upstream.call(request, scope)
    return {product.id: product for product in answer.products}


async def search_products(
    upstream: Upstream,
    query: str,
    category: str,
    page_size: int,
    page_token: str,
    scope: CallScope,
) -> catalog_pb2.SearchProductsResponse:
    """One page of products matching ``query`` (empty matches all) in ``category``."""
    request = GrpcRequest(
        _SEARCH,
        catalog_pb2.SearchProductsRequest(
            query=query, category=category, page_size=page_size, page_token=page_token
        ),
        catalog_pb2.SearchProductsResponse,
    )
    answer: catalog_pb2.SearchProductsResponse = await upstream.call(request, scope)
    return answer
