"""Retries, breakers, health-aware balancing: real demo services, through the gateway.

Counts come from the services' request records and the gateway's own counters;
nothing is timed: a test waits on a condition (a breaker's state in ``/readyz``,
a record arriving), polling.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from services.admin import AdminClient
from services.faults import FaultConfig
from services.launcher import DemoPlatform, ServiceProcess, find_free_ports
from switchyard.config import validate_config
from switchyard.upstream import Upstream
from tests.conftest import DEMO_GATEWAYS, Backends, gateway_settings, open_gateway, query

CLIENTS = 50
POLL_S = 0.05
POLLS = 400
"""A condition is polled this often before the test gives up (20 s: never reached when
it holds)."""


async def wait_until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    for _ in range(POLLS):
        if await condition():
            return
        await asyncio.sleep(POLL_S)
    pytest.fail(f"never happened: {what}")


def product_query(product_id: int) -> str:
    return f'{{ product(id: "{product_id}") {{ name }} }}'


def failed(body: dict[str, Any]) -> bool:
    return "errors" in body


async def wave(
    client: httpx.AsyncClient, documents: list[str], concurrency: int = CLIENTS
) -> list[dict[str, Any]]:
    """Every document sent, ``concurrency`` at a time; their bodies in order."""
    slots = asyncio.Semaphore(concurrency)

    async def one(document: str) -> dict[str, Any]:
        async with slots:
            response = await query(client, document)
        body: dict[str, Any] = response.json()
        return body

    return list(await asyncio.gather(*(one(d) for d in documents)))


def products(start: int, count: int) -> list[str]:
    """Distinct reads (1 to 500), so none is coalesced with another."""
    return [product_query(1 + (start + k) % 500) for k in range(count)]


def opened_upstream(name: str) -> Upstream:
    """The upstream of the gateway opened last."""
    return DEMO_GATEWAYS[-1].started.upstreams[name]


async def detail(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    """The upstream's state in ``/readyz``."""
    body = (await client.get("/readyz")).json()
    state: dict[str, Any] = body["detail"][name]
    return state


# --- three catalog instances, one stopped --------------------------------------------


@pytest.fixture(scope="module")
def catalog_trio() -> Iterator[DemoPlatform]:
    with DemoPlatform(["catalog"], instances=3, ports={"catalog": find_free_ports(3)}) as trio:
        yield trio


@pytest.fixture
async def trio_admin(catalog_trio: DemoPlatform) -> AsyncIterator[AdminClient]:
    async with AdminClient() as admin:
        for endpoint in catalog_trio.endpoints("catalog"):
            await admin.reset(endpoint)
        yield admin
    for process in catalog_trio.processes:  # a failed test leaves none stopped
        if not process.running:
            restart(process)


def restart(process: ServiceProcess) -> None:
    process.start()
    process.wait_ready(time.monotonic() + 15)


def trio_settings(
    platform: DemoPlatform, trio: DemoPlatform, catalog: dict[str, Any]
) -> dict[str, Any]:
    addresses = {**platform.addresses, "catalog": trio.addresses["catalog"]}
    return gateway_settings(addresses, upstreams={"catalog": catalog})


async def test_a_stopped_instance_is_ejected_by_its_breaker_and_readmitted(
    platform: DemoPlatform, catalog_trio: DemoPlatform, trio_admin: AdminClient
) -> None:
    min_calls = 10
    settings = trio_settings(
        platform,
        catalog_trio,
        {
            "breaker": {"min_calls": min_calls, "failure_ratio": 0.5, "open_for": 0.5},
            "health": {"enabled": False},  # the breaker alone ejects and re-admits here
        },
    )
    stopped = catalog_trio.processes[1]
    endpoint = stopped.endpoint
    async with open_gateway(validate_config(settings)) as client:
        catalog = opened_upstream("catalog")
        assert catalog.stack is not None
        breaker = catalog.stack.instances[1].breaker
        assert breaker is not None

        served = await wave(client, products(0, CLIENTS))
        assert not any(failed(body) for body in served)
        assert len(await trio_admin.requests(endpoint)) > 0  # it took its share

        stopped.stop()
        before_ejection = 0
        sent = CLIENTS
        while (await detail(client, "catalog"))["instances"][1]["breaker"] == "closed":
            answers = await wave(client, products(sent, CLIENTS))
            sent += CLIENTS
            before_ejection += sum(failed(body) for body in answers)
        assert before_ejection <= min_calls
        assert breaker.transitions["closed->open"] == 1

        # Ejected: probes after open_for still fail, and are retried on the others.
        after = await wave(client, products(sent, 4 * CLIENTS))
        sent += 4 * CLIENTS
        assert not any(failed(body) for body in after)

        restart(stopped)
        await trio_admin.reset(endpoint)

        async def serving_again() -> bool:
            nonlocal sent
            answers = await wave(client, products(sent, 10))
            sent += 10
            assert not any(failed(body) for body in answers)
            state = (await detail(client, "catalog"))["instances"][1]
            return state["breaker"] == "closed" and bool(await trio_admin.requests(endpoint))

        await wait_until(serving_again, "the restarted instance serves again")
        assert breaker.transitions["half_open->closed"] >= 1

        await trio_admin.reset(endpoint)
        served = await wave(client, products(sent, CLIENTS))
        assert not any(failed(body) for body in served)
        assert len(await trio_admin.requests(endpoint)) > 0
    print(
        f"breaker: {before_ejection} client failures before ejection, {dict(breaker.transitions)}"
    )


