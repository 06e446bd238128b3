"""The benchmark's floor (bench/floor.py) answers what the gateway answers, with the least calls.

The floor is the reference the gateway's figures are divided by (bench/run.py): it is
honest only if it writes the same JSON for the same operation and makes no more calls
than the operation needs (1, 3 and 6).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bench.floor import CLIENTS, FloorApp
from bench.operations import OPERATIONS
from services.launcher import DemoPlatform
from tests.conftest import Backends, query

CASES = [
    ("small", {"id": "1"}),
    ("small", {"id": "77"}),
    ("small", {"id": "99999999"}),  # no such user: null
    ("medium", {"id": "1"}),
    ("medium", {"id": "12"}),
    ("medium", {"id": "99999999"}),
    ("large", {"n": 50}),
    ("large", {"n": 3}),
]


@pytest.fixture(scope="session", params=CLIENTS)
async def floor(platform: DemoPlatform, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    app = FloorApp(platform.addresses, request.param)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://floor") as client:
        yield client
    if app.upstreams is not None:
        await app.upstreams.aclose()


@pytest.mark.parametrize(("operation", "variables"), CASES)
async def test_floor_answers_as_the_gateway_does(
    floor: httpx.AsyncClient,
    gateway: httpx.AsyncClient,
    backends: Backends,
    operation: str,
    variables: dict[str, Any],
) -> None:
    op = OPERATIONS[operation]
    expected = await query(gateway, op.query, variables)
    assert expected.status_code == 200
    assert "errors" not in expected.json()
    gateway_calls = await backends.call_counts()
    await backends.reset()

    payload = {**op.payload, "variables": variables}
    answer = await floor.post("/graphql", json=payload)
    assert answer.status_code == 200
    assert answer.json() == expected.json()
    floor_calls = await backends.call_counts()
    # The floor never makes more calls than the gateway, and exactly the operation's count
    # when the data is there (an unknown user ends the chain at its first call).
    assert sum(floor_calls.values()) <= sum(gateway_calls.values())
    if variables.get("id") != "99999999":
        assert sum(floor_calls.values()) == op.calls


async def test_floor_health_and_unknown_operations(floor: httpx.AsyncClient) -> None:
    assert (await floor.get("/healthz")).status_code == 200
    unknown = await floor.post("/graphql", json={"query": "{ x }", "operationName": "Other"})
    assert unknown.status_code == 400
