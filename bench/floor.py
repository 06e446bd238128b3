"""The floor: the least a server can do to answer the benchmark's three operations.

    python -m bench.floor --port 8100 --upstreams '{"accounts": ["http://127.0.0.1:7001"], ...}'
        [--server uvicorn|uvicorn-h11|granian] [--client aiohttp|httpx-aiohttp|httpx]

A hand-written ASGI app, no GraphQL: ``POST /graphql`` reads the JSON body's
``operationName`` (``Small``, ``Medium``, ``Large``: bench/operations.py) and its
variables, makes the fewest upstream calls for the data the gateway answers with
(each as early as the data allows, in parallel where it allows), and writes the same
``{"data": ...}`` (tests/test_bench_floor.py compares them). It follows the graph's
data dependencies: an edge is asked with the keys of the objects its parent call
returned (a user's orders once the user is known, a product's stock and reviews once
the catalog answered), so the round trips in a row are the gateway's: 1, 3 and 4.

The server and the upstream HTTP client are options, so the floor is served by the
fastest measured: a faster shared layer lowers the floor too. gRPC calls go through
grpc.aio with the generated stubs of protos/. Every upstream call carries an
``x-request-id`` (a counter), as the gateway's do, so the harness counts calls per request.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Protocol

import grpc.aio
import orjson

from protos import catalog_pb2, catalog_pb2_grpc, inventory_pb2, inventory_pb2_grpc

Json = dict[str, Any]
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CLIENTS = ("aiohttp", "httpx-aiohttp", "httpx")
SERVERS = ("uvicorn", "uvicorn-h11", "granian")
CONFIG_ENV = "SWITCHYARD_FLOOR_CONFIG"
"""JSON ``{"upstreams": {...}, "client": "..."}``: how the app, imported by the server, is set."""
POOL_SIZE = 256
TIMEOUT_S = 10.0


class RestClient(Protocol):
    async def get(self, url: str, request_id: str) -> Any: ...

    async def aclose(self) -> None: ...


class AiohttpClient:
    """aiohttp's client called directly: one session, keep-alive, no cookie jar."""

    def __init__(self) -> None:
        import aiohttp

        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=POOL_SIZE, limit_per_host=POOL_SIZE),
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
            skip_auto_headers=("User-Agent",),
        )

    async def get(self, url: str, request_id: str) -> Any:
        async with self._session.get(url, headers={"x-request-id": request_id}) as response:
            response.raise_for_status()
            return orjson.loads(await response.read())

    async def aclose(self) -> None:
        await self._session.close()


class HttpxClient:
    """httpx's API over its default transport or the aiohttp-backed one (httpx-aiohttp)."""

    def __init__(self, over_aiohttp: bool) -> None:
        import httpx

        limits = httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE)
        transport: httpx.AsyncBaseTransport
        if over_aiohttp:
            from httpx_aiohttp import AiohttpTransport

            transport = AiohttpTransport(limits=limits)
        else:
            transport = httpx.AsyncHTTPTransport(limits=limits)
        self._client = httpx.AsyncClient(transport=transport, timeout=TIMEOUT_S)

    async def get(self, url: str, request_id: str) -> Any:
        response = await self._client.get(url, headers={"x-request-id": request_id})
        response.raise_for_status()
        return orjson.loads(response.content)

    async def aclose(self) -> None:
        await self._client.aclose()


def make_client(name: str) -> RestClient:
    if name == "aiohttp":
        return AiohttpClient()
    if name in ("httpx-aiohttp", "httpx"):
        return HttpxClient(over_aiohttp=name == "httpx-aiohttp")
    raise ValueError(f"unknown client {name!r}; one of {', '.join(CLIENTS)}")


def unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