async def test_health_checks_eject_a_stopped_instance_and_readmit_it(
    platform: DemoPlatform, catalog_trio: DemoPlatform, trio_admin: AdminClient
) -> None:
    settings = trio_settings(
        platform,
        catalog_trio,
        {
            "breaker": {"enabled": False},  # health checks alone eject and re-admit here
            "health": {"interval": 0.1, "unhealthy_threshold": 2, "healthy_threshold": 1},
        },
    )
    stopped = catalog_trio.processes[2]
    endpoint = stopped.endpoint
    async with open_gateway(validate_config(settings)) as client:
        catalog = opened_upstream("catalog")
        assert catalog.stack is not None and catalog.stack.health is not None
        checker = catalog.stack.health

        async def instance_admitted(expected: bool) -> bool:
            return (await detail(client, "catalog"))["instances"][2]["admitted"] is expected

        stopped.stop()
        await wait_until(lambda: instance_admitted(False), "the stopped instance is ejected")
        assert checker.ejections == 1
        calls = catalog.stack.instances[2].calls
        answers = await wave(client, products(0, 2 * CLIENTS))
        assert not any(failed(body) for body in answers)
        assert catalog.stack.instances[2].calls == calls  # not one call sent to it

        restart(stopped)
        await trio_admin.reset(endpoint)
        await wait_until(lambda: instance_admitted(True), "the restarted instance is re-admitted")
        assert checker.readmissions == 1
        answers = await wave(client, products(2 * CLIENTS, CLIENTS))
        assert not any(failed(body) for body in answers)
        assert len(await trio_admin.requests(endpoint)) > 0


# --- a service failing a share of its calls --------------------------------------------

USERS = 200


def user_queries() -> list[str]:
    return [f'{{ user(id: "{k}") {{ name }} }}' for k in range(1, USERS + 1)]


async def failing_accounts(
    platform: DemoPlatform, backends: Backends, error_rate: float, retry: dict[str, Any]
) -> tuple[list[dict[str, Any]], int, Upstream]:
    """``USERS`` distinct reads of the accounts service failing ``error_rate`` of its calls
    (seeded); the answers, the calls the service recorded, and the upstream."""
    settings = gateway_settings(
        platform.addresses,
        # The breaker would open at 50% failures; here only the budget is under test.
        upstreams={"accounts": {"retry": retry, "breaker": {"enabled": False}}},
    )
    endpoint = platform.endpoint("accounts")
    async with open_gateway(validate_config(settings)) as client:
        await backends.admin.set_faults(endpoint, FaultConfig(error_rate=error_rate, seed=11))
        try:
            answers = await wave(client, user_queries(), concurrency=20)
        finally:
            await backends.admin.set_faults(endpoint, FaultConfig())
        upstream = opened_upstream("accounts")
    return answers, len(await backends.records("accounts")), upstream


async def test_retries_hide_a_five_percent_failure_rate(
    platform: DemoPlatform, backends: Backends
) -> None:
    answers, calls, accounts = await failing_accounts(platform, backends, 0.05, {"budget": 0.1})
    succeeded = sum(not failed(body) for body in answers)
    assert succeeded >= 0.99 * USERS
    assert accounts.stack is not None and accounts.stack.retry is not None
    retry = accounts.stack.retry
    assert retry.calls == USERS
    assert calls == USERS + retry.retries  # every call and retry reached the service
    assert 0 < retry.retries <= 0.1 * USERS + retry.budget.reserve
    print(f"5% failing: {succeeded}/{USERS} answered, {calls} calls ({retry.retries} retries)")


async def test_the_retry_budget_bounds_the_calls_of_an_outage(
    platform: DemoPlatform, backends: Backends
) -> None:
    answers, calls, accounts = await failing_accounts(
        platform, backends, 0.5, {"budget": 0.1, "min_per_second": 0}
    )
    assert accounts.stack is not None and accounts.stack.retry is not None
    retry = accounts.stack.retry
    assert calls == USERS + retry.retries
    assert calls <= USERS + 0.1 * USERS  # 10% more calls at most, however many fail
    assert retry.stopped["budget"] > 0  # the budget, not the luck of the draw, stopped them
    failures = sum(failed(body) for body in answers)
    print(f"50% failing: {calls} calls for {USERS} requests, {failures} failed")


# --- a service that hangs --------------------------------------------------------------


async def test_once_the_breaker_opens_a_hung_service_is_not_called(
    platform: DemoPlatform, backends: Backends
) -> None:
    min_calls = 5
    settings = gateway_settings(
        platform.addresses,
        upstreams={
            "catalog": {
                "timeout": 0.3,
                "breaker": {"min_calls": min_calls, "open_for": 600},
                "health": {"enabled": False},
            }
        },
    )
    endpoint = platform.endpoint("catalog")
    mixed = [f'{{ user(id: "1") {{ name }} product(id: "{k}") {{ name }} }}' for k in range(1, 30)]
    async with open_gateway(validate_config(settings)) as client:
        await backends.admin.set_faults(endpoint, FaultConfig(hang=True))
        try:
            hung = await wave(client, mixed[:min_calls])
            for body in hung:
                assert body["data"]["user"]["name"]
                assert body["data"]["product"] is None
                assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_TIMEOUT"
            assert (await detail(client, "catalog"))["instances"][0]["breaker"] == "open"

            refused = await wave(client, mixed[min_calls:])
            for body in refused:
                assert body["data"]["user"]["name"]
                assert body["errors"][0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
        finally:
            await backends.admin.set_faults(endpoint, FaultConfig())
        catalog = opened_upstream("catalog")
        assert catalog.stack is not None
        breaker = catalog.stack.instances[0].breaker
        assert breaker is not None and breaker.calls == min_calls
        assert catalog.stack.balancer.refused == len(mixed) - min_calls

    async def recorded() -> bool:
        return len(await backends.records("catalog")) >= min_calls

    await wait_until(recorded, "the hung calls are recorded")
    assert len(await backends.records("catalog")) == min_calls
