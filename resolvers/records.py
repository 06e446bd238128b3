"""What resolvers hand to the schema: plain objects whose attributes are the graph's leaf fields.

Leaf fields are read as attributes (no resolver per leaf); values derived from
several wire fields (``Money``, ``Order.total``) are computed only when asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from protos import catalog_pb2, inventory_pb2
from switchyard.connections import ConnectionRecord, EdgeRecord, PageInfoRecord


def format_cents(cents: int) -> str:
    """``1999`` -> ``"19.99"``; always two decimals."""
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(cents), 100)
    return f"{sign}{whole}.{fraction:02d}"


@dataclass(slots=True)
class MoneyRecord:
    amount: str
    currency: str

    @classmethod
    def of(cls, cents: int, currency: str) -> MoneyRecord:
        return cls(format_cents(cents), currency)


@dataclass(slots=True)
class UserRecord:
    id: str
    name: str
    email: str | None
    tier: str
    created_at: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UserRecord:
        return cls(
            str(data["id"]), data["name"], data.get("email"), data["tier"], data["createdAt"]
        )


@dataclass(slots=True)
class OrderItemRecord:
    product_id: str
    quantity: int
    unit_price_cents: int
    currency: str

    @property
    def unit_price(self) -> MoneyRecord:
        return MoneyRecord.of(self.unit_price_cents, self.currency)


@dataclass(slots=True)
class OrderRecord:
    id: str
    user_id: str
    status: str
    created_at: str
    currency: str
    items: list[OrderItemRecord]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OrderRecord:
        currency = data["currency"]
        return cls(
            str(data["id"]),
            str(data["userId"]),
            data["status"],
            data["createdAt"],
            currency,
            [
                OrderItemRecord(
                    str(item["productId"]), item["quantity"], item["unitPriceCents"], currency
                )
                for item in data["items"]
            ],
        )

    @property
    def total(self) -> MoneyRecord:
        cents = sum(item.quantity * item.unit_price_cents for item in self.items)
        return MoneyRecord.of(cents, self.currency)


@dataclass(slots=True)
class ProductRecord:
    id: str
    name: str
    description: str
    category: str
    price_cents: int
    currency: str

    @classmethod
    def from_message(cls, message: catalog_pb2.Product) -> ProductRecord:
        return cls(
            message.id,
            message.name,
            message.description,
            message.category,
            message.price_cents,
            message.currency,
        )

    @property
    def price(self) -> MoneyRecord:
        return MoneyRecord.of(self.price_cents, self.currency)


@dataclass(slots=True)
class WarehouseStockRecord:
    name: str
    available: int


@dataclass(slots=True)
class StockRecord:
    available: int
    message: inventory_pb2.Stock
    """The service's answer: warehouses are read from it only when asked for."""

    @classmethod
    def from_message(cls, message: inventory_pb2.Stock) -> StockRecord:
        return cls(message.available, message)

    @property
    def warehouses(self) -> list[WarehouseStockRecord]:
        return [WarehouseStockRecord(w.warehouse, w.available) for w in self.message.warehouses]


@dataclass(slots=True)
class ReviewRecord:
    id: str
    product_id: str
    author_id: str
    rating: int
    body: str
    created_at: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReviewRecord:
        return cls(
            str(data["id"]),
            str(data["productId"]),
            str(data["authorId"]),
            data["rating"],
            data["body"],
            data["createdAt"],
        )


@dataclass(slots=True)
class ReviewPageRecord:
    connection: ConnectionRecord
    average_rating: float | None

    @classmethod
    def from_page(cls, page: dict[str, Any] | None) -> ReviewPageRecord:
        """One product's page of the reviews service (None: the service gave none)."""
        return cls(
            connection_from_page(page, "reviews", ReviewRecord.from_json),
            None if page is None else page.get("averageRating"),
        )


def connection_from_page(
    page: dict[str, Any] | None, items_key: str, convert: Callable[[Any], Any]
) -> ConnectionRecord:
    """A REST page (``items_key``, ``pageInfo``, ``totalCount``) as a connection; None is empty."""
    if page is None:
        return ConnectionRecord.of([], end_cursor=None, has_next_page=False, total_count=0)
    page_info = page.get("pageInfo") or {}
    nodes = [convert(item) for item in page.get(items_key, [])]
    end_cursor = page_info.get("endCursor")
    has_next_page = bool(page_info.get("hasNextPage", False))
    # ConnectionRecord.of's record, built without its keyword calls: once per parent's page.
    cursor = end_cursor or ""
    return ConnectionRecord(
        [EdgeRecord(cursor, node) for node in nodes],
        PageInfoRecord(has_next_page, end_cursor),
        page.get("totalCount"),
    )


def orders_page(page: dict[str, Any] | None) -> ConnectionRecord:
    return connection_from_page(page, "orders", OrderRecord.from_json)
