"""The graph's object types and the edges between services, as docs/demo-contract.md fixes them.

Leaf fields are plain attributes of the records the clients' answers become;
a field served by another service than its parent is a declared edge (batched
per request, nullable so that one failing service nulls only its own fields).
"""

from __future__ import annotations

from enum import Enum

import strawberry

from resolvers.records import (
    OrderRecord,
    ProductRecord,
    ReviewPageRecord,
    StockRecord,
    UserRecord,
    orders_page,
)
from switchyard import (
    PRIVATE,
    BatchEdge,
    Connection,
    PagedEdge,
    cache_control,
    cost,
    decimal_id,
    list_size,
    owner_or_admin,
)
from upstreams import MAX_BATCH, accounts, catalog, inventory, orders, reviews, shipping

# Every id the services know is a decimal integer (docs/demo-contract.md): each edge checks
# its keys with decimal_id, so no other value (a comma-joined list...) is ever sent.

user_edge = BatchEdge(
    "users",
    service=accounts.ACCOUNTS,
    fetch=accounts.users_by_id,
    convert=UserRecord.from_json,
    max_batch=MAX_BATCH,
    parse_key=decimal_id,
)
order_edge = BatchEdge(
    "orders",
    service=orders.ORDERS,
    fetch=orders.orders_by_id,
    convert=OrderRecord.from_json,
    max_batch=MAX_BATCH,
    parse_key=decimal_id,
)
product_edge = BatchEdge(
    "products",
    service=catalog.CATALOG,
    fetch=catalog.products_by_id,
    convert=ProductRecord.from_message,
    max_batch=MAX_BATCH,
    parse_key=decimal_id,
)
stock_edge = BatchEdge(
    "stock",
    service=inventory.INVENTORY,
    fetch=inventory.stock_by_product,
    convert=StockRecord.from_message,
    max_batch=MAX_BATCH,
    parse_key=decimal_id,
)
user_orders_edge = PagedEdge(
    "User.orders",
    service=orders.ORDERS,
    fetch=orders.orders_of_users,
    convert=orders_page,
    max_batch=MAX_BATCH,
    parse_key=decimal_id,
)
product_reviews_edge = PagedEdge(
    "Product.reviews",
    service=reviews.REVIEWS,
    fetch=reviews.reviews_of_products,
    convert=ReviewPageRecord.from_page,
    connection_of=lambda page: page.connection,
    max_batch=MAX_BATCH,
    parse_key=decimal_id,
)
shipment_edge: BatchEdge[str, shipping.ShipmentRecord] = BatchEdge(
    "Order.shipment",
    service=shipping.SHIPPING,
    fetch=shipping.shipments_of_orders,
    max_batch=MAX_BATCH,
    parse_key=decimal_id,
)


def own_id(user: UserRecord) -> str:
    return user.id


@strawberry.enum
class Tier(Enum):
    FREE = "FREE"
    PRO = "PRO"
    ENTERPRISE = "ENTERPRISE"


@strawberry.enum
class OrderStatus(Enum):
    PENDING = "PENDING"
    PAID = "PAID"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"


@strawberry.enum
class ShipmentStatus(Enum):
    LABEL_CREATED = "LABEL_CREATED"
    IN_TRANSIT = "IN_TRANSIT"
    OUT_FOR_DELIVERY = "OUT_FOR_DELIVERY"
    DELIVERED = "DELIVERED"
    EXCEPTION = "EXCEPTION"


@strawberry.type(directives=[cache_control(inherit_max_age=True)])
class Money:
    amount: str = strawberry.field(description='Decimal string with two decimals: "19.99".')
    currency: str


@strawberry.type
class User:
    id: strawberry.ID
    name: str
    email: str | None = strawberry.field(
        extensions=[owner_or_admin(own_id)], directives=[cache_control(scope=PRIVATE)]
    )
    tier: Tier
    created_at: str
    orders: Connection[Order] | None = user_orders_edge.connection_field(
        parent_id=own_id,
        default_first=10,
        extensions=[owner_or_admin(own_id)],
        directives=[cache_control(scope=PRIVATE)],
    )


@strawberry.type
class Order:
    id: strawberry.ID
    status: OrderStatus
    created_at: str
    customer: User | None = user_edge.field(key=lambda order: order.user_id)
    # An order has 1 to 4 items in the demo data: estimates stay upper bounds.
    items: list[OrderItem] = strawberry.field(directives=[list_size(assumed_size=4)])
    total: Money
    shipment: Shipment | None = shipment_edge.field(key=lambda order: order.id)


@strawberry.type
class Shipment:
    carrier: str
    status: ShipmentStatus
    tracking_number: str
    estimated_delivery: str | None = strawberry.field(
        description="RFC 3339 date; absent once delivered."
    )


@strawberry.type
class OrderItem:
    quantity: int
    unit_price: Money
    product: Product | None = product_edge.field(key=lambda item: item.product_id)


@strawberry.type
class Stock:
    available: int
    # A product is stocked in 1 to 3 of the 5 demo warehouses.
    warehouses: list[WarehouseStock] = strawberry.field(directives=[list_size(assumed_size=3)])


@strawberry.type
class WarehouseStock:
    name: str
    available: int


# Public catalogue data: a GET answer of products alone may be cached a minute.
@strawberry.type(directives=[cache_control(max_age=60)])
class Product:
    id: strawberry.ID
    name: str
    description: str
    category: str
    price: Money
    stock: Stock | None = stock_edge.field(key=lambda product: product.id)
    reviews: Connection[Review] | None = product_reviews_edge.connection_field(
        parent_id=lambda product: product.id, default_first=5
    )
    # A scalar, yet answered by a call to the reviews service: it weighs like an object.
    average_rating: float | None = product_reviews_edge.page_field(
        parent_id=lambda product: product.id,
        read=lambda page: page.average_rating,
        directives=[cost(1)],
    )


@strawberry.type
class Review:
    id: strawberry.ID
    rating: int
    body: str
    author: User | None = user_edge.field(key=lambda review: review.author_id)
    product: Product | None = product_edge.field(key=lambda review: review.product_id)
