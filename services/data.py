"""The deterministic dataset behind every demo service.

Each service process generates the whole dataset from the same seed, so the
services agree on it without sharing anything at run time::

    data = DemoData.generate(seed=42)
    data.users_by_id["1"].email

Absent references are built in on purpose, to exercise "absent answers null":
about 1% of orders belong to a deleted customer, 1% of order items name a
discontinued product and 1% of reviews have a deleted author (their ids lie
above the generated range). Some products have no reviews, some no stock.

Every ``SHIPPED`` or ``DELIVERED`` order has a shipment, and no other order has one::

    data.shipments_by_order_id["7"].carrier  # "DHL"; KeyError for an unshipped order
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TypeVar

DEFAULT_SEED = 42
DEFAULT_USERS = 1000
DEFAULT_PRODUCTS = 500
DEFAULT_ORDERS = 10_000
DEFAULT_REVIEWS = 5000

TIERS = ("FREE", "PRO", "ENTERPRISE")
ORDER_STATUSES = ("PENDING", "PAID", "SHIPPED", "DELIVERED", "CANCELLED")
CATEGORIES = ("books", "games", "kitchen", "garden", "tools", "music")
WAREHOUSES = ("ams", "iad", "sin", "fra", "syd")
SHIPPED_ORDER_STATUSES = ("SHIPPED", "DELIVERED")
SHIPMENT_STATUSES = ("LABEL_CREATED", "IN_TRANSIT", "OUT_FOR_DELIVERY", "DELIVERED", "EXCEPTION")
# Carrier -> tracking number prefix and digit count, loosely after the real formats.
CARRIERS = {"DHL": ("JD", 18), "UPS": ("1Z", 16), "FedEx": ("", 12), "PostNL": ("3S", 13)}

DANGLING_REFERENCE_RATE = 0.01
PRODUCTS_WITHOUT_REVIEWS_RATE = 0.1
PRODUCTS_WITHOUT_STOCK_RATE = 0.05
EUR_RATE = 0.1

_USERS_SINCE = 1_640_995_200  # 2022-01-01T00:00:00Z
_ORDERS_SINCE = 1_672_531_200  # 2023-01-01T00:00:00Z
_UNTIL = 1_735_689_600  # 2025-01-01T00:00:00Z

_FIRST_NAMES = (
    "Ada", "Alan", "Barbara", "Claude", "Dennis", "Edsger", "Frances", "Grace", "Hedy",
    "Ivan", "Joan", "Ken", "Linus", "Margaret", "Niklaus", "Radia", "Shafi", "Tim",
)  # fmt: skip
_LAST_NAMES = (
    "Lovelace", "Turing", "Liskov", "Shannon", "Ritchie", "Dijkstra", "Allen", "Hopper",
    "Lamarr", "Sutherland", "Clarke", "Thompson", "Torvalds", "Hamilton", "Wirth",
    "Perlman", "Goldwasser", "Berners-Lee",
)  # fmt: skip
_ADJECTIVES = (
    "Sturdy", "Compact", "Classic", "Deluxe", "Rustic", "Modern", "Vintage", "Portable",
    "Ergonomic", "Handmade", "Silent", "Bright",
)  # fmt: skip
_NOUNS = {
    "books": ("Novel", "Cookbook", "Atlas", "Anthology", "Field Guide", "Biography"),
    "games": ("Board Game", "Puzzle", "Card Deck", "Dice Set", "Strategy Game"),
    "kitchen": ("Skillet", "Chef Knife", "Kettle", "Cutting Board", "Teapot", "Whisk"),
    "garden": ("Hose", "Trowel", "Planter", "Rake", "Watering Can", "Seed Kit"),
    "tools": ("Hammer", "Screwdriver Set", "Wrench", "Drill", "Tape Measure", "Saw"),
    "music": ("Ukulele", "Harmonica", "Metronome", "Guitar Strings", "Drum Pad"),
}
_QUALITIES = ("everyday use", "beginners", "professionals", "small spaces", "gifting", "travel")
_REVIEW_BODIES = {
    1: ("Broke after a week.", "Not as described.", "Would not buy again."),
    2: ("Disappointing quality.", "Works, barely.", "Expected more for the price."),
    3: ("It is fine.", "Does the job.", "Average, nothing special."),
    4: ("Good value.", "Works well, minor quirks.", "Happy with it."),
    5: ("Excellent!", "Exactly what I needed.", "Outstanding quality, highly recommended."),
}
_RATING_WEIGHTS = (5, 8, 17, 35, 35)
# The statuses of a shipment still under way (its order SHIPPED, not DELIVERED).
_IN_FLIGHT_STATUSES = ("LABEL_CREATED", "IN_TRANSIT", "OUT_FOR_DELIVERY", "EXCEPTION")
_IN_FLIGHT_WEIGHTS = (15, 60, 15, 10)
_DELIVERY_DAYS = (2, 10)


@dataclass(frozen=True, slots=True, kw_only=True)
class DataSizes:
    """How many entities of each kind to generate."""

    users: int = DEFAULT_USERS
    products: int = DEFAULT_PRODUCTS
    orders: int = DEFAULT_ORDERS
    reviews: int = DEFAULT_REVIEWS

    def __post_init__(self) -> None:
        for name in ("users", "products", "orders", "reviews"):
            if getattr(self, name) < 0:
                raise ValueError(f"DataSizes.{name} must not be negative")


@dataclass(frozen=True, slots=True)
class User:
    id: str
    name: str
    email: str
    tier: str
    created_at: str


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    name: str
    description: str
    price_cents: int
    currency: str
    category: str


@dataclass(frozen=True, slots=True)
class OrderItem:
    product_id: str
    quantity: int
    unit_price_cents: int


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    user_id: str
    status: str
    created_at: str
    currency: str
    items: tuple[OrderItem, ...]


@dataclass(frozen=True, slots=True)
class Review:
    id: str
    product_id: str
    author_id: str
    rating: int
    body: str
    created_at: str


@dataclass(frozen=True, slots=True)
class WarehouseStock:
    warehouse: str
    available: int


@dataclass(frozen=True, slots=True)
class Stock:
    product_id: str
    warehouses: tuple[WarehouseStock, ...]

    @property
    def available(self) -> int:
        return sum(w.available for w in self.warehouses)


@dataclass(frozen=True, slots=True)
class Shipment:
    """The shipment of a ``SHIPPED`` or ``DELIVERED`` order.

    ``estimated_delivery`` is an RFC 3339 date (``"2024-03-07"``), ``None`` once delivered.
    """

    order_id: str
    carrier: str
    status: str
    tracking_number: str
    estimated_delivery: str | None


@dataclass(frozen=True, slots=True)
class DemoData:
    """The generated entities, each list in the contract's order.

    ``users`` and ``products`` ascend by numeric id; ``orders`` and ``reviews``
    are newest first (``created_at`` descending, then id descending); ``shipments``
    ascend by numeric order id.
    """

    seed: int
    sizes: DataSizes
    users: tuple[User, ...]
    products: tuple[Product, ...]
    orders: tuple[Order, ...]
    reviews: tuple[Review, ...]
    stocks: tuple[Stock, ...]
    shipments: tuple[Shipment, ...]
    users_by_id: dict[str, User] = field(repr=False)
    products_by_id: dict[str, Product] = field(repr=False)
    orders_by_id: dict[str, Order] = field(repr=False)
    reviews_by_id: dict[str, Review] = field(repr=False)
    stocks_by_product_id: dict[str, Stock] = field(repr=False)
    shipments_by_order_id: dict[str, Shipment] = field(repr=False)

    @classmethod
    def generate(
        cls,
        seed: int = DEFAULT_SEED,
        users: int = DEFAULT_USERS,
        products: int = DEFAULT_PRODUCTS,
        orders: int = DEFAULT_ORDERS,
        reviews: int = DEFAULT_REVIEWS,
    ) -> DemoData:
        """Generate the dataset; the same arguments always give the same data.

        Example: ``DemoData.generate(seed=7, users=10, products=5, orders=50, reviews=20)``.
        """
        return cls.from_sizes(
            seed, DataSizes(users=users, products=products, orders=orders, reviews=reviews)
        )

    @classmethod
    def from_sizes(cls, seed: int, sizes: DataSizes) -> DemoData:
        """Generate the dataset for a ``DataSizes`` value."""
        # One random stream per entity kind, so changing one size keeps the others stable.
        user_list = _generate_users(random.Random(f"{seed}:users"), sizes.users)
        product_list = _generate_products(random.Random(f"{seed}:products"), sizes.products)
        order_list = _generate_orders(random.Random(f"{seed}:orders"), sizes, product_list)
        review_list = _generate_reviews(random.Random(f"{seed}:reviews"), sizes)
        stock_list = _generate_stocks(random.Random(f"{seed}:stocks"), sizes.products)
        shipment_list = _generate_shipments(random.Random(f"{seed}:shipments"), order_list)
        return cls(
            seed=seed,
            sizes=sizes,
            users=tuple(user_list),
            products=tuple(product_list),
            orders=tuple(_newest_first(order_list)),
            reviews=tuple(_newest_first(review_list)),
            stocks=tuple(stock_list),
            shipments=tuple(shipment_list),
            users_by_id={u.id: u for u in user_list},
            products_by_id={p.id: p for p in product_list},
            orders_by_id={o.id: o for o in order_list},
            reviews_by_id={r.id: r for r in review_list},
            stocks_by_product_id={s.product_id: s for s in stock_list},
            shipments_by_order_id={s.order_id: s for s in shipment_list},
        )


_Dated = TypeVar("_Dated", Order, Review)


def _newest_first(items: list[_Dated]) -> list[_Dated]:
    return sorted(items, key=lambda item: (item.created_at, int(item.id)), reverse=True)


def _timestamp(rng: random.Random, since: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(rng.randrange(since, _UNTIL)))


def _dangling_id(rng: random.Random, size: int) -> str:
    return str(size + 1 + rng.randrange(1000))


def _generate_users(rng: random.Random, count: int) -> list[User]:
    users = []
    for n in range(1, count + 1):
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        users.append(
            User(
                id=str(n),
                name=f"{first} {last}",
                email=f"{first}.{last}.{n}@example.com".lower(),
                tier=rng.choices(TIERS, weights=(70, 25, 5))[0],
                created_at=_timestamp(rng, _USERS_SINCE),
            )
        )
    return users


def _article(word: str) -> str:
    return "An" if word[0] in "AEIOU" else "A"


def _generate_products(rng: random.Random, count: int) -> list[Product]:
    products = []
    for n in range(1, count + 1):
        category = rng.choice(CATEGORIES)
        adjective, noun = rng.choice(_ADJECTIVES), rng.choice(_NOUNS[category])
        products.append(
            Product(
                id=str(n),
                name=f"{adjective} {noun}",
                description=f"{_article(adjective)} {adjective.lower()} {noun.lower()} for "
                f"{rng.choice(_QUALITIES)}.",
                price_cents=rng.randrange(199, 20_000),
                currency="EUR" if rng.random() < EUR_RATE else "USD",
                category=category,
            )
        )
    return products


def _generate_orders(rng: random.Random, sizes: DataSizes, products: list[Product]) -> list[Order]:
    by_currency: dict[str, list[Product]] = {}
    for product in products:
        by_currency.setdefault(product.currency, []).append(product)
    orders = []
    for n in range(1, sizes.orders + 1):
        if sizes.users == 0 or rng.random() < DANGLING_REFERENCE_RATE:
            user_id = _dangling_id(rng, sizes.users)
        else:
            user_id = str(rng.randint(1, sizes.users))
        currency = "EUR" if rng.random() < EUR_RATE and "EUR" in by_currency else "USD"
        candidates = by_currency.get(currency, [])
        items = []
        for _ in range(rng.randint(1, 4)):
            if not candidates or rng.random() < DANGLING_REFERENCE_RATE:
                item = OrderItem(
                    product_id=_dangling_id(rng, sizes.products),
                    quantity=rng.randint(1, 5),
                    unit_price_cents=rng.randrange(199, 20_000),
                )
            else:
                product = rng.choice(candidates)
                item = OrderItem(product.id, rng.randint(1, 5), product.price_cents)
            items.append(item)
        orders.append(
            Order(
                id=str(n),
                user_id=user_id,
                status=rng.choices(ORDER_STATUSES, weights=(10, 20, 20, 45, 5))[0],
                created_at=_timestamp(rng, _ORDERS_SINCE),
                currency=currency,
                items=tuple(items),
            )
        )
    return orders


def _generate_reviews(rng: random.Random, sizes: DataSizes) -> list[Review]:
    reviewed = [
        str(n)
        for n in range(1, sizes.products + 1)
        if rng.random() >= PRODUCTS_WITHOUT_REVIEWS_RATE
    ]
    reviews = []
    for n in range(1, sizes.reviews + 1):
        if not reviewed:
            break
        if sizes.users == 0 or rng.random() < DANGLING_REFERENCE_RATE:
            author_id = _dangling_id(rng, sizes.users)
        else:
            author_id = str(rng.randint(1, sizes.users))
        rating = rng.choices((1, 2, 3, 4, 5), weights=_RATING_WEIGHTS)[0]
        reviews.append(
            Review(
                id=str(n),
                product_id=rng.choice(reviewed),
                author_id=author_id,
                rating=rating,
                body=rng.choice(_REVIEW_BODIES[rating]),
                created_at=_timestamp(rng, _ORDERS_SINCE),
            )
        )
    return reviews


def _generate_stocks(rng: random.Random, products: int) -> list[Stock]:
    stocks = []
    for n in range(1, products + 1):
        if rng.random() < PRODUCTS_WITHOUT_STOCK_RATE:
            continue
        chosen = sorted(rng.sample(range(len(WAREHOUSES)), rng.randint(1, 3)))
        warehouses = tuple(WarehouseStock(WAREHOUSES[i], rng.randint(0, 250)) for i in chosen)
        stocks.append(Stock(str(n), warehouses))
    return stocks


def _generate_shipments(rng: random.Random, orders: list[Order]) -> list[Shipment]:
    """One shipment per shipped or delivered order, ``orders`` in ascending id order."""
    carriers = tuple(CARRIERS)
    shipments = []
    for order in orders:
        if order.status not in SHIPPED_ORDER_STATUSES:
            continue
        carrier = rng.choice(carriers)
        prefix, digits = CARRIERS[carrier]
        tracking_number = f"{prefix}{rng.randrange(10**digits):0{digits}d}"
        if order.status == "DELIVERED":
            status, estimated = "DELIVERED", None
        else:
            status = rng.choices(_IN_FLIGHT_STATUSES, weights=_IN_FLIGHT_WEIGHTS)[0]
            ordered = date.fromisoformat(order.created_at[:10])
            estimated = (ordered + timedelta(days=rng.randint(*_DELIVERY_DAYS))).isoformat()
        shipments.append(Shipment(order.id, carrier, status, tracking_number, estimated))
    return shipments
