"""Deadlines: one per request, overridable per operation name up to a cap; a call with
less than its upstream's ``min_call_time`` left is not started; a hung service answers
``UPSTREAM_TIMEOUT`` at its paths beside every other service's data."""

from __future__ import annotations

from typing import Any

import pytest

from services.faults import FaultConfig
from services.launcher import DemoPlatform
from services.registry import SERVICE_NAMES
from switchyard.config import ConfigError, validate_config
from switchyard.deadline import Deadline, operation_timeouts
from switchyard.upstream.call import CallScope
from switchyard.upstream.errors import UpstreamTimeout
from switchyard.upstream.transport import call_timeout
from tests.conftest import Backends, gateway_settings, open_gateway
from tests.partial_data_support import README_QUERY, assert_only_service_failed

HUNG = FaultConfig(latency_ms=30_000)
"""Far beyond every deadline below: the service never answers in time."""
SLOW = FaultConfig(latency_ms=1_000)

USER_AND_PRODUCT = 'query {name} {{ user(id: "1") {{ name }} product(id: "1") {{ name }} }}'


# --- the deadline and the call's minimum time ---------------------------------------------


def test_a_deadline_moves_relative_to_the_start_of_its_request() -> None:
    deadline = Deadline.after(10.0)
    assert deadline.start is not None
    deadline.set_timeout(3.0)
    assert deadline.at == deadline.start + 3.0
    deadline.set_timeout(0.0)
    assert deadline.remaining() == 0.0


def test_operation_timeouts_are_capped() -> None:
    assert operation_timeouts({"Report": 120.0, "Search": 0.5}, 30.0) == {
        "Report": 30.0,
        "Search": 0.5,
    }


def test_a_call_is_not_started_without_its_minimum_time_left() -> None:
    scope = CallScope(deadline=Deadline.after(0.5))
    assert call_timeout(2.0, scope, "accounts", "GET /users", 0.1) <= 0.5
    with pytest.raises(UpstreamTimeout, match=r"not started: .* min_call_time is 1\.0 s"):
        call_timeout(2.0, scope, "accounts", "GET /users", 1.0)
    passed = CallScope(deadline=Deadline(at=0.0))
    with pytest.raises(UpstreamTimeout, match="request deadline already passed"):
        call_timeout(2.0, passed, "accounts", "GET /users", 0.0)
    assert call_timeout(2.0, CallScope(), "accounts", "GET /users", 1.0) == 2.0


def test_timeouts_are_validated_against_the_cap() -> None:
    with pytest.raises(ConfigError, match=r"request_timeout: 90.0 is above max_request_timeout"):
        validate_config({"server": {"request_timeout": 90, "max_request_timeout": 30}})
    with pytest.raises(ConfigError, match=r"server.operation_timeouts.Report: Input should be"):
        validate_config({"server": {"operation_timeouts": {"Report": 0}}})
    with pytest.raises(ConfigError, match=r"upstreams.accounts.min_call_time"):
        validate_config(
            {"upstreams": {"accounts": {"kind": "rest", "instances": ["x"], "min_call_time": -1}}}
        )
    server = validate_config({"server": {"operation_timeouts": {"Report": 20}}}).server
    assert server.operation_timeouts == {"Report": 20.0}


# --- against the demo services -------------------------------------------------------------


