"""Buckets in this process: exact and dependency-free, but each replica counts on its own.

Every operation reads and writes a bucket without awaiting in between, so
concurrent requests on one event loop cannot both spend the same points::

    store = MemoryBudgetStore()
    policy = BucketPolicy(capacity=100, refill_per_second=5)
    decision = await store.take("ip:203.0.113.7", 5, policy)
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from switchyard.budgets.settings import DEFAULT_MEMORY_MAX_KEYS, BucketPolicy
from switchyard.budgets.store import BudgetDecision, BudgetState, check_points, decide, state


class _Bucket:
    __slots__ = ("full_at", "policy", "tokens", "updated_at")

    def __init__(
        self, tokens: float, updated_at: float, full_at: float, policy: BucketPolicy
    ) -> None:
        self.tokens = tokens
        self.updated_at = updated_at
        self.full_at = full_at
        self.policy = policy


class MemoryBudgetStore:
    """A ``BudgetStore`` in a dict, least recently used first.

    A bucket that has refilled completely is the same as no bucket, so such
    buckets are dropped from the idle end; past ``max_keys`` the least
    recently used bucket goes even if not yet full (its client gets a fresh
    budget), which bounds memory under a flood of new client keys.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = DEFAULT_MEMORY_MAX_KEYS,
    ) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    async def take(self, key: str, cost: int, policy: BucketPolicy) -> BudgetDecision:
        check_points("cost", cost)
        now = self._clock()
        decision = decide(cost, self._tokens(key, policy, now), policy)
        if decision.allowed and cost > 0:
            self._store(key, decision.remaining, policy, now)
        return decision

    def credit(self, key: str, amount: int) -> None:
        """Refund ``amount`` points now, under the policy the bucket was last charged with."""
        check_points("amount", amount)
        bucket = self._buckets.get(key)
        if bucket is None or amount == 0:
            return  # no bucket: it is full
        now, policy = self._clock(), bucket.policy
        tokens = min(float(policy.capacity), self._tokens(key, policy, now) + amount)
        self._store(key, tokens, policy, now)

    async def refund(self, key: str, amount: int, policy: BucketPolicy) -> BudgetState:
        check_points("amount", amount)
        now = self._clock()
        tokens = min(float(policy.capacity), self._tokens(key, policy, now) + amount)
        self._store(key, tokens, policy, now)
        return state(tokens, policy)

    async def peek(self, key: str, policy: BucketPolicy) -> BudgetState:
        return state(self._tokens(key, policy, self._clock()), policy)

    async def ping(self) -> bool:
        return True

    async def aclose(self) -> None:
        self._buckets.clear()

    def _tokens(self, key: str, policy: BucketPolicy, now: float) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            return float(policy.capacity)
        elapsed = max(0.0, now - bucket.updated_at)
        # min() also clamps buckets filled under a larger, since reconfigured, capacity.
        return min(float(policy.capacity), bucket.tokens + elapsed * policy.refill_per_second)

    def _store(self, key: str, tokens: float, policy: BucketPolicy, now: float) -> None:
        if tokens >= policy.capacity:
            self._buckets.pop(key, None)
            return
        full_at = now + (policy.capacity - tokens) / policy.refill_per_second
        bucket = self._buckets.get(key)
        if bucket is None:
            self._buckets[key] = _Bucket(tokens, now, full_at, policy)
            self._evict(now)
        else:
            bucket.tokens, bucket.updated_at, bucket.full_at = tokens, now, full_at
            bucket.policy = policy
            self._buckets.move_to_end(key)

    def _evict(self, now: float) -> None:
        buckets = self._buckets
        while buckets:
            oldest = next(iter(buckets.values()))
            if oldest.full_at > now and len(buckets) <= self._max_keys:
                return
            buckets.popitem(last=False)
