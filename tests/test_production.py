"""Production mode, the default: introspection by scope, no suggestions, no debug, no IDE."""

from __future__ import annotations

import gc
import hashlib
from collections.abc import AsyncIterator

import httpx
import pytest
from graphql import get_introspection_query

from services.launcher import DemoPlatform
from switchyard.config import ConfigError, GatewayConfig, validate_config
from tests.conftest import gateway_settings, open_gateway, query

INTROSPECTOR_KEY = "introspector-key-0123456789"


def production_settings(platform: DemoPlatform) -> GatewayConfig:
    settings = gateway_settings(platform.addresses)
    settings["server"] = {"request_timeout": 5.0}  # mode and debug left to their defaults
    settings["auth"]["api_keys"].append(
        {
            "hash": "sha256:" + hashlib.sha256(INTROSPECTOR_KEY.encode()).hexdigest(),
            "client_id": "schema-tools",
            "scopes": ["introspection"],
        }
    )
    return validate_config(settings)


@pytest.fixture(scope="module")
async def production(platform: DemoPlatform) -> AsyncIterator[httpx.AsyncClient]:
    async with open_gateway(production_settings(platform)) as client:
        yield client


def test_production_is_the_default_mode(platform: DemoPlatform) -> None:
    config = production_settings(platform)
    assert (config.server.mode, config.server.debug, config.ide_enabled) == (
        "production",
        False,
        False,
    )


async def test_introspection_is_refused_without_the_scope(production: httpx.AsyncClient) -> None:
    response = await query(production, get_introspection_query(), headers={})
    assert response.status_code == 403
    (error,) = response.json()["errors"]
    assert error["message"] == "Introspection is disabled for this caller."
    assert error["extensions"]["code"] == "FORBIDDEN"


async def test_introspection_is_allowed_with_the_configured_scope(
    production: httpx.AsyncClient,
) -> None:
    response = await query(
        production, "{ __schema { queryType { name } } }", headers={"X-Api-Key": INTROSPECTOR_KEY}
    )
    assert response.json() == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


async def test_typename_is_not_introspection(production: httpx.AsyncClient) -> None:
    response = await query(production, "{ __typename }", headers={})
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_a_misspelled_field_gets_no_suggestion(production: httpx.AsyncClient) -> None:
    response = await query(production, "{ users { edges { node { nme } } } }", headers={})
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["message"] == "Cannot query field 'nme' on type 'User'."
    assert "Did you mean" not in response.text


async def test_development_mode_suggests(gateway: httpx.AsyncClient) -> None:
    response = await query(gateway, "{ users { edges { node { nme } } } }", headers={})
    assert "Did you mean 'name'?" in response.json()["errors"][0]["message"]


async def test_graphiql_is_off_unless_enabled(production: httpx.AsyncClient) -> None:
    response = await production.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 404
    assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_debug_extensions_need_development_mode(platform: DemoPlatform) -> None:
    settings = gateway_settings(platform.addresses)
    settings["server"] = {"debug": True}
    with pytest.raises(ConfigError) as error:
        validate_config(settings)
    assert str(error.value) == 'config: server: debug: debug = true needs mode = "development"'


async def test_the_collector_thresholds_of_the_config_hold_once_the_gateway_is_started(
    platform: DemoPlatform,
) -> None:
    settings = gateway_settings(platform.addresses)
    settings["server"] = {**settings.get("server", {}), "gc_threshold": [12_345, 11, 12]}
    before = gc.get_threshold()
    try:
        async with open_gateway(validate_config(settings)) as client:
            assert gc.get_threshold() == (12_345, 11, 12)
            answer = await query(client, "{ __typename }")
            assert answer.json() == {"data": {"__typename": "Query"}}
    finally:
        gc.set_threshold(*before)
