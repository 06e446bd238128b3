"""The access log: one line per GraphQL request, carrying the request id the client got."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from services.launcher import DemoPlatform
from switchyard.config import validate_config
from switchyard.telemetry.access_log import ACCESS_LOGGER
from tests.conftest import SERVICE_HEADERS, SERVICE_KEY, Backends, gateway_settings, open_gateway

CLIENT_ID = "client-chosen-id-42"


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == ACCESS_LOGGER]


@pytest.fixture(autouse=True)
def access_records(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """Access records reach caplog (at the root), even after the CLI's ``configure_logging``."""
    monkeypatch.setattr(logging.getLogger(ACCESS_LOGGER), "propagate", True)
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)


async def post(client: httpx.AsyncClient, body: Any, **headers: str) -> httpx.Response:
    return await client.post(
        "/graphql",
        content=body if isinstance(body, bytes) else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **headers},
    )


@pytest.fixture
async def production(platform: DemoPlatform) -> Any:
    config = validate_config(
        gateway_settings(
            platform.addresses,
            server={"mode": "production", "debug": False},
            upstreams={
                "accounts": {"instances": ["http://127.0.0.1:9"], "retry": {"enabled": False}}
            },
        )
    )
    async with open_gateway(config) as client:
        yield client


async def test_the_line_of_a_failed_request_carries_the_request_id_of_the_clients_error(
    production: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = await post(
        production,
        {"query": 'query UserName { user(id: "1") { name } }'},
        **SERVICE_HEADERS,
    )
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
    request_id = error["extensions"]["requestId"]
    assert response.headers["x-request-id"] == request_id
    (line,) = lines(caplog)
    entry = json.loads(line)  # JSON in production
    assert entry["request_id"] == request_id
    assert entry["client_id"] == "test-service"
    assert (entry["operation"], entry["type"], entry["status"]) == ("UserName", "query", 200)
    assert entry["errors"] == ["UPSTREAM_UNAVAILABLE"]
    assert entry["upstream_calls"] == 1 and entry["upstream_errors"] == 1
    assert set(entry) >= {"time", "duration_ms", "estimated_cost", "actual_cost"}


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b"{not json", SERVICE_HEADERS, 400, "BAD_REQUEST"),
        ({"query": "{ __typename }"}, {"X-Api-Key": "not-a-key-of-anyone"}, 401, "UNAUTHENTICATED"),
        ({"query": "{ nope }"}, SERVICE_HEADERS, 400, "GRAPHQL_VALIDATION_FAILED"),
    ],
)
async def test_refusals_carry_the_clients_request_id_in_every_error_the_header_and_the_line(
    production: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    body: Any,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    response = await post(production, body, **headers, **{"X-Request-Id": CLIENT_ID})
    assert response.status_code == status
    assert response.headers["x-request-id"] == CLIENT_ID
    errors = response.json()["errors"]
    assert [e["extensions"]["requestId"] for e in errors] == [CLIENT_ID] * len(errors)
    (line,) = lines(caplog)
    entry = json.loads(line)
    assert (entry["request_id"], entry["status"], entry["errors"][0]) == (CLIENT_ID, status, code)


async def test_a_malformed_request_id_is_replaced_and_the_id_goes_upstream(
    production: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, backends: Backends
) -> None:
    response = await post(
        production,
        {"query": '{ product(id: "1") { name } }'},
        **SERVICE_HEADERS,
        **{"X-Request-Id": "bad id with spaces"},
    )
    generated = response.headers["x-request-id"]
    assert generated != "bad id with spaces" and len(generated) == 32
    (line,) = lines(caplog)
    assert json.loads(line)["request_id"] == generated
    (record,) = await backends.records("catalog")
    assert record.headers["x-request-id"] == generated


async def test_development_lines_are_readable_and_name_no_secret(
    gateway: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = await post(
        gateway,
        {"query": 'query Named { product(id: "1") { name } }'},
        **SERVICE_HEADERS,
        **{"X-Request-Id": CLIENT_ID},
    )
    assert response.status_code == 200
    (line,) = lines(caplog)
    assert line.split()[1:6] == [CLIENT_ID, "test-service", "query", "Named", "200"]
    assert "upstreams 1" in line and line.endswith("errors -")
    assert SERVICE_KEY not in line


async def test_access_log_off_writes_nothing(
    platform: DemoPlatform, caplog: pytest.LogCaptureFixture
) -> None:
    config = validate_config(gateway_settings(platform.addresses, access_log={"enabled": False}))
    async with open_gateway(config) as client:
        await post(client, {"query": "{ __typename }"})
    assert lines(caplog) == []
