"""What resolvers hand to the schema: plain objects whose attributes are the graph's leaf fields.

Leaf fields are read as attributes (no resolver per leaf); values derived from
several wire fields (``Money``, ``Order.total``) are computed only when asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from protos import catalog_pb2, inventory_pb2


def format_cents(cents: int) -> str:
    """``1999`` -> ``"19.99"``; always two decimals."""
    sign = "-" if cents < 0 else ""
    whole, fraction = divmod(abs(cents), 100)
    return f"{sign}{whole}.{fraction:02d}"


@dataclass(frozen=True, slots=True)
class MoneyRecord:
    amount: str
    currency: str

    @classmethod
    def of(cls, cents: int, currency: str) -> MoneyRecord:
        return cls(format_cents(cents), currency)


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: str
    name: str
    email: str | None
    tier: str
    created_at: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UserRecord:
        return cls(
            id=str(data["id"]),
            name=data["name"],
            email=data.get("email"),
            tier=data["tier"],
            created_at=data["createdAt"],
        )


@dataclass(frozen=True, slots=True)
class OrderItemRecord:
    product_id: str
    quantity: int
    unit_price_cents: int
    currency: str

    @property
    def unit_price(self) -> MoneyRecord:
        return MoneyRecord.of(self.unit_price_cents, self.currency)


@dataclass(frozen=True, slots=True)
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
            id=str(data["id"]),
            user_id=str(data["userId"]),
            status=data["status"],
            created_at=data["createdAt"],
            currency=currency,
            items=[
                OrderItemRecord(
                    product_id=str(item["productId"]),
                    quantity=item["quantity"],
                    unit_price_cents=item["unitPriceCents"],
                    currency=currency,
                )
                for item in data["items"]
            ],
        )

    @property
    def total(self) -> MoneyRecord:
        cents = sum(item.quantity * item.unit_price_cents for item in self.items)
        return MoneyRecord.of(cents, self.currency)


@dataclass(frozen=True, slots=True)
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
            id=message.id,
            name=message.name,
            description=message.description,
            category=message.category,
            price_cents=message.price_cents,
            currency=message.currency,
        )

    @property
    def price(self) -> MoneyRecord:
        return MoneyRecord.of(self.price_cents, self.currency)


@dataclass(frozen=True, slots=True)
class WarehouseStockRecord:
    name: str
    available: int


@dataclass(frozen=True, slots=True)
class StockRecord:
    available: int
    warehouses: list[WarehouseStockRecord]

    @classmethod
    def from_message(cls, message: inventory_pb2.Stock) -> StockRecord:
        return cls(
            available=message.available,
            warehouses=[
                WarehouseStockRecord(name=w.warehouse, available=w.available)
                for w in message.warehouses
            ],
        )


@dataclass(frozen=True, slots=True)
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
            id=str(data["id"]),
            product_id=str(data["productId"]),
            author_id=str(data["authorId"]),
            rating=data["rating"],
            body=data["body"],
            created_at=data["createdAt"],
        )


@dataclass(frozen=True, slots=True)
class PageInfoRecord:
    has_next_page: bool
    end_cursor: str | None


@dataclass(frozen=True, slots=True)
class EdgeRecord:
    cursor: str
    node: Any


@dataclass(frozen=True, slots=True)
class ConnectionRecord:
    edges: list[EdgeRecord]
    page_info: PageInfoRecord
    total_count: int | None

    @classmethod
    def of(
        cls, nodes: list[Any], end_cursor: str | None, has_next_page: bool, total_count: int | None
    ) -> ConnectionRecord:
        """A page whose edges all carry the page's continuation cursor."""
        cursor = end_cursor or ""
        return cls(
            edges=[EdgeRecord(cursor, node) for node in nodes],
            page_info=PageInfoRecord(has_next_page=has_next_page, end_cursor=end_cursor),
            total_count=total_count,
        )


EMPTY_CONNECTION = ConnectionRecord(
    edges=[], page_info=PageInfoRecord(has_next_page=False, end_cursor=None), total_count=None
)
"""What ``first: 0`` answers, without calling any upstream."""


@dataclass(frozen=True, slots=True)
class ReviewPageRecord:
    connection: ConnectionRecord
    average_rating: float | None
