"""The inventory gRPC service, ``demo.inventory.v1.Inventory``.

- ``BatchGetStock``: the stock of the known products among ``product_ids``, in request
  order; products without a stock record are absent. ``available`` is the sum over
  the warehouses.

Run it with ``python -m services.run inventory --port 7005``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import grpc.aio

from protos import inventory_pb2, inventory_pb2_grpc
from services.data import DemoData, Stock
from services.faults import FaultConfig
from services.grpc_server import build_grpc_server, check_batch_size

SERVICE_NAME = "inventory"
FULL_SERVICE_NAME = "demo.inventory.v1.Inventory"


def stock_message(stock: Stock) -> Any:
    return inventory_pb2.Stock(
        product_id=stock.product_id,
        available=stock.available,
        warehouses=[
            inventory_pb2.WarehouseStock(warehouse=w.warehouse, available=w.available)
            for w in stock.warehouses
        ],
    )


class InventoryServicer:
    """Implements ``demo.inventory.v1.Inventory`` over the generated stock records."""

    def __init__(self, data: DemoData) -> None:
        self._by_product_id = {s.product_id: stock_message(s) for s in data.stocks}

    async def BatchGetStock(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        await check_batch_size(request.product_ids, context)
        ids = dict.fromkeys(request.product_ids)
        return inventory_pb2.BatchGetStockResponse(
            stocks=[self._by_product_id[i] for i in ids if i in self._by_product_id]
        )


# The generated module is untyped.
_add_servicer: Callable[[object, grpc.aio.Server], None] = (
    inventory_pb2_grpc.add_InventoryServicer_to_server
)


async def create_server(data: DemoData, *, faults: FaultConfig | None = None) -> grpc.aio.Server:
    """The inventory server with health and admin; bind a port and start it."""
    servicer = InventoryServicer(data)
    return await build_grpc_server(
        SERVICE_NAME,
        FULL_SERVICE_NAME,
        lambda server: _add_servicer(servicer, server),
        faults=faults,
    )
