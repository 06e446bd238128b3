"""Client for the inventory gRPC service (demo.inventory.v1.Inventory)."""

from __future__ import annotations

from protos import inventory_pb2
from switchyard import Service
from switchyard.upstream import CallScope, GrpcRequest, Upstream

INVENTORY = Service("inventory")

_BATCH_GET = "/demo.inventory.v1.Inventory/BatchGetStock"


async def stock_by_product(
    upstream: Upstream, product_ids: list[str], scope: CallScope
) -> dict[str, inventory_pb2.Stock]:
    """Stock by product id; products without a stock record are absent."""
    request = GrpcRequest(
        _BATCH_GET,
        inventory_pb2.BatchGetStockRequest(product_ids=product_ids),
        inventory_pb2.BatchGetStockResponse,
    )
    answer: inventory_pb2.BatchGetStockResponse = await upstream.call(request, scope)
    return {stock.product_id: stock for stock in answer.stocks}
