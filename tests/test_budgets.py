"""Per-client cost budgets: exact under concurrency, in one process and across processes via Redis.

Tests that need Redis (``SWITCHYARD_TEST_REDIS_URL``, default the local server)
or the ``redis-server`` binary skip when it is absent, except under ``CI=true``,
where a missing dependency fails the run instead of silently thinning it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from redis.asyncio import Redis

from switchyard.budgets import (
    BucketPolicy,
    BudgetDecision,
    Budgets,
    BudgetSettings,
    BudgetState,
    MemoryBudgetStore,
    RedisBudgetStore,
    rate_limit_headers,
    throttle_status,
)
from tests.redis_support import REDIS_URL, RedisServer, free_port

ROOT = Path(__file__).resolve().parents[1]
NEGLIGIBLE_REFILL = 1e-6
HUNDRED = BucketPolicy(capacity=100, refill_per_second=NEGLIGIBLE_REFILL)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def settings(**overrides: Any) -> BudgetSettings:
    return BudgetSettings.model_validate({"enabled": True, **overrides})


# Settings


def test_default_settings_have_four_tiers_in_memory_failing_open() -> None:
    budget = BudgetSettings()
    assert budget.backend == "memory"
    assert budget.failure_mode == "open"
    assert budget.redis_url == "redis://127.0.0.1:6379/0"
    assert budget.key_prefix == "switchyard:budget"
    assert budget.default_tier == "anonymous"
    assert {name: (p.capacity, p.refill_per_second) for name, p in budget.tiers.items()} == {
        "anonymous": (100, 5.0),
        "free": (1000, 50.0),
        "pro": (5000, 250.0),
        "service": (20000, 1000.0),
    }


def test_the_default_tier_must_be_a_tier() -> None:
    with pytest.raises(ValidationError, match="default_tier 'gold' is not one of the tiers"):
        BudgetSettings(default_tier="gold")


def test_the_redis_password_is_masked_in_repr_and_never_echoed_in_errors() -> None:
    budget = settings(redis_url="redis://app:hunter2@cache:6379/0")
    assert "hunter2" not in repr(budget)
    assert "redis_url='redis://app:***@cache:6379/0'" in repr(budget)
    with pytest.raises(ValidationError) as error:
        BudgetSettings(redis_url="http://app:hunter2@cache:6379/0")
    assert "hunter2" not in str(error.value)
    assert "must start with redis://, rediss:// or unix://" in str(error.value)
    with pytest.raises(ValidationError) as error:
        BudgetSettings.model_validate({"redis_url": "redis://:hunter2@cache:6379", "tier": 1})
    assert "hunter2" not in str(error.value)
    with pytest.raises(ValidationError) as error:
        BudgetSettings(redis_url="rediss://:hunter2@cache:6380/0?ssl_cert_reqs=maybe")
    assert "hunter2" not in str(error.value)
    assert "ssl_cert_reqs must be required, optional or none" in str(error.value)
    with pytest.raises(ValidationError, match="its TLS files cannot be used"):
        BudgetSettings(redis_url="rediss://cache:6380/0?ssl_ca_certs=/nonexistent/ca.pem")


def test_a_redis_url_option_redis_py_does_not_know_is_a_config_error() -> None:
    with pytest.raises(ValidationError, match="an option redis-py does not know") as error:
        BudgetSettings(redis_url="redis://:hunter2@cache:6379/0?sokcet_timeout=1")
    assert "sokcet_timeout" in str(error.value)
    assert "hunter2" not in str(error.value)
    assert not settings(redis_url="redis://cache:6379/0?socket_keepalive=false").redis_cluster


def test_trusted_proxies_are_networks_and_bad_ones_are_rejected() -> None:
    budget = settings(trusted_proxies=["10.0.0.1", "192.168.0.0/16", "::1"])
    assert [str(n) for n in budget.trusted_proxies] == ["10.0.0.1/32", "192.168.0.0/16", "::1/128"]
    with pytest.raises(ValidationError, match=r"trusted_proxies\.0"):
        BudgetSettings(trusted_proxies=["10.0.0.1/8"])


def test_a_key_prefix_may_not_break_the_hash_tag() -> None:
    with pytest.raises(ValidationError, match="key_prefix"):
        BudgetSettings(key_prefix="budget}{x")


# The bucket, in memory


async def test_memory_admits_exactly_capacity_of_200_concurrent_takes() -> None:
    store = MemoryBudgetStore()
    decisions = await asyncio.gather(*(store.take("c", 1, HUNDRED) for _ in range(200)))
    assert sum(d.allowed for d in decisions) == 100
    assert all(d.reason == "exhausted" for d in decisions if not d.allowed)


async def test_memory_refills_at_the_rate_and_says_when_to_retry() -> None:
    clock = FakeClock()
    store = MemoryBudgetStore(clock=clock)
    policy = BucketPolicy(capacity=10, refill_per_second=10)
    assert (await store.take("c", 10, policy)).remaining == 0.0
    denied = await store.take("c", 5, policy)
    assert (denied.allowed, denied.retry_after, denied.reason) == (False, 0.5, "exhausted")
    clock.now += 0.3
    assert (await store.peek("c", policy)).remaining == pytest.approx(3.0)
    assert (await store.take("c", 5, policy)).retry_after == pytest.approx(0.2)
    clock.now += 0.2
    allowed = await store.take("c", 5, policy)
    assert (allowed.allowed, allowed.retry_after) == (True, 0.0)
    assert allowed.remaining == pytest.approx(0.0)
    clock.now += 60
    assert (await store.peek("c", policy)).remaining == 10.0


async def test_a_denied_take_spends_nothing_and_zero_cost_always_fits() -> None:
    store = MemoryBudgetStore(clock=FakeClock())
    await store.take("c", 100, HUNDRED)
    assert not (await store.take("c", 1, HUNDRED)).allowed
    zero = await store.take("c", 0, HUNDRED)
    assert (zero.allowed, zero.remaining) == (True, 0.0)


async def test_a_cost_above_capacity_can_never_fit() -> None:
    store = MemoryBudgetStore()
    decision = await store.take("c", 101, HUNDRED)
    assert (decision.allowed, decision.retry_after, decision.reason) == (
        False,
        None,
        "exceeds_capacity",
    )
    assert decision.remaining == 100.0
    assert decision.message == (
        "This query costs 101 points, more than the 100 this client's budget can ever hold."
    )


async def test_memory_refund_gives_points_back_up_to_capacity() -> None:
    store = MemoryBudgetStore(clock=FakeClock())
    await store.take("refunded", 50, HUNDRED)
    await store.take("charged", 50, HUNDRED)
    refunded = await store.refund("refunded", 40, HUNDRED)
    charged = await store.peek("charged", HUNDRED)
    assert refunded.remaining - charged.remaining == 40.0
    assert (await store.refund("refunded", 1000, HUNDRED)).remaining == 100.0


async def test_memory_stays_bounded_and_forgets_full_buckets_first() -> None:
    clock = FakeClock()
    store = MemoryBudgetStore(clock=clock, max_keys=3)
    policy = BucketPolicy(capacity=10, refill_per_second=1)
    for key in "abcde":
        await store.take(key, 5, policy)
    assert len(store) == 3
    assert (await store.peek("e", policy)).remaining == 5.0
    clock.now += 5  # a..e are full again: nothing worth keeping
    await store.take("f", 1, policy)
    assert len(store) == 1


async def test_negative_costs_are_rejected() -> None:
    with pytest.raises(ValueError, match="cost must not be negative, got -1"):
        await MemoryBudgetStore().take("c", -1, HUNDRED)


# The bucket, in Redis


async def test_redis_admits_exactly_capacity_of_200_concurrent_takes(
    store: RedisBudgetStore,
) -> None:
    decisions = await asyncio.gather(*(store.take("c", 1, HUNDRED) for _ in range(200)))
    assert sum(d.allowed for d in decisions) == 100


CHILD = """
import asyncio, sys
from redis.asyncio import Redis
from switchyard.budgets import BucketPolicy, RedisBudgetStore

