"""Automatic persisted queries (Apollo's protocol): a hash miss, the registration, hits; over GET
with an ETag and 304; the same hash served by a second gateway process sharing Redis."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from services.launcher import DemoPlatform
from switchyard.config import validate_config
from switchyard.persisted import MemoryApqStore
from switchyard.pipeline import Stage
from tests.conftest import gateway_settings, open_gateway
from tests.redis_support import REDIS_URL, free_port
from tests.test_overload import serve_process, wait_until_serving

PROJECT = Path(__file__).resolve().parent.parent
PRODUCT = 'query Product { product(id: "7") { id name description } }'
PRODUCT_HASH = hashlib.sha256(PRODUCT.encode()).hexdigest()


def persisted(sha256: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha256}}


def get_params(sha256: str, operation: str | None = None) -> dict[str, str]:
    """What Apollo Client sends for a hashed query over GET."""
    params = {"extensions": orjson.dumps(persisted(sha256)).decode()}
    if operation is not None:
        params["operationName"] = operation
    return params


@contextlib.asynccontextmanager
async def gateway_with(
    platform: DemoPlatform, **sections: Mapping[str, Any]
) -> AsyncIterator[httpx.AsyncClient]:
    settings = gateway_settings(platform.addresses, **sections)
    async with open_gateway(validate_config(settings)) as client:
        yield client


async def test_apollo_flow_miss_register_hit_then_get_with_etag_and_304(
    platform: DemoPlatform,
) -> None:
    async with gateway_with(platform) as client:
        miss = await client.post("/graphql", json={"extensions": persisted(PRODUCT_HASH)})
        assert miss.status_code == 404
        (error,) = miss.json()["errors"]
        assert (error["message"], error["extensions"]["code"]) == (
            "PersistedQueryNotFound",
            "PERSISTED_QUERY_NOT_FOUND",
        )
        registered = await client.post(
            "/graphql", json={"query": PRODUCT, "extensions": persisted(PRODUCT_HASH)}
        )
        assert registered.status_code == 200
        data = registered.json()["data"]
        assert data["product"]["id"] == "7"
        hit = await client.post("/graphql", json={"extensions": persisted(PRODUCT_HASH)})
        assert hit.json() == {"data": data}

        by_get = await client.get("/graphql", params=get_params(PRODUCT_HASH, "Product"))
        assert by_get.status_code == 200
        assert by_get.json() == {"data": data}
        etag = by_get.headers["etag"]
        assert by_get.headers["cache-control"] == "public, max-age=60"
        again = await client.get(
            "/graphql", params=get_params(PRODUCT_HASH), headers={"If-None-Match": etag}
        )
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == etag


async def test_a_text_that_does_not_match_its_hash_is_refused_and_not_registered(
    platform: DemoPlatform,
) -> None:
    wrong = hashlib.sha256(b"{ __typename }").hexdigest()
    async with gateway_with(platform) as client:
        refused = await client.post(
            "/graphql", json={"query": PRODUCT, "extensions": persisted(wrong)}
        )
        assert refused.status_code == 400
        assert refused.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
        still_unknown = await client.post("/graphql", json={"extensions": persisted(wrong)})
        assert still_unknown.json()["errors"][0]["extensions"]["code"] == (
            "PERSISTED_QUERY_NOT_FOUND"
        )


async def test_without_apq_or_manifest_a_hash_is_not_supported(platform: DemoPlatform) -> None:
    async with gateway_with(platform, apq={"enabled": False}) as client:
        response = await client.post("/graphql", json={"extensions": persisted(PRODUCT_HASH)})
        plain = await client.post("/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_SUPPORTED"
    assert plain.json() == {"data": {"__typename": "Query"}}


def test_a_disabled_feature_adds_no_unit(platform: DemoPlatform) -> None:
    from schema import graph
    from switchyard.app import create_app

    off = gateway_settings(platform.addresses, apq={"enabled": False})
    gateway = create_app(validate_config(off), graph).state.gateway
    assert gateway.pipeline.persisted is None
    assert Stage.PERSISTED not in gateway.pipeline.stages
    on = create_app(validate_config(gateway_settings(platform.addresses)), graph).state.gateway
    assert on.pipeline.persisted is not None
    assert Stage.PERSISTED in on.pipeline.stages


async def test_the_memory_store_is_bounded_by_bytes() -> None:
    store = MemoryApqStore(max_bytes=2000)
    for n in range(10):
        await store.put(f"hash{n}", "x" * 500)
    assert store.entries.size <= 2000
    assert await store.get("hash0") is None
    assert await store.get("hash9") == "x" * 500


# Two gateway processes sharing Redis ------------------------------------------------------


def serve(platform: DemoPlatform, port: int, prefix: str) -> subprocess.Popen[bytes]:
    """`switchyard serve` over the platform with the APQ store in Redis under ``prefix``."""
    environment = {
        "SWITCHYARD_APQ__BACKEND": "redis",
        "SWITCHYARD_APQ__REDIS_URL": REDIS_URL,
        "SWITCHYARD_APQ__KEY_PREFIX": prefix,
        "SWITCHYARD_APQ__REDIS_TIMEOUT": "5",
        "SWITCHYARD_COST__MODE": "off",  # no per-caller budget in the body: public answers
    }
    return serve_process(platform, port, environment)


@contextlib.contextmanager
def two_gateways(platform: DemoPlatform, prefix: str) -> Iterator[tuple[str, str]]:
    ports = [free_port(), free_port()]
    processes = [serve(platform, port, prefix) for port in ports]
    try:
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for url, process in zip(urls, processes, strict=True):
            wait_until_serving(url, process)
        yield urls[0], urls[1]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)
            if process.stderr is not None:
                process.stderr.close()


@pytest.fixture
async def apq_prefix(redis: Redis) -> AsyncIterator[str]:
    name = f"switchyard:test-apq:{os.getpid()}:{free_port()}"
    yield name
    async for key in redis.scan_iter(match=name + ":*"):
        await redis.delete(key)


async def test_a_hash_registered_on_one_replica_is_served_by_another(
    platform: DemoPlatform, redis: Redis, apq_prefix: str
) -> None:
    query = 'query Cheap { product(id: "3") { name price { amount currency } } }'
    sha256 = hashlib.sha256(query.encode()).hexdigest()
    with two_gateways(platform, apq_prefix) as (first, second):
        async with httpx.AsyncClient(timeout=30) as client:
            miss = await client.get(f"{second}/graphql", params=get_params(sha256))
            assert miss.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
            registered = await client.post(
                f"{first}/graphql", json={"query": query, "extensions": persisted(sha256)}
            )
            assert registered.status_code == 200, registered.text
            assert await redis.get(f"{apq_prefix}:{sha256}") == query

            hit = await client.get(f"{second}/graphql", params=get_params(sha256))
            assert hit.status_code == 200
            assert hit.json() == registered.json()
            assert hit.headers["cache-control"] == "public, max-age=60"
            etag = hit.headers["etag"]
            # The answer's bytes are the same on both replicas, so is its ETag.
            not_modified = await client.get(
                f"{first}/graphql", params=get_params(sha256), headers={"If-None-Match": etag}
            )
            assert not_modified.status_code == 304
            assert not_modified.content == b""


async def test_a_redis_that_does_not_answer_is_a_miss() -> None:
    from switchyard.persisted import ApqSettings, RedisApqStore

    settings = ApqSettings(backend="redis", redis_url="redis://127.0.0.1:9/0", redis_timeout=0.2)
    store = RedisApqStore.from_settings(settings)
    try:
        assert await store.get("feed") is None
        await store.put("feed", "{ a }")  # lost, not raised; kept locally
        assert await store.get("feed") == "{ a }"
    finally:
        await store.aclose()
