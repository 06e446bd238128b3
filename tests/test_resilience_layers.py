"""The resilience layers one by one, over scripted transports, a fake clock and no sleeps."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from switchyard.deadline import Deadline
from switchyard.errors import ErrorCode, upstream_error_code
from switchyard.upstream import (
    CallScope,
    RestRequest,
    Transport,
    UpstreamNotFound,
    UpstreamRefused,
    UpstreamSettings,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from switchyard.upstream.balancing import Balancer, Instance
from switchyard.upstream.breaker import CircuitBreaker
from switchyard.upstream.bulkhead import Bulkhead
from switchyard.upstream.health import HealthChecker
from switchyard.upstream.retry import Retrying
from switchyard.upstream.settings import BreakerSettings, HealthSettings, RetrySettings
from switchyard.upstream.stack import build_stack

GET = RestRequest("/things")
POST = RestRequest("/things", method="POST")
SCOPE = CallScope()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Scripted(Transport):
    """Raises or returns the scripted outcomes in turn, then answers "ok"."""

    def __init__(self, *outcomes: object, healthy: bool = True) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0
        self.healthy = healthy
        self.gate: asyncio.Event | None = None

    async def handle(self, request: Any, scope: CallScope) -> Any:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        outcome = self.outcomes.pop(0) if self.outcomes else "ok"
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def check(self, timeout: float) -> bool:
        return self.healthy


def down(retry_after: float | None = None) -> UpstreamUnavailable:
    return UpstreamUnavailable("svc", "GET /things", "503", retryable=True, retry_after=retry_after)


# --- circuit breaker -------------------------------------------------------------------


def breaker(inner: Transport, clock: FakeClock, **settings: Any) -> CircuitBreaker:
    defaults = {"min_calls": 4, "failure_ratio": 0.5, "window": 10.0, "open_for": 5.0}
    return CircuitBreaker(
        inner, BreakerSettings(**{**defaults, **settings}), name="svc", clock=clock
    )


async def outcomes(transport: Transport, calls: int) -> list[str]:
    seen = []
    for _ in range(calls):
        try:
            seen.append(await transport.handle(GET, SCOPE))
        except UpstreamRefused:
            seen.append("refused")
        except UpstreamUnavailable:
            seen.append("failed")
    return seen


async def test_the_breaker_opens_fails_fast_half_opens_and_closes() -> None:
    clock = FakeClock()
    inner = Scripted("ok", "ok", down(), down(), down())
    circuit = breaker(inner, clock)
    assert await outcomes(circuit, 4) == ["ok", "ok", "failed", "failed"]
    assert circuit.state == "open"  # 2 of 4 calls failed: the ratio is reached
    assert await outcomes(circuit, 3) == ["refused"] * 3
    assert inner.calls == 4  # nothing reached the instance while open

    clock.now += 5.0
    assert circuit.state == "half_open"
    assert await outcomes(circuit, 2) == ["failed", "refused"]  # the probe failed: open again
    clock.now += 5.0
    assert await outcomes(circuit, 2) == ["ok", "ok"]  # the probe succeeded: closed
    assert circuit.state == "closed"
    assert dict(circuit.transitions) == {
        "closed->open": 1,
        "open->half_open": 2,
        "half_open->open": 1,
        "half_open->closed": 1,
    }
    assert (circuit.calls, circuit.failures, circuit.rejected) == (7, 3, 4)


async def test_the_breaker_needs_min_calls_and_forgets_old_failures() -> None:
    clock = FakeClock()
    circuit = breaker(Scripted(down(), down(), down(), down()), clock)
    assert await outcomes(circuit, 3) == ["failed"] * 3
    assert circuit.state == "closed"  # 3 calls: below min_calls
    clock.now += 11.0  # they left the window
    assert await outcomes(circuit, 1) == ["failed"]
    assert circuit.state == "closed"


async def test_answers_of_a_working_instance_are_not_failures() -> None:
    clock = FakeClock()
    not_found = UpstreamNotFound("svc", "GET /things", "404")
    circuit = breaker(Scripted(*[not_found] * 6), clock, min_calls=2)
    for _ in range(6):
        with pytest.raises(UpstreamNotFound):
            await circuit.handle(GET, SCOPE)
    assert circuit.state == "closed"


async def test_a_cancelled_probe_frees_its_slot() -> None:
    clock = FakeClock()
    inner = Scripted(down(), down())
    circuit = breaker(inner, clock, min_calls=2)
    await outcomes(circuit, 2)
    clock.now += 5.0
    inner.gate = asyncio.Event()
    probe = asyncio.create_task(circuit.handle(GET, SCOPE))
    await asyncio.sleep(0)
    assert not circuit.available()  # one probe in flight
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert circuit.available()


# --- balancing -------------------------------------------------------------------------


async def test_least_outstanding_skips_ejected_instances_and_refuses_when_none_is_left() -> None:
    clock = FakeClock()
    busy, idle, sick = Scripted(), Scripted(), Scripted(down(), down())
    sick_breaker = breaker(sick, clock, min_calls=2)
    instances = [
        Instance(0, "a", busy),
        Instance(1, "b", idle),
        Instance(2, "c", sick_breaker, sick_breaker),
    ]
    balancer = Balancer("svc", instances)
    await outcomes(sick_breaker, 2)  # its breaker opens
    busy.gate = asyncio.Event()
    instances[1].healthy = False  # so the held call goes to the first
    held = asyncio.create_task(balancer.handle(GET, SCOPE))
    await asyncio.sleep(0)
    instances[1].healthy = True
    assert instances[0].outstanding == 1
    for _ in range(4):
        await balancer.handle(GET, SCOPE)
    assert (busy.calls, idle.calls, sick.calls) == (1, 4, 2)
    busy.gate.set()
    await held

    instances[0].healthy = instances[1].healthy = False  # ejected by health checks
    with pytest.raises(UpstreamRefused) as refused:
        await balancer.handle(GET, SCOPE)
    assert upstream_error_code(refused.value)[0] is ErrorCode.UPSTREAM_UNAVAILABLE
    assert balancer.refused == 1


async def test_round_robin_takes_admitted_instances_in_turn() -> None:
    first, second = Scripted(), Scripted()
    balancer = Balancer("svc", [Instance(0, "a", first), Instance(1, "b", second)], "round_robin")
    for _ in range(6):
        await balancer.handle(GET, SCOPE)
    assert (first.calls, second.calls) == (3, 3)


# --- retries ---------------------------------------------------------------------------


def retrying(
    inner: Transport, slept: list[float], clock: FakeClock | None = None, **settings: Any
) -> Retrying:
    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    return Retrying(
        inner,
        RetrySettings(**settings),
        name="svc",
        timeout=2.0,
        clock=clock or FakeClock(),
        sleep=sleep,
    )


async def test_a_retry_goes_to_an_instance_not_tried_yet() -> None:
    refusing, working = Scripted(*[down()] * 5), Scripted()
    balancer = Balancer("svc", [Instance(0, "a", refusing), Instance(1, "b", working)])
    slept: list[float] = []
    retry = retrying(balancer, slept)
    for _ in range(4):
        assert await retry.handle(GET, SCOPE) == "ok"
    assert refusing.calls <= 4 and working.calls == 4
    assert retry.retries == refusing.calls
    assert all(0 <= s <= 0.025 for s in slept)  # full jitter below the first backoff


async def test_only_safe_calls_and_retryable_failures_are_retried() -> None:
    slept: list[float] = []
    inner = Scripted(down(), UpstreamUnavailable("svc", "GET /things", "500"), down())
    retry = retrying(inner, slept)
    with pytest.raises(UpstreamUnavailable):
        await retry.handle(POST, SCOPE)  # not idempotent
    with pytest.raises(UpstreamUnavailable):
        await retry.handle(GET, SCOPE)  # a 500: not retryable
    timeout = UpstreamTimeout("svc", "GET /things", "slow")
    inner.outcomes = [timeout]
    with pytest.raises(UpstreamTimeout):
        await retry.handle(GET, SCOPE)
    assert (inner.calls, retry.retries) == (3, 0)

    marked = Retrying(
        Scripted(down()), RetrySettings(), name="svc", idempotent_upstream=True, timeout=2.0
    )
    assert marked.may_retry(POST)


async def test_attempts_bound_the_retries_and_waits_grow() -> None:
    slept: list[float] = []
    inner = Scripted(*[down()] * 10)
    retry = retrying(inner, slept, attempts=4, backoff=1.0, max_backoff=100.0)
    with pytest.raises(UpstreamUnavailable):
        await retry.handle(GET, CallScope(deadline=Deadline.after(3600)))
    assert inner.calls == 4 and retry.stopped["attempts"] == 1
    assert len(slept) == 3
    assert all(0 <= wait <= 2**k for k, wait in enumerate(slept))


async def test_retry_after_is_honoured_within_the_deadline() -> None:
    slept: list[float] = []
    retry = retrying(Scripted(down(retry_after=1.5)), slept)
    assert await retry.handle(GET, CallScope(deadline=Deadline.after(3600))) == "ok"
    assert slept == [1.5]

    slept.clear()
    inner = Scripted(down(retry_after=30.0))
    retry = retrying(inner, slept)
    with pytest.raises(UpstreamUnavailable):
        await retry.handle(GET, CallScope(deadline=Deadline.after(10)))
    assert (inner.calls, slept, retry.stopped["deadline"]) == (1, [], 1)


async def test_the_budget_allows_a_share_of_calls_plus_a_reserve() -> None:
    clock = FakeClock()
    slept: list[float] = []
    inner = Scripted()
    retry = retrying(
        inner, slept, clock, attempts=2, budget=0.1, min_per_second=0.5, budget_window=10.0
    )
    for _ in range(30):  # 3 tokens from calls, 5 in reserve
        await retry.handle(GET, SCOPE)
    inner.outcomes = [down()] * 40
    for _ in range(20):
        with pytest.raises(UpstreamUnavailable):
            await retry.handle(GET, SCOPE)
    # 50 calls: 5 tokens, plus the reserve's 5
    assert retry.retries == 10
    assert retry.stopped == {"attempts": 10, "deadline": 0, "budget": 10}
    clock.now += 11.0  # the window has passed: only the reserve is left
    assert retry.budget.balance() == 5.0


# --- bulkhead --------------------------------------------------------------------------


async def test_the_bulkhead_lets_a_call_wait_for_a_slot_then_refuses() -> None:
    inner = Scripted()
    inner.gate = asyncio.Event()
    bulkhead = Bulkhead(inner, name="svc", limit=1, wait=3600)
    first = asyncio.create_task(bulkhead.handle(GET, SCOPE))
    second = asyncio.create_task(bulkhead.handle(GET, SCOPE))
    await asyncio.sleep(0)
    assert (bulkhead.in_flight, inner.calls) == (1, 1)
    inner.gate.set()
    assert list(await asyncio.gather(first, second)) == ["ok", "ok"]
    assert bulkhead.peak == 1

    inner.gate.clear()
    impatient = Bulkhead(inner, name="svc", limit=1, wait=0)
    held = asyncio.create_task(impatient.handle(GET, SCOPE))
    await asyncio.sleep(0)
    with pytest.raises(UpstreamRefused):
        await impatient.handle(GET, SCOPE)
    assert impatient.rejected == 1
    inner.gate.set()
    await held


# --- health checks ---------------------------------------------------------------------


async def test_health_checks_eject_after_failures_in_a_row_and_readmit() -> None:
    transport = Scripted(healthy=False)
    instance = Instance(0, "a", transport)
    checker = HealthChecker(
        "svc", [instance], HealthSettings(unhealthy_threshold=2, healthy_threshold=2)
    )
    await checker.check_once()
    assert instance.admitted()
    await checker.check_once()
    assert not instance.admitted() and checker.ejections == 1
    transport.healthy = True
    await checker.check_once()
    assert not instance.admitted()
    await checker.check_once()
    assert instance.admitted() and checker.readmissions == 1


# --- the stack -------------------------------------------------------------------------


def fake_kinds(made: list[Scripted]) -> dict[str, Any]:
    def factory(name: str, address: str, settings: UpstreamSettings) -> Transport:
        made.append(Scripted())
        return made[-1]

    return {"fake": factory}


def layers(transport: Transport) -> list[str]:
    names = []
    while True:
        names.append(type(transport).__name__)
        if isinstance(transport, Balancer):
            return [*names, type(transport.instances[0].transport).__name__]
        transport = transport.inner  # type: ignore[attr-defined]


def test_the_stack_has_a_layer_per_enabled_feature_in_order() -> None:
    made: list[Scripted] = []
    settings = UpstreamSettings(kind="fake", instances=["a", "b"], max_concurrency=8)
    stack = build_stack("svc", settings, fake_kinds(made), outer=[])
    assert layers(stack.transport) == [
        "Retrying",
        "Bulkhead",
        "Balancer",
        "CircuitBreaker",
    ]
    assert stack.health is None  # no health path, not gRPC
    assert len(made) == 2

    bare = UpstreamSettings.model_validate(
        {
            "kind": "fake",
            "instances": ["a"],
            "retry": {"enabled": False},
            "breaker": {"enabled": False},
            "health_path": "/healthz",
        }
    )
    stack = build_stack("svc", bare, fake_kinds(made), outer=[])
    assert layers(stack.transport) == ["Balancer", "Scripted"]
    assert stack.health is not None
    assert stack.snapshot() == {
        "instances": [{"admitted": True, "healthy": True, "outstanding": 0}]
    }
