"""Coalescing: identical reads in flight at the same time share one upstream call."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from services.faults import FaultConfig
from services.launcher import DemoPlatform
from services.registry import SERVICE_NAMES as DEMO_UPSTREAMS
from switchyard.config import validate_config
from switchyard.cost import WorkMeter
from switchyard.deadline import Deadline
from switchyard.upstream import (
    CallScope,
    RestRequest,
    Transport,
    Upstream,
    UpstreamRequest,
    UpstreamSettings,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from switchyard.upstream.coalescing import Coalescing, read_key
from tests.conftest import Backends, gateway_settings, open_gateway, query

SLOW_MS = 300
CLIENTS = 20
MIXED_QUERY = """
{
  users(first: 3) { edges { node { name orders(first: 2) { totalCount } } } }
  products(first: 3) { edges { node { name stock { available } } } }
}
"""
SLOWED = ("accounts", "orders", "catalog", "inventory")


async def test_concurrent_identical_requests_make_one_call_per_distinct_read(
    platform: DemoPlatform, backends: Backends
) -> None:
    settings = gateway_settings(
        platform.addresses,
        upstreams={name: {"cache": {"enabled": False}} for name in DEMO_UPSTREAMS},
    )
    for name in SLOWED:
        await backends.admin.set_faults(platform.endpoint(name), FaultConfig(latency_ms=SLOW_MS))
    try:
        async with open_gateway(validate_config(settings)) as client:
            headers = {"X-Api-Key": "test-service-key-0123456789", "X-Switchyard-Debug": "1"}
            responses = await asyncio.gather(
                *(query(client, MIXED_QUERY, headers=headers) for _ in range(CLIENTS))
            )
    finally:
        for name in SLOWED:
            await backends.admin.set_faults(platform.endpoint(name), FaultConfig())

    bodies = [response.json() for response in responses]
    assert all("errors" not in body for body in bodies), bodies[0]
    assert all(body["data"] == bodies[0]["data"] for body in bodies)
    # One call per distinct read, as the services counted them: page of users, the
    # users' orders, page of products, their stock.
    calls = {
        name: Counter(record.call for record in await backends.records(name)) for name in SLOWED
    }
    assert calls == {
        "accounts": {"GET /users": 1},
        "orders": {"GET /orders": 1},
        "catalog": {"SearchProducts": 1},
        "inventory": {"BatchGetStock": 1},
    }
    # Each request is charged for what it received, as if it had made the calls.
    for body in bodies:
        usage = body["extensions"]["upstreams"]
        assert {name: usage[name]["calls"] for name in SLOWED} == dict.fromkeys(SLOWED, 1)


# The layer on its own, over a fake transport ---------------------------------------------


class Gate(Transport):
    """Answers each call once ``release`` is set; counts the calls and their scopes."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.calls: list[tuple[UpstreamRequest, CallScope]] = []
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.fail = fail

    async def handle(self, request: UpstreamRequest, scope: CallScope) -> Any:
        self.calls.append((request, scope))
        self.started.set()
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        assert isinstance(request, RestRequest)
        return {"path": request.path, "call": len(self.calls)}

    async def check(self, timeout: float) -> bool:
        return True


class Joins(WorkMeter):
    def __init__(self) -> None:
        super().__init__()
        self.joined: list[tuple[str, str, str | None]] = []

    def call_joined(self, upstream: str, operation: str, request_id: str | None) -> None:
        self.joined.append((upstream, operation, request_id))


def upstream_over(inner: Transport) -> tuple[Upstream, Coalescing]:
    layer = Coalescing("accounts", inner)
    settings = UpstreamSettings(kind="rest", instances=["http://127.0.0.1:9"])
    return Upstream("accounts", settings, layer), layer


async def settle(gate: Gate, tasks: list[asyncio.Task[Any]]) -> list[Any]:
    await gate.started.wait()
    await asyncio.sleep(0)  # every task has reached the layer
    gate.release.set()
    return await asyncio.gather(*tasks, return_exceptions=True)


