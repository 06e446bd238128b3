"""Per-client query-cost rate limiting: the cost estimate charged to the caller's budget.

``CostAnalysis`` (``switchyard.cost``) estimates an operation before any
resolver runs and measures it afterwards; this module connects those two
moments to the caller's token bucket (``switchyard.budgets``)::

    limiter = CostRateLimiter(budgets)
    CostAnalysis(settings, on_estimate=limiter.charge, on_actual=limiter.refund)

Before execution the estimate must fit in the bucket, or the operation is
refused with ``RATE_LIMITED`` (HTTP 429, ``Retry-After``). After execution
the points the operation did not use (estimate minus actual) are refunded,
as Shopify does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from switchyard.budgets import (
    BudgetDecision,
    Budgets,
    BudgetState,
    rate_limit_headers,
    throttle_status,
)
from switchyard.caller import Caller
from switchyard.cost import CostMeasurement, CostReport, as_json
from switchyard.errors import RateLimited


@dataclass(slots=True)
class BudgetCharge:
    """What was charged to one request's bucket, and the bucket afterwards."""

    client_key: str
    tier: str
    decision: BudgetDecision
    after_refund: BudgetState | None = None

    @property
    def refused(self) -> bool:
        return not self.decision.allowed

    def headers(self) -> dict[str, str]:
        """``RateLimit``/``RateLimit-Policy`` (and ``Retry-After`` on a refusal)."""
        decision = self.decision
        if self.after_refund is not None:
            decision = BudgetDecision(
                allowed=decision.allowed,
                cost=decision.cost,
                remaining=self.after_refund.remaining,
                capacity=decision.capacity,
                refill_per_second=decision.refill_per_second,
                retry_after=decision.retry_after,
                degraded=decision.degraded,
                reason=decision.reason,
            )
        return rate_limit_headers(decision)

    def throttle_status(self) -> dict[str, float | int] | None:
        if self.decision.degraded:
            return None  # the store was unreachable: the bucket is unknown
        return throttle_status(self.after_refund or self.decision)


class BudgetedContext(Protocol):
    """What the limiter reads and writes on the request context."""

    caller: Caller
    client_key: str
    budget: BudgetCharge | None


class CostRateLimiter:
    """Charges estimates to, and refunds unused points into, the caller's bucket."""

    def __init__(self, budgets: Budgets) -> None:
        self.budgets = budgets

    async def charge(self, context: BudgetedContext, estimate: CostReport) -> None:
        """``on_estimate``: refuse with ``RATE_LIMITED`` when the estimate does not fit."""
        tier = context.caller.tier
        decision = await self.budgets.check(context.client_key, tier, estimate.cost)
        context.budget = BudgetCharge(context.client_key, tier, decision)
        if not decision.allowed:
            extensions: dict[str, object] = {"requestedQueryCost": estimate.cost}
            if decision.retry_after is not None:
                extensions["retryAfter"] = math.ceil(decision.retry_after)
            raise RateLimited(decision.message, **extensions)

    async def refund(self, context: BudgetedContext, measurement: CostMeasurement) -> None:
        """``on_actual``: give back what the operation did not use.

        The points are credited with the client's next charge (one Redis round
        trip per request, not two); the response already shows the bucket as
        it will be once they are.
        """
        charge = context.budget
        if charge is None or charge.refused or charge.decision.degraded:
            return
        unused = measurement.requested - (measurement.actual or 0)
        if unused > 0:
            self.budgets.credit(charge.client_key, unused)
            decision = charge.decision
            charge.after_refund = BudgetState(
                remaining=min(float(decision.capacity), decision.remaining + unused),
                capacity=decision.capacity,
                refill_per_second=decision.refill_per_second,
            )


def cost_extension(
    measurement: CostMeasurement | None, charge: BudgetCharge | None
) -> dict[str, Any] | None:
    """Shopify's ``extensions.cost``: requested and actual cost, and the bucket's state."""
    if measurement is None:
        return None
    extension: dict[str, Any] = {
        "requestedQueryCost": measurement.requested,
        "actualQueryCost": measurement.actual,
    }
    if charge is not None:
        extension["throttleStatus"] = charge.throttle_status()
    return extension


def cost_breakdown(measurement: CostMeasurement | None) -> dict[str, Any] | None:
    """The field-by-field estimate, for ``X-Switchyard-Cost: explain``."""
    return None if measurement is None else as_json(measurement.estimate)