async def main(url, prefix, start):
    store = RedisBudgetStore.from_url(url, key_prefix=prefix)
    signal = Redis.from_url(url)
    policy = BucketPolicy(capacity=100, refill_per_second=1e-6)
    await asyncio.gather(*(store.ping() for _ in range(50)))  # open the pool's connections
    print("ready", flush=True)
    await signal.blpop([start], timeout=10)
    decisions = await asyncio.gather(*(store.take("shared", 1, policy) for _ in range(100)))
    print(sum(d.allowed for d in decisions), flush=True)
    await signal.aclose()
    await store.aclose()

asyncio.run(main(*sys.argv[1:]))
"""


async def test_two_processes_sharing_redis_admit_exactly_capacity_together(
    redis: Redis, prefix: str
) -> None:
    start = "{" + prefix + ":start}"
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CHILD,
            REDIS_URL,
            prefix,
            start,
            stdout=subprocess.PIPE,
            env=environment,
        )
        for _ in range(2)
    ]
    for child in children:
        assert child.stdout is not None
        assert await asyncio.wait_for(child.stdout.readline(), 10) == b"ready\n"
    await redis.rpush(start, "go", "go")  # both start their 100 takes together
    admitted = []
    for child in children:
        output, _ = await asyncio.wait_for(child.communicate(), 10)
        assert child.returncode == 0
        admitted.append(int(output))
    assert sum(admitted) == 100


async def test_redis_refills_at_the_rate_and_says_when_to_retry(store: RedisBudgetStore) -> None:
    policy = BucketPolicy(capacity=10, refill_per_second=10)
    await store.take("c", 10, policy)
    denied = await store.take("c", 5, policy)
    assert not denied.allowed
    assert denied.retry_after == pytest.approx(0.5, abs=0.02)
    await asyncio.sleep(0.2)
    assert (await store.peek("c", policy)).remaining == pytest.approx(2.0, abs=0.3)


async def test_redis_refund_gives_points_back_up_to_capacity(store: RedisBudgetStore) -> None:
    await store.take("refunded", 50, HUNDRED)
    await store.take("charged", 50, HUNDRED)
    refunded = await store.refund("refunded", 40, HUNDRED)
    charged = await store.peek("charged", HUNDRED)
    assert refunded.remaining - charged.remaining == pytest.approx(40.0, abs=0.001)
    assert (await store.refund("refunded", 1000, HUNDRED)).remaining == 100.0


async def test_redis_keys_are_hash_tagged_and_expire_when_the_bucket_would_be_full(
    store: RedisBudgetStore, redis: Redis, prefix: str
) -> None:
    policy = BucketPolicy(capacity=100, refill_per_second=10)
    await store.take("ip:203.0.113.7", 30, policy)
    key = "{" + prefix + ":ip:203.0.113.7}"
    assert store.key("ip:203.0.113.7") == key
    assert await redis.keys("*" + prefix + "*") == [key]
    assert 2900 <= await redis.pttl(key) <= 3000  # 30 points at 10/s
    saved = await redis.hgetall(key)
    assert float(saved["tokens"]) == pytest.approx(70.0, abs=0.01)
    await store.refund("ip:203.0.113.7", 30, policy)
    assert await redis.exists(key) == 0  # full again: nothing to keep


SKEWED_CHILD = """
import asyncio, sys, time
from switchyard.budgets import BucketPolicy, RedisBudgetStore