async def answer_with(
    settings: dict[str, Any], document: str, operation: str | None = None
) -> dict[str, Any]:
    async with open_gateway(validate_config(settings)) as client:
        payload: dict[str, Any] = {"query": document}
        if operation is not None:
            payload["operationName"] = operation
        response = await client.post(
            "/graphql", json=payload, headers={"X-Api-Key": "test-service-key-0123456789"}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def error_codes(body: dict[str, Any]) -> dict[str, str]:
    return {".".join(map(str, e["path"])): e["extensions"]["code"] for e in body["errors"]}


async def test_an_operation_named_in_operation_timeouts_gets_its_own_deadline(
    platform: DemoPlatform, backends: Backends
) -> None:
    # request_timeout 0.3 s: shorter than the accounts service's 1 s; "Patient" may wait 10 s.
    settings = gateway_settings(
        platform.addresses,
        server={"request_timeout": 0.3, "operation_timeouts": {"Patient": 10.0}},
        upstreams={"accounts": {"timeout": 10.0}},
    )
    await backends.admin.set_faults(platform.endpoint("accounts"), SLOW)
    try:
        hasty = await answer_with(settings, USER_AND_PRODUCT.format(name="Hasty"))
        patient = await answer_with(settings, USER_AND_PRODUCT.format(name="Patient"))
        both = (
            USER_AND_PRODUCT.format(name="Patient") + "\n" + USER_AND_PRODUCT.format(name="Other")
        )
        chosen = await answer_with(settings, both, operation="Patient")
        other = await answer_with(settings, both, operation="Other")
    finally:
        await backends.admin.set_faults(platform.endpoint("accounts"), FaultConfig())
    assert hasty["data"]["user"] is None and hasty["data"]["product"]["name"]
    assert error_codes(hasty) == {"user": "UPSTREAM_TIMEOUT"}
    assert patient == chosen
    assert "errors" not in patient and patient["data"]["user"]["name"]
    assert error_codes(other) == {"user": "UPSTREAM_TIMEOUT"}


async def test_an_operation_timeout_is_capped_by_max_request_timeout(
    platform: DemoPlatform, backends: Backends
) -> None:
    settings = gateway_settings(
        platform.addresses,
        server={
            "request_timeout": 0.2,
            "max_request_timeout": 0.3,
            "operation_timeouts": {"Patient": 10.0},
        },
        upstreams={"accounts": {"timeout": 10.0}},
    )
    await backends.admin.set_faults(platform.endpoint("accounts"), SLOW)
    try:
        body = await answer_with(settings, USER_AND_PRODUCT.format(name="Patient"))
    finally:
        await backends.admin.set_faults(platform.endpoint("accounts"), FaultConfig())
    assert error_codes(body) == {"user": "UPSTREAM_TIMEOUT"}
    assert body["data"]["product"]["name"]


async def test_a_call_without_its_minimum_time_left_never_reaches_the_service(
    platform: DemoPlatform, backends: Backends
) -> None:
    # accounts wants 30 s, more than the whole request has: its calls are not started.
    settings = gateway_settings(
        platform.addresses,
        server={"request_timeout": 5.0},
        upstreams={"accounts": {"min_call_time": 30.0}},
    )
    document = (
        '{ user(id: "1") { name } orders(first: 2) { edges { node { customer { name } } } } }'
    )
    body = await answer_with(settings, document)
    assert body["data"]["user"] is None
    assert [edge["node"]["customer"] for edge in body["data"]["orders"]["edges"]] == [None, None]
    assert set(error_codes(body).values()) == {"UPSTREAM_TIMEOUT"}
    assert set(error_codes(body)) == {
        "user",
        "orders.edges.0.node.customer",
        "orders.edges.1.node.customer",
    }
    counts = await backends.call_counts()
    assert "accounts" not in counts
    assert counts["orders"] == 1


@pytest.mark.parametrize("service", SERVICE_NAMES)
async def test_a_hung_service_times_out_at_its_paths_beside_the_others_data(
    platform: DemoPlatform, backends: Backends, service: str
) -> None:
    # The request's deadline (0.5 s) fires long before the upstream's own timeout (60 s).
    addresses = platform.addresses
    settings = gateway_settings(
        addresses,
        server={"request_timeout": 0.5},
        upstreams={name: {"timeout": 60.0} for name in addresses},
    )
    patient = gateway_settings(addresses, server={"request_timeout": 10.0})
    baseline = await answer_with(patient, README_QUERY)
    assert "errors" not in baseline
    for endpoint in platform.endpoints(service):
        await backends.admin.set_faults(endpoint, HUNG)
    try:
        body = await answer_with(settings, README_QUERY)
    finally:
        for endpoint in platform.endpoints(service):
            await backends.admin.set_faults(endpoint, FaultConfig())
    assert body.get("errors"), f"{service} hung but nothing failed"
    assert_only_service_failed(baseline, body, service, "UPSTREAM_TIMEOUT")
