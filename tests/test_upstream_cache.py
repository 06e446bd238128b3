"""The upstream response cache: Cache-Control honoured, per caller when private, shared in Redis."""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import pytest

from services.launcher import DemoPlatform
from switchyard.config import validate_config
from switchyard.upstream.cache import MemoryStore, ResponseCache, caller_key
from switchyard.upstream.call import CallScope, RestRequest
from switchyard.upstream.headers import CacheControl
from switchyard.upstream.transport import Transport
from tests.conftest import (
    DEMO_GATEWAYS,
    SERVICE_HEADERS,
    SERVICE_SCOPES,
    Backends,
    gateway_settings,
    open_gateway,
    query,
)
from tests.redis_support import REDIS_URL

USERS = "{ users(first: 2) { edges { node { name } } } }"
PRODUCTS = "{ products(first: 2) { edges { node { name } } } }"
OTHER_KEY = "test-other-key-0123456789"
OTHER_HEADERS = {"X-Api-Key": OTHER_KEY}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def cache_layer(transport: Transport) -> ResponseCache:
    """The cache among an upstream's layers (each keeps the one it wraps as ``inner``)."""
    layer: Any = transport
    while not isinstance(layer, ResponseCache):
        layer = layer.inner
    return layer


def settings_with(platform: DemoPlatform, **upstreams: Mapping[str, Any]) -> dict[str, Any]:
    settings = gateway_settings(platform.addresses, upstreams=upstreams)
    settings["auth"]["api_keys"].append(
        {
            "hash": "sha256:" + hashlib.sha256(OTHER_KEY.encode()).hexdigest(),
            "client_id": "test-other",
            "scopes": SERVICE_SCOPES,
            "tier": "service",
        }
    )
    return settings


