"""The one interface to a bucket store, what it answers, and the arithmetic both stores share.

A store keeps one token bucket per key. ``take`` refills the bucket for the
time elapsed and then either subtracts the whole cost or, if it does not fit,
nothing at all::

    decision = await store.take("ip:203.0.113.7", 12, policy)
    if not decision.allowed:
        ...  # HTTP 429, Retry-After: decision.retry_after
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol

from switchyard.budgets.settings import BucketPolicy

DenyReason = Literal["exhausted", "exceeds_capacity", "backend_unavailable"]


class BudgetBackendUnavailable(Exception):
    """The store could not be reached or did not answer; the message never holds a password."""


class BudgetBackendRefused(BudgetBackendUnavailable):
    """The store answered, but with an error (a Redis replica's ``READONLY``...).

    No time was lost waiting, so the next call tries the store again at once
    rather than after ``recheck_interval``.
    """


@dataclass(frozen=True, slots=True)
class BudgetState:
    """How full a bucket is; ``degraded``: the store was unreachable and the numbers are a guess."""

    remaining: float
    capacity: int
    refill_per_second: float
    degraded: bool = False

    @property
    def seconds_to_full(self) -> float:
        return max(0.0, self.capacity - self.remaining) / self.refill_per_second


@dataclass(frozen=True, slots=True)
class BudgetDecision:
    """The answer to "may this cost be spent now?".

    ``retry_after`` is 0 when allowed, else the seconds until enough points
    have refilled for this cost. It is ``None`` when the cost exceeds the
    bucket's capacity: such a request can never fit, so waiting is pointless.
    ``reason`` says why a request was denied, or why a degraded one was let in.
    """

    allowed: bool
    cost: int
    remaining: float
    capacity: int
    refill_per_second: float
    retry_after: float | None = 0.0
    degraded: bool = False
    reason: DenyReason | None = None

    @property
    def seconds_to_full(self) -> float:
        return max(0.0, self.capacity - self.remaining) / self.refill_per_second

    @property
    def message(self) -> str:
        """One sentence for the client, e.g. in a ``RATE_LIMITED`` error."""
        if self.allowed:
            return f"{self.cost} points spent, {math.floor(self.remaining)} left."
        if self.reason == "exceeds_capacity":
            return (
                f"This query costs {self.cost} points, more than the {self.capacity} "
                "this client's budget can ever hold."
            )
        if self.reason == "backend_unavailable":
            return "Cost budgets cannot be checked right now; retry shortly."
        return (
            f"This query costs {self.cost} points but only {math.floor(self.remaining)} "
            f"are available; retry in {retry_after_seconds(self)} s."
        )


class BudgetStore(Protocol):
    """Where buckets live: one process (``MemoryBudgetStore``) or Redis (``RedisBudgetStore``)."""

    async def take(self, key: str, cost: int, policy: BucketPolicy) -> BudgetDecision:
        """Atomically refill, then spend ``cost`` if it fits; a denied take spends nothing."""
        ...

    def credit(self, key: str, amount: int) -> None:
        """Give back ``amount`` points soon, never beyond capacity, without waiting.

        Applied at most once: a refund that cannot be delivered is lost (the
        strict side), never applied twice. A bucket that is full (or unknown)
        stays full.
        """
        ...

    async def refund(self, key: str, amount: int, policy: BucketPolicy) -> BudgetState:
        """Give back ``amount`` points, never beyond capacity."""
        ...

    async def peek(self, key: str, policy: BucketPolicy) -> BudgetState:
        """The bucket as it is now, without changing it."""
        ...

    async def ping(self) -> bool:
        """``True`` when the store answers and can keep buckets; else raises like ``take``."""
        ...

    async def aclose(self) -> None: ...


def check_points(name: str, points: int) -> None:
    if points < 0:
        raise ValueError(f"{name} must not be negative, got {points}")


def decide(cost: int, tokens: float, policy: BucketPolicy) -> BudgetDecision:
    """Whether ``cost`` fits in a bucket holding ``tokens`` (already refilled)."""
    return spent(cost, tokens - cost, policy) if cost <= tokens else denied(cost, tokens, policy)


def spent(cost: int, remaining: float, policy: BucketPolicy) -> BudgetDecision:
    return BudgetDecision(True, cost, remaining, policy.capacity, policy.refill_per_second)


def denied(cost: int, tokens: float, policy: BucketPolicy) -> BudgetDecision:
    """A refusal leaving ``tokens`` untouched, with the wait until ``cost`` fits."""
    retry_after: float | None
    reason: DenyReason
    if cost > policy.capacity:
        retry_after, reason = None, "exceeds_capacity"
    else:
        retry_after, reason = (cost - tokens) / policy.refill_per_second, "exhausted"
    return BudgetDecision(
        False, cost, tokens, policy.capacity, policy.refill_per_second, retry_after, reason=reason
    )


def state(remaining: float, policy: BucketPolicy, *, degraded: bool = False) -> BudgetState:
    return BudgetState(remaining, policy.capacity, policy.refill_per_second, degraded)


def retry_after_seconds(decision: BudgetDecision) -> int:
    """``Retry-After`` as whole seconds: rounded up and at least 1."""
    return max(1, math.ceil(decision.retry_after or 0.0))