class Upstreams:
    """The demo services the three operations need: REST via ``client``, gRPC via grpc.aio."""

    def __init__(self, addresses: dict[str, list[str]], client: str) -> None:
        self.accounts = addresses["accounts"][0]
        self.orders = addresses["orders"][0]
        self.reviews = addresses["reviews"][0]
        self.http = make_client(client)
        self._channels = [
            grpc.aio.insecure_channel(addresses["catalog"][0]),
            grpc.aio.insecure_channel(addresses["inventory"][0]),
        ]
        self.catalog = catalog_pb2_grpc.CatalogStub(self._channels[0])
        self.inventory = inventory_pb2_grpc.InventoryStub(self._channels[1])

    async def aclose(self) -> None:
        await self.http.aclose()
        for channel in self._channels:
            await channel.close(None)

    async def users(self, ids: list[str], rid: str) -> dict[str, Json]:
        answer = await self.http.get(f"{self.accounts}/users?ids={','.join(ids)}", rid)
        return {str(user["id"]): user for user in answer["users"]}

    async def products(self, ids: list[str], rid: str) -> dict[str, catalog_pb2.Product]:
        answer = await self.catalog.BatchGetProducts(
            catalog_pb2.BatchGetProductsRequest(ids=ids),
            metadata=(("x-request-id", rid),),
            timeout=TIMEOUT_S,
        )
        return {product.id: product for product in answer.products}

    async def stock(self, ids: list[str], rid: str) -> dict[str, inventory_pb2.Stock]:
        answer = await self.inventory.BatchGetStock(
            inventory_pb2.BatchGetStockRequest(product_ids=ids),
            metadata=(("x-request-id", rid),),
            timeout=TIMEOUT_S,
        )
        return {stock.product_id: stock for stock in answer.stocks}

    async def reviews_of(self, product_ids: list[str], first: int, rid: str) -> dict[str, Json]:
        url = f"{self.reviews}/reviews?productIds={','.join(product_ids)}&first={first}"
        results: dict[str, Json] = (await self.http.get(url, rid))["results"]
        return results

    async def orders_of(self, user_id: str, first: int, rid: str) -> list[Json]:
        url = f"{self.orders}/orders?userIds={user_id}&first={first}"
        page = (await self.http.get(url, rid))["results"].get(user_id)
        return [] if page is None else list(page["orders"])

    async def latest_orders(self, first: int, rid: str) -> list[Json]:
        return list((await self.http.get(f"{self.orders}/orders?first={first}", rid))["orders"])


def named(record: Json | catalog_pb2.Product | None) -> Json | None:
    if record is None:
        return None
    if isinstance(record, dict):
        return {"name": record["name"]}
    return {"name": record.name}


async def small(up: Upstreams, variables: Json, rid: str) -> Json:
    user_id = str(variables["id"])
    users = await up.users([user_id], rid)
    return {"user": named(users.get(user_id))}


async def medium(up: Upstreams, variables: Json, rid: str) -> Json:
    user_id = str(variables["id"])
    user = (await up.users([user_id], rid)).get(user_id)
    if user is None:
        return {"user": None}
    orders = await up.orders_of(user_id, 10, rid)
    product_ids = unique(str(item["productId"]) for order in orders for item in order["items"])
    products = await up.products(product_ids, rid) if product_ids else {}
    edges = [
        {
            "node": {
                "id": str(order["id"]),
                "items": [
                    {
                        "quantity": item["quantity"],
                        "product": named(products.get(str(item["productId"]))),
                    }
                    for item in order["items"]
                ],
            }
        }
        for order in orders
    ]
    return {"user": {"name": user["name"], "orders": {"edges": edges}}}


async def large(up: Upstreams, variables: Json, rid: str) -> Json:
    orders = await up.latest_orders(int(variables["n"]), rid)
    customer_ids = unique(str(order["userId"]) for order in orders)
    customers_call = asyncio.ensure_future(
        up.users(customer_ids, rid) if customer_ids else _nothing()
    )
    product_ids = unique(str(item["productId"]) for order in orders for item in order["items"])
    products = await up.products(product_ids, rid) if product_ids else {}
    found = list(products)
    stock_call = asyncio.ensure_future(up.stock(found, rid) if found else _nothing())
    pages = await up.reviews_of(found, 3, rid) if found else {}
    customers: dict[str, Json] = await customers_call
    # One loader per edge and request: authors already read as customers are not asked again.
    author_ids = unique(
        str(review["authorId"])
        for page in pages.values()
        for review in page["reviews"]
        if str(review["authorId"]) not in customers
    )
    authors = await up.users(author_ids, rid) if author_ids else {}
    users = customers | authors
    stock: dict[str, inventory_pb2.Stock] = await stock_call

    def product(product_id: str) -> Json | None:
        record = products.get(product_id)
        if record is None:
            return None
        level = stock.get(product_id)
        page = pages.get(product_id)
        reviews = [] if page is None else page["reviews"]
        return {
            "name": record.name,
            "stock": None if level is None else {"available": level.available},
            "reviews": {
                "edges": [
                    {"node": {"author": named(users.get(str(review["authorId"])))}}
                    for review in reviews
                ]
            },
        }

    edges = [
        {
            "node": {
                "customer": named(users.get(str(order["userId"]))),
                "items": [{"product": product(str(item["productId"]))} for item in order["items"]],
            }
        }
        for order in orders
    ]
    return {"orders": {"edges": edges}}