@contextlib.asynccontextmanager
async def gateway_with(
    settings: dict[str, Any], clock: Clock | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    async with open_gateway(validate_config(settings)) as client:
        if clock is not None:
            for upstream in DEMO_GATEWAYS[-1].started.upstreams.values():
                with contextlib.suppress(AttributeError):
                    cache_layer(upstream.transport).set_clock(clock)
        yield client


@contextlib.asynccontextmanager
async def accounts_sending(
    backends: Backends, platform: DemoPlatform, headers: dict[str, str]
) -> AsyncIterator[None]:
    endpoint = platform.endpoint("accounts")
    await backends.admin.set_response_headers(endpoint, headers)
    try:
        yield
    finally:
        await backends.admin.set_response_headers(endpoint, {})


async def users_calls(backends: Backends) -> int:
    return len(await backends.records("accounts"))


async def ask(client: httpx.AsyncClient, document: str, headers: Mapping[str, str]) -> Any:
    body = (await query(client, document, headers=headers)).json()
    assert "errors" not in body, body
    return body["data"]


async def test_a_max_age_answer_is_served_while_fresh_and_fetched_again_once_stale(
    platform: DemoPlatform, backends: Backends
) -> None:
    clock = Clock()
    async with (
        accounts_sending(backends, platform, {"Cache-Control": "max-age=60"}),
        gateway_with(settings_with(platform), clock) as client,
    ):
        first = await ask(client, USERS, SERVICE_HEADERS)
        clock.now += 59
        assert await ask(client, USERS, SERVICE_HEADERS) == first
        assert await ask(client, USERS, OTHER_HEADERS) == first  # shared: not private
        assert await users_calls(backends) == 1
        clock.now += 1  # 60 s old: stale
        assert await ask(client, USERS, SERVICE_HEADERS) == first
        assert await users_calls(backends) == 2
        layer = cache_layer(DEMO_GATEWAYS[-1].started.upstreams["accounts"].transport)
        assert (layer.hits, layer.misses, layer.stored) == (2, 2, 2)


@pytest.mark.parametrize(
    "cache_control", ["no-store, max-age=60", "no-cache, max-age=60", "public", None]
)
async def test_an_answer_without_a_lifetime_or_marked_no_store_is_never_served_from_the_cache(
    platform: DemoPlatform, backends: Backends, cache_control: str | None
) -> None:
    headers = {} if cache_control is None else {"Cache-Control": cache_control}
    async with (
        accounts_sending(backends, platform, headers),
        gateway_with(settings_with(platform), Clock()) as client,
    ):
        for _ in range(3):
            await ask(client, USERS, SERVICE_HEADERS)
    assert await users_calls(backends) == 3


async def test_private_answers_never_cross_callers(
    platform: DemoPlatform, backends: Backends
) -> None:
    async with (
        accounts_sending(backends, platform, {"Cache-Control": "private, max-age=60"}),
        gateway_with(settings_with(platform), Clock()) as client,
    ):
        await ask(client, USERS, SERVICE_HEADERS)
        await ask(client, USERS, SERVICE_HEADERS)  # the same caller: from the cache
        assert await users_calls(backends) == 1
        await ask(client, USERS, OTHER_HEADERS)  # another caller: its own call
        await ask(client, USERS, OTHER_HEADERS)
        assert await users_calls(backends) == 2
    # An anonymous caller is nobody in particular: a private answer is not kept for it.
    assert caller_key(CallScope()) is None


async def test_grpc_answers_are_kept_for_their_configured_ttl(
    platform: DemoPlatform, backends: Backends
) -> None:
    clock = Clock()
    settings = settings_with(platform, catalog={"cache": {"grpc_ttl": {"SearchProducts": 30}}})
    async with gateway_with(settings, clock) as client:
        first = await ask(client, PRODUCTS, SERVICE_HEADERS)
        assert await ask(client, PRODUCTS, SERVICE_HEADERS) == first
        assert [r.call for r in await backends.records("catalog")] == ["SearchProducts"]
        clock.now += 30
        assert await ask(client, PRODUCTS, SERVICE_HEADERS) == first
        assert len(await backends.records("catalog")) == 2


@contextlib.asynccontextmanager
async def two_gateways_on_redis(
    platform: DemoPlatform, backends: Backends, cache_control: str
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Two gateways, each with its own Redis client, sharing a key prefix of this test's."""
    cache = {"backend": "redis", "redis_url": REDIS_URL, "key_prefix": f"test:{uuid.uuid4().hex}"}
    settings = settings_with(platform, accounts={"cache": cache})
    async with (
        accounts_sending(backends, platform, {"Cache-Control": cache_control}),
        gateway_with(settings) as one,
        gateway_with(settings) as two,
    ):
        yield one, two


async def test_two_gateways_sharing_redis_share_entries(
    platform: DemoPlatform, backends: Backends, redis_available: None
) -> None:
    async with two_gateways_on_redis(platform, backends, "max-age=60") as (one, two):
        first = await ask(one, USERS, SERVICE_HEADERS)
        assert await ask(two, USERS, SERVICE_HEADERS) == first
        assert await ask(one, USERS, OTHER_HEADERS) == first
        assert await users_calls(backends) == 1
        stores = [
            cache_layer(gateway.started.upstreams["accounts"].transport).store
            for gateway in DEMO_GATEWAYS[-2:]
        ]
        assert stores[0] is not stores[1]


async def test_private_entries_in_redis_never_cross_callers(
    platform: DemoPlatform, backends: Backends, redis_available: None
) -> None:
    async with two_gateways_on_redis(platform, backends, "private, max-age=60") as (one, two):
        await ask(one, USERS, SERVICE_HEADERS)
        await ask(two, USERS, SERVICE_HEADERS)
        assert await users_calls(backends) == 1
        await ask(two, USERS, OTHER_HEADERS)
        assert await users_calls(backends) == 2


async def test_a_redis_that_does_not_answer_is_a_miss(
    platform: DemoPlatform, backends: Backends
) -> None:
    cache = {"backend": "redis", "redis_url": "redis://127.0.0.1:9/0", "redis_timeout": 0.05}
    settings = settings_with(platform, accounts={"cache": cache})
    async with (
        accounts_sending(backends, platform, {"Cache-Control": "max-age=60"}),
        gateway_with(settings) as client,
    ):
        await ask(client, USERS, SERVICE_HEADERS)
        await ask(client, USERS, SERVICE_HEADERS)
    assert await users_calls(backends) == 2


# Parts on their own ----------------------------------------------------------------------


def test_cache_control_lifetimes() -> None:
    control = CacheControl.parse('Private, MAX-AGE=60, s-maxage="30"')
    assert control is not None and control.private
    assert (control.lifetime(shared=False), control.lifetime(shared=True)) == (60, 30)
    assert CacheControl.parse("max-age=soon") == CacheControl(max_age=0)
    assert CacheControl.parse(None) is None


class Answers(Transport):
    async def handle(self, request: Any, scope: Any) -> Any:
        raise AssertionError("not called")

    async def check(self, timeout: float) -> bool:
        return True


async def test_the_memory_store_is_bounded_by_bytes() -> None:
    clock = Clock()
    store = MemoryStore(max_bytes=4000, clock=clock)
    for index in range(10):
        await store.put(f"key{index}", b"x" * 1000, ttl=60, timeout=1)
    assert store.size <= 4000
    assert await store.get_many(["key0", "key9"], 1) == [None, b"x" * 1000]
    clock.now += 60
    assert await store.get_many(["key9"], 1) == [None]
    layer = ResponseCache("accounts", Answers(), store, json_answers=True)
    assert layer.lifetime(RestRequest("/users"), {"cache-control": "max-age=100", "age": "30"}) == (
        70.0,
        False,
    )
    assert layer.lifetime(RestRequest("/users"), {"cache-control": "max-age=9", "vary": "*"}) == (
        0.0,
        False,
    )
