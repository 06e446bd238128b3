"""[response_headers]: the client's response headers from the upstream answers' headers."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from services.launcher import DemoPlatform
from services.registry import SERVICE_NAMES
from switchyard.config import validate_config
from switchyard.upstream.headers import (
    CacheControl,
    ResponseHeaderRules,
    combine_cache_control,
)
from tests.conftest import Backends, gateway_settings, open_gateway, query

USERS_AND_ORDERS = "{ users(first: 2) { edges { node { name orders(first: 1) { totalCount } } } } }"
FAILING = '{ users(first: 1) { edges { node { name } } } user(id: "x") { name } }'
RULES = {
    "cache_control": "most_restrictive",
    "retry_after": "largest",
    "pass_through": {"accounts": ["X-Accounts-Version"]},
}


@contextlib.asynccontextmanager
async def services_sending(
    backends: Backends, platform: DemoPlatform, headers: Mapping[str, dict[str, str]]
) -> AsyncIterator[None]:
    try:
        for name, sent in headers.items():
            await backends.admin.set_response_headers(platform.endpoint(name), sent)
        yield
    finally:
        for name in headers:
            await backends.admin.set_response_headers(platform.endpoint(name), {})


@contextlib.asynccontextmanager
async def gateway_with_rules(
    platform: DemoPlatform, rules: Mapping[str, Any] = RULES
) -> AsyncIterator[httpx.AsyncClient]:
    # The cache off: every request's answers come from the services.
    settings = gateway_settings(
        platform.addresses,
        upstreams={name: {"cache": {"enabled": False}} for name in SERVICE_NAMES},
        response_headers=rules,
    )
    async with open_gateway(validate_config(settings)) as client:
        yield client


async def test_the_response_carries_the_most_restrictive_cache_control_and_largest_retry_after(
    platform: DemoPlatform, backends: Backends
) -> None:
    sent = {
        "accounts": {
            "Cache-Control": "public, max-age=60",
            "Retry-After": "5",
            "X-Accounts-Version": "7",
        },
        "orders": {"Cache-Control": "private, max-age=30", "Retry-After": "20"},
    }
    async with (
        services_sending(backends, platform, sent),
        gateway_with_rules(platform) as client,
    ):
        response = await query(client, USERS_AND_ORDERS)
    assert "errors" not in response.json()
    assert response.headers["cache-control"] == "private, max-age=30"
    assert response.headers["retry-after"] == "20"
    assert response.headers["x-accounts-version"] == "7"


async def test_a_call_without_cache_control_or_an_error_makes_the_response_no_store(
    platform: DemoPlatform, backends: Backends
) -> None:
    async with (
        services_sending(backends, platform, {"accounts": {"Cache-Control": "max-age=60"}}),
        gateway_with_rules(platform) as client,
    ):
        mixed = await query(client, USERS_AND_ORDERS)  # orders sends none
        only_accounts = await query(client, "{ users(first: 1) { edges { node { name } } } }")
        failed = await query(client, FAILING)
    assert mixed.headers["cache-control"] == "no-store"
    assert only_accounts.headers["cache-control"] == "max-age=60"
    assert "x-accounts-version" not in only_accounts.headers
    assert failed.json().get("errors")
    assert failed.headers["cache-control"] == "no-store"


async def test_without_rules_no_upstream_header_reaches_the_client(
    platform: DemoPlatform, backends: Backends
) -> None:
    sent = {"accounts": {"Cache-Control": "max-age=60", "Retry-After": "5"}}
    async with (
        services_sending(backends, platform, sent),
        gateway_with_rules(platform, {}) as client,
    ):
        response = await query(client, USERS_AND_ORDERS)
    assert "retry-after" not in response.headers
    assert "cache-control" not in response.headers


def test_combining_cache_controls() -> None:
    def combine(*values: tuple[str | None, int]) -> str:
        return combine_cache_control([(CacheControl.parse(v), age) for v, age in values])

    assert combine(("max-age=60", 0), ("max-age=60, s-maxage=10", 0)) == "max-age=10"
    assert combine(("max-age=60", 50), ("max-age=30", 0)) == "max-age=10"  # Age counts
    assert combine(("max-age=60, must-revalidate", 0)) == "max-age=60, must-revalidate"
    assert combine(("private", 0), ("max-age=60", 0)) == "private, max-age=0"
    assert combine(("no-cache", 0), ("private, max-age=5", 0)) == "private, no-cache"
    assert combine(("no-store", 0), ("max-age=5", 0)) == "no-store"
    assert combine(("max-age=5", 0), (None, 0)) == "no-store"


def test_rules_refuse_headers_the_gateway_owns_and_unknown_upstreams() -> None:
    with pytest.raises(ValidationError, match="content-length cannot be passed through"):
        ResponseHeaderRules(pass_through={"accounts": ["Content-Length"]})
    settings = gateway_settings(
        {"accounts": ["http://127.0.0.1:9"]}, response_headers={"pass_through": {"nope": ["x"]}}
    )
    with pytest.raises(Exception, match="no upstream named 'nope'"):
        validate_config(settings)