skew = float(sys.argv[3])
real_time, real_monotonic = time.time, time.monotonic
time.time = lambda: real_time() + skew
time.monotonic = lambda: real_monotonic() + skew

async def main(url, prefix):
    store = RedisBudgetStore.from_url(url, key_prefix=prefix)
    decision = await store.take("c", 5, BucketPolicy(capacity=100, refill_per_second=0.01))
    print(decision.allowed, decision.remaining, flush=True)
    await store.aclose()

asyncio.run(main(*sys.argv[1:3]))
"""


async def test_replicas_with_skewed_clocks_agree_because_redis_keeps_time(
    store: RedisBudgetStore, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A slow refill: however long the children take to start, real time adds under a point,
    # while a clock read from either skewed replica would refill the bucket to the top.
    policy = BucketPolicy(capacity=100, refill_per_second=0.01)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() - 86400.0)
    assert (await store.take("c", 10, policy)).remaining == pytest.approx(90, abs=0.5)
    # Two more "replicas": one ten years ahead, one a year behind, in time.time and monotonic.
    answers = []
    for skew in (10 * 365 * 86400.0, -365 * 86400.0):
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", SKEWED_CHILD, REDIS_URL, prefix, str(skew),
            stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        output, _ = await asyncio.wait_for(child.communicate(), 10)
        allowed, remaining = output.split()
        answers.append((allowed, float(remaining)))
    assert answers[0][0] == answers[1][0] == b"True"
    # Each child spent 5; only real seconds refilled anything.
    assert answers[0][1] == pytest.approx(85, abs=0.5)
    assert answers[1][1] == pytest.approx(80, abs=0.5)


# Redis unreachable


@pytest.mark.parametrize("failure_mode", ["open", "closed"])
async def test_an_unreachable_redis_follows_the_failure_mode_without_raising(
    failure_mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    budgets = Budgets.from_settings(
        settings(backend="redis", redis_url=url, failure_mode=failure_mode, recheck_interval=0)
    )
    with caplog.at_level(logging.WARNING, logger="switchyard.budgets"):
        decisions = [await budgets.check("c", "free", 10) for _ in range(20)]
        state = await budgets.refund("c", "free", 5)
    assert {d.degraded for d in decisions} == {True}
    assert {d.reason for d in decisions} == {"backend_unavailable"}
    assert {d.allowed for d in decisions} == {failure_mode == "open"}
    assert state.degraded
    if failure_mode == "closed":
        assert decisions[0].message == "Cost budgets cannot be checked right now; retry shortly."
        assert rate_limit_headers(decisions[0]) == {"Retry-After": "1"}
    else:
        assert rate_limit_headers(decisions[0]) == {}
    assert not budgets.healthy
    assert await budgets.ready() is False
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert warnings[0].startswith("budget store unavailable (redis://:***@127.0.0.1:")
    assert "hunter2" not in warnings[0]
    assert warnings[0].endswith(
        f"failing {failure_mode}: requests are "
        f"{'admitted' if failure_mode == 'open' else 'rejected'} without a budget check"
    )
    await budgets.aclose()


async def test_an_unreachable_redis_fails_fast() -> None:
    budgets = Budgets.from_settings(
        settings(backend="redis", redis_url=f"redis://127.0.0.1:{free_port()}/0")
    )
    started = time.perf_counter()
    await budgets.check("c", "free", 1)
    await budgets.check("c", "free", 1)  # within recheck_interval: Redis is not tried
    assert time.perf_counter() - started < 0.5
    await budgets.aclose()


@pytest.mark.parametrize("failure_mode", ["open", "closed"])
async def test_limits_follow_the_failure_mode_while_redis_is_down_and_resume_when_it_returns(
    failure_mode: str, redis_server: RedisServer
) -> None:
    budgets = Budgets.from_settings(
        settings(
            backend="redis",
            redis_url=redis_server.url,
            failure_mode=failure_mode,
            recheck_interval=0,
            tiers={"tiny": {"capacity": 3, "refill_per_second": NEGLIGIBLE_REFILL}},
            default_tier="tiny",
        )
    )

    async def allowed(count: int) -> list[bool]:
        return [(await budgets.check("c", "tiny", 1)).allowed for _ in range(count)]

    assert await allowed(4) == [True, True, True, False]
    redis_server.stop()
    during = [await budgets.check("c", "tiny", 1) for _ in range(3)]
    assert [d.allowed for d in during] == [failure_mode == "open"] * 3
    assert all(d.degraded for d in during)
    assert await budgets.ready() is False
    redis_server.start()  # empty: every bucket starts full again
    assert await budgets.ready() is True
    assert budgets.healthy
    assert await allowed(4) == [True, True, True, False]
    await budgets.aclose()


# The facade


async def test_budgets_pick_the_tier_policy_and_fall_back_to_the_default_tier(
    caplog: pytest.LogCaptureFixture,
) -> None:
    budgets = Budgets.from_settings(settings())
    assert budgets.policy_for("pro") == BucketPolicy(capacity=5000, refill_per_second=250)
    with caplog.at_level(logging.WARNING, logger="switchyard.budgets"):
        assert budgets.policy_for("gold") == budgets.policy_for("anonymous")
        budgets.policy_for("gold")
    assert [r.getMessage() for r in caplog.records] == [
        "budget tier 'gold' is not configured; using 'anonymous'"
    ]
    decision = await budgets.check("partner-app", "pro", 40)
    assert (decision.allowed, decision.remaining) == (True, 4960.0)
    assert (await budgets.refund("partner-app", "pro", 30)).remaining == pytest.approx(4990, abs=1)
    assert await budgets.ready() is True
    await budgets.aclose()


async def test_budgets_over_redis_share_buckets_between_replicas(prefix: str) -> None:
    one, two = (
        Budgets.from_settings(settings(backend="redis", redis_url=REDIS_URL, key_prefix=prefix))
        for _ in range(2)
    )
    await one.check("ip:203.0.113.7", "anonymous", 60)
    decision = await two.check("ip:203.0.113.7", "anonymous", 60)
    assert (decision.allowed, decision.reason) == (False, "exhausted")
    assert decision.remaining == pytest.approx(40, abs=0.5)
    await one.aclose()
    await two.aclose()


# What the client is told


def test_headers_of_an_admitted_request() -> None:
    decision = BudgetDecision(True, 60, 940.0, 1000, 50.0)
    assert rate_limit_headers(decision) == {
        "RateLimit-Policy": '"cost";q=1000;w=20',
        "RateLimit": '"cost";r=940;t=2',
    }


def test_headers_of_a_denied_request_round_retry_after_up() -> None:
    decision = BudgetDecision(False, 50, 12.5, 1000, 50.0, retry_after=0.75, reason="exhausted")
    assert rate_limit_headers(decision) == {
        "RateLimit-Policy": '"cost";q=1000;w=20',
        "RateLimit": '"cost";r=12;t=20',
        "Retry-After": "1",
    }
    later = BudgetDecision(False, 500, 0.0, 1000, 50.0, retry_after=10.01, reason="exhausted")
    assert rate_limit_headers(later)["Retry-After"] == "11"
    assert later.message == "This query costs 500 points but only 0 are available; retry in 11 s."


def test_a_cost_that_can_never_fit_gets_no_retry_after() -> None:
    decision = BudgetDecision(False, 2000, 1000.0, 1000, 50.0, None, reason="exceeds_capacity")
    assert rate_limit_headers(decision) == {
        "RateLimit-Policy": '"cost";q=1000;w=20',
        "RateLimit": '"cost";r=1000;t=0',
    }


def test_throttle_status_has_shopifys_shape() -> None:
    assert throttle_status(BudgetDecision(True, 10, 990.5, 1000, 50.0)) == {
        "maximumAvailable": 1000.0,
        "currentlyAvailable": 990,
        "restoreRate": 50.0,
    }
    assert throttle_status(BudgetState(100.0, 100, 5.0)) == {
        "maximumAvailable": 100.0,
        "currentlyAvailable": 100,
        "restoreRate": 5.0,
    }


# Whose bucket


async def check_credit_is_applied_with_the_next_check(budgets: Budgets) -> None:
    first = await budgets.check("c", "anonymous", 50)
    budgets.credit("c", 40)
    second = await budgets.check("c", "anonymous", 1)
    assert (first.remaining, second.remaining) == pytest.approx((50, 89), abs=0.01)
    budgets.credit("c", 5)
    refused = await budgets.check("c", "anonymous", 101)  # never fits: the credit still lands
    assert not refused.allowed
    assert (await budgets.peek("c", "anonymous")).remaining == pytest.approx(94, abs=0.01)


async def test_credits_are_applied_with_the_next_check_in_memory() -> None:
    budgets = Budgets.from_settings(settings(tiers={"anonymous": HUNDRED}))
    await check_credit_is_applied_with_the_next_check(budgets)


async def test_credits_are_applied_with_the_next_check_in_redis(prefix: str) -> None:
    budgets = Budgets.from_settings(
        settings(
            backend="redis", redis_url=REDIS_URL, key_prefix=prefix, tiers={"anonymous": HUNDRED}
        )
    )
    try:
        await check_credit_is_applied_with_the_next_check(budgets)
    finally:
        await budgets.aclose()


async def test_refunds_over_redis_are_seen_by_every_replica(prefix: str) -> None:
    one, two = (
        Budgets.from_settings(
            settings(
                backend="redis",
                redis_url=REDIS_URL,
                key_prefix=prefix,
                tiers={"anonymous": HUNDRED},
            )
        )
        for _ in range(2)
    )
    try:
        await one.check("ip:203.0.113.7", "anonymous", 60)
        one.credit("ip:203.0.113.7", 50)
        await one.aclose()  # what waits to be sent goes now: no later check from this replica
        decision = await two.check("ip:203.0.113.7", "anonymous", 60)
        assert decision.allowed
        assert decision.remaining == pytest.approx(30, abs=0.01)
    finally:
        await two.aclose()