async def _nothing() -> dict[str, Any]:
    return {}


HANDLERS: dict[str, Callable[[Upstreams, Json, str], Awaitable[Json]]] = {
    "Small": small,
    "Medium": medium,
    "Large": large,
}

JSON_HEADERS = [(b"content-type", b"application/json")]


class FloorApp:
    """The ASGI app: ``POST /graphql`` and ``GET /healthz``; upstream clients made at startup."""

    def __init__(self, addresses: dict[str, list[str]], client: str) -> None:
        self.addresses = addresses
        self.client = client
        self.upstreams: Upstreams | None = None
        self.ids = itertools.count()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/healthz":
            await self.respond(send, 200, b'{"status":"ok"}')
            return
        if path != "/graphql" or scope["method"] != "POST":
            await self.respond(send, 404, b'{"error":"not found"}')
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        request = orjson.loads(body)
        handler = HANDLERS.get(request.get("operationName") or "")
        if handler is None:
            await self.respond(send, 400, b'{"errors":[{"message":"unknown operation"}]}')
            return
        if self.upstreams is None:  # a server without lifespan
            self.upstreams = Upstreams(self.addresses, self.client)
        try:
            data = await handler(self.upstreams, request.get("variables") or {}, self.next_id())
            answer = orjson.dumps({"data": data})
        except Exception as error:
            answer = orjson.dumps({"data": None, "errors": [{"message": repr(error)}]})
        await self.respond(send, 200, answer)

    def next_id(self) -> str:
        return f"floor-{os.getpid()}-{next(self.ids)}"

    @staticmethod
    async def respond(send: Send, status: int, body: bytes) -> None:
        headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.upstreams = Upstreams(self.addresses, self.client)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.upstreams is not None:
                    await self.upstreams.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def app_from_env() -> FloorApp:
    config = json.loads(os.environ[CONFIG_ENV])
    return FloorApp(config["upstreams"], config["client"])


def serve(server: str, port: int) -> None:
    """Serve ``app_from_env()`` on 127.0.0.1:``port`` with ``server``, one process."""
    if server in ("uvicorn", "uvicorn-h11"):
        import uvicorn

        fast = server == "uvicorn"
        uvicorn.run(
            app_from_env(),
            host="127.0.0.1",
            port=port,
            loop="uvloop" if fast else "asyncio",
            http="httptools" if fast else "h11",
            log_level="warning",
            access_log=False,
        )
    elif server == "granian":
        from granian.constants import Interfaces, Loops
        from granian.server import Server

        Server(
            "bench.floor:app_from_env",
            address="127.0.0.1",
            port=port,
            interface=Interfaces.ASGI,
            workers=1,
            loop=Loops.uvloop,
            factory=True,
            log_access=False,
        ).serve()
    else:
        raise SystemExit(f"unknown server {server!r}; one of {', '.join(SERVERS)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstreams", required=True, help="JSON: service name -> addresses")
    parser.add_argument("--server", choices=SERVERS, default="uvicorn")
    parser.add_argument("--client", choices=CLIENTS, default="aiohttp")
    args = parser.parse_args()
    os.environ[CONFIG_ENV] = json.dumps(
        {"upstreams": json.loads(args.upstreams), "client": args.client}
    )
    serve(args.server, args.port)


if __name__ == "__main__":
    main()
