"""``Budgets``: the gateway's one entry point to cost budgets, and where failure_mode applies.

The store says what a bucket holds; ``Budgets`` picks the tier's policy and
decides what to do when the store cannot be reached: admit (fail open, the
decision marked ``degraded``) or reject (fail closed). Either way it logs a
warning once per outage rather than once per request, and resumes on its own
when the store answers again. After a store that did not answer, it skips
the store for ``recheck_interval``; after one that answered with an error
(a Redis replica's ``READONLY`` during a failover) the next call tries again
at once, on a fresh connection::

    budgets = Budgets.from_settings(BudgetSettings(enabled=True))
    decision = await budgets.check("ip:203.0.113.7", "anonymous", cost=12)
    if not decision.allowed:
        ...  # 429 with rate_limit_headers(decision)
    budgets.credit("ip:203.0.113.7", 12 - actual_cost)  # the unused points, soon
    await budgets.aclose()
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from switchyard.budgets.memory import MemoryBudgetStore
from switchyard.budgets.redis_store import RedisBudgetStore
from switchyard.budgets.settings import BucketPolicy, BudgetSettings
from switchyard.budgets.store import (
    BudgetBackendRefused,
    BudgetBackendUnavailable,
    BudgetDecision,
    BudgetState,
    BudgetStore,
    check_points,
    state,
)

logger = logging.getLogger("switchyard.budgets")

LOG_INTERVAL = 60.0
"""While the store stays unreachable, seconds between repeated warnings."""

T = TypeVar("T")


class Budgets:
    """Per-client cost budgets by tier, over any ``BudgetStore``."""

    def __init__(
        self,
        settings: BudgetSettings,
        store: BudgetStore,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._store = store
        self._clock = clock
        self._healthy = True
        self._down_since = 0.0
        self._retry_at = 0.0
        self._logged_at = 0.0
        self._degraded_calls = 0
        self._unknown_tiers: set[str] = set()

    @classmethod
    def from_settings(cls, settings: BudgetSettings) -> Budgets:
        """Budgets on the store ``settings.backend`` names; Redis is not contacted until used."""
        store: BudgetStore
        if settings.backend == "redis":
            store = RedisBudgetStore.from_url(
                settings.redis_url,
                key_prefix=settings.key_prefix,
                timeout=settings.redis_timeout,
                cluster=settings.redis_cluster,
            )
        else:
            store = MemoryBudgetStore(max_keys=settings.memory_max_keys)
        return cls(settings, store)

    @property
    def healthy(self) -> bool:
        """Whether the last call to the store succeeded."""
        return self._healthy

    async def ready(self) -> bool:
        """For ``/readyz``: pings the store now, so recovery is noticed without traffic."""
        try:
            await self._store.ping()
        except BudgetBackendUnavailable as exc:
            self._mark_down(str(exc), recheck=not isinstance(exc, BudgetBackendRefused))
            return False
        self._mark_up()
        return True

    def policy_for(self, tier: str) -> BucketPolicy:
        """The tier's bucket; an unknown tier gets ``default_tier``'s, with one warning per name."""
        policy = self.settings.tiers.get(tier)
        if policy is not None:
            return policy
        if tier not in self._unknown_tiers:
            self._unknown_tiers.add(tier)
            logger.warning(
                "budget tier %r is not configured; using %r",
                tier,
                self.settings.default_tier,
                extra={"stage": "operation"},
            )
        return self.settings.tiers[self.settings.default_tier]

    async def check(self, client_key: str, tier: str, cost: int) -> BudgetDecision:
        """Spend ``cost`` points of ``client_key``'s bucket if they fit; never raises on outages::

        decision = await budgets.check("partner-app", "pro", 40)
        decision.allowed, decision.remaining  # (True, 4960.0) on a full "pro" bucket
        """
        check_points("cost", cost)
        policy = self.policy_for(tier)
        decision = await self._call(lambda: self._store.take(client_key, cost, policy))
        if decision is not None:
            return decision
        if self.settings.failure_mode == "open":
            return BudgetDecision(
                True,
                cost,
                float(policy.capacity),
                policy.capacity,
                policy.refill_per_second,
                degraded=True,
                reason="backend_unavailable",
            )
        return BudgetDecision(
            False,
            cost,
            0.0,
            policy.capacity,
            policy.refill_per_second,
            retry_after=max(self.settings.recheck_interval, 1.0),
            degraded=True,
            reason="backend_unavailable",
        )

    def credit(self, client_key: str, amount: int) -> None:
        """Give back ``amount`` unused points without waiting for the store.

        In memory the bucket is refunded at once; with Redis the points go
        with the next batch of checks (inside the client's own check when one
        is in it), so every replica sees them. A refund is applied at most
        once: one that cannot be delivered is lost, which errs on the strict side.
        """
        self._store.credit(client_key, amount)

    async def refund(self, client_key: str, tier: str, amount: int) -> BudgetState:
        """Give back points charged but not used (estimated minus actual cost), up to capacity."""
        check_points("amount", amount)
        policy = self.policy_for(tier)
        result = await self._call(lambda: self._store.refund(client_key, amount, policy))
        return result if result is not None else self._unknown_state(policy)

    async def peek(self, client_key: str, tier: str) -> BudgetState:
        """The bucket now, e.g. for ``throttleStatus`` on a response that spent nothing."""
        policy = self.policy_for(tier)
        result = await self._call(lambda: self._store.peek(client_key, policy))
        return result if result is not None else self._unknown_state(policy)

    async def aclose(self) -> None:
        await self._store.aclose()

    def _unknown_state(self, policy: BucketPolicy) -> BudgetState:
        guess = float(policy.capacity) if self.settings.failure_mode == "open" else 0.0
        return state(guess, policy, degraded=True)

    async def _call(self, operation: Callable[[], Awaitable[T]]) -> T | None:
        """The store's answer, or ``None`` when it is unreachable (or was, moments ago)."""
        if not self._healthy and self._clock() < self._retry_at:
            self._note_degraded()
            return None
        try:
            result = await operation()
        except BudgetBackendUnavailable as exc:
            self._mark_down(str(exc), recheck=not isinstance(exc, BudgetBackendRefused))
            self._note_degraded()
            return None
        self._mark_up()
        return result

    def _mark_down(self, reason: str, *, recheck: bool = True) -> None:
        """Note a failure; with ``recheck``, skip the store for ``recheck_interval``."""
        now = self._clock()
        self._retry_at = now + self.settings.recheck_interval if recheck else now
        if not self._healthy:
            return
        self._healthy = False
        self._down_since = self._logged_at = now
        self._degraded_calls = 0
        logger.warning(
            "budget store unavailable (%s); failing %s: requests are %s without a budget check",
            reason,
            self.settings.failure_mode,
            self._verb,
            extra={"stage": "operation"},
        )

    def _note_degraded(self) -> None:
        self._degraded_calls += 1
        now = self._clock()
        if now - self._logged_at >= LOG_INTERVAL:
            self._logged_at = now
            logger.warning(
                "budget store still unavailable after %.0f s; %d requests %s without a check",
                now - self._down_since,
                self._degraded_calls,
                self._verb,
                extra={"stage": "operation"},
            )

    def _mark_up(self) -> None:
        if self._healthy:
            return
        self._healthy = True
        logger.info(
            "budget store reachable again after %.1f s; %d requests were %s; limits resumed",
            self._clock() - self._down_since,
            self._degraded_calls,
            self._verb,
            extra={"stage": "operation"},
        )

    @property
    def _verb(self) -> str:
        return "admitted" if self.settings.failure_mode == "open" else "rejected"