async def test_sharers_get_one_answer_and_each_observer_sees_the_call() -> None:
    gate = Gate()
    upstream, layer = upstream_over(gate)
    meters = [Joins() for _ in range(5)]
    request = RestRequest("/users", {"ids": "1,2"})
    tasks = [
        asyncio.create_task(upstream.call(request, CallScope(request_id=f"r{i}", observer=meter)))
        for i, meter in enumerate(meters)
    ]
    answers = await settle(gate, tasks)
    assert len(gate.calls) == 1 and gate.calls[0][1].request_id == "r0"
    assert answers == [{"path": "/users", "call": 1}] * 5
    assert [meter.calls for meter in meters] == [1] * 5
    assert meters[0].joined == []
    assert [meter.joined for meter in meters[1:]] == [[("accounts", "GET /users", "r0")]] * 4
    assert (layer.calls, layer.joined, layer.in_flight) == (1, 4, 0)
    # Once answered, the same read is a new call.
    gate.release.clear()
    later = asyncio.create_task(upstream.call(request, CallScope()))
    await asyncio.sleep(0)
    gate.release.set()
    assert await later == {"path": "/users", "call": 2}


async def test_only_identical_reads_by_the_same_identity_are_shared() -> None:
    gate = Gate()
    upstream, _ = upstream_over(gate)
    token_a = CallScope(headers={"x-request-id": "1", "authorization": "Bearer a"})
    token_b = CallScope(headers={"x-request-id": "2", "authorization": "Bearer b"})
    same_as_a = CallScope(headers={"x-request-id": "3", "authorization": "Bearer a"})
    calls = [
        (RestRequest("/users", {"ids": "1"}), token_a),
        (RestRequest("/users", {"ids": "1"}), same_as_a),  # shared with the first
        (RestRequest("/users", {"ids": "1"}), token_b),  # another caller
        (RestRequest("/users", {"ids": "2"}), token_a),  # another read
        (RestRequest("/reviews", method="POST", json={"rating": 5}), token_a),  # a write
        (RestRequest("/reviews", method="POST", json={"rating": 5}), token_a),
    ]
    tasks = [asyncio.create_task(upstream.call(r, s)) for r, s in calls]
    await settle(gate, tasks)
    assert len(gate.calls) == 5
    assert read_key(RestRequest("/r", method="PUT")) is None


async def test_a_shared_failure_reaches_every_sharer() -> None:
    gate = Gate(fail=UpstreamUnavailable("accounts", "GET /users", "503"))
    upstream, _ = upstream_over(gate)
    meters = [WorkMeter() for _ in range(3)]
    tasks = [
        asyncio.create_task(upstream.call(RestRequest("/users"), CallScope(observer=meter)))
        for meter in meters
    ]
    outcomes = await settle(gate, tasks)
    assert len(gate.calls) == 1
    assert all(isinstance(outcome, UpstreamUnavailable) for outcome in outcomes)
    assert [meter.calls for meter in meters] == [1, 1, 1]


async def test_a_cancelled_first_request_hands_the_call_to_one_that_waited() -> None:
    gate = Gate()
    upstream, _ = upstream_over(gate)
    first = asyncio.create_task(upstream.call(RestRequest("/users"), CallScope(request_id="1")))
    await gate.started.wait()
    second = asyncio.create_task(upstream.call(RestRequest("/users"), CallScope(request_id="2")))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.sleep(0)
    gate.release.set()
    assert await second == {"path": "/users", "call": 2}
    assert [scope.request_id for _, scope in gate.calls] == ["1", "2"]


async def test_a_sharer_waits_no_longer_than_its_own_deadline() -> None:
    gate = Gate()
    upstream, _ = upstream_over(gate)
    first = asyncio.create_task(upstream.call(RestRequest("/users"), CallScope()))
    await gate.started.wait()
    hurried = CallScope(deadline=Deadline.after(0.01))
    with pytest.raises(UpstreamTimeout):
        await upstream.call(RestRequest("/users"), hurried)
    gate.release.set()
    assert await first == {"path": "/users", "call": 1}
