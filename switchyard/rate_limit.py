"""Per-client query-cost rate limiting: the cost estimate charged to the caller's budget.

``CostAnalysis`` (``switchyard.cost``) estimates an operation before any
resolver runs and measures it afterwards; this module connects those two
moments to the caller's token bucket (``switchyard.budgets``)::

    limiter = CostRateLimiter(budgets)
    CostAnalysis(settings, on_estimate=limiter.charge, on_actual=limiter.refund)

Before execution the estimate must fit in the bucket. An estimate larger
than the bucket's whole capacity can never fit: it is refused as a request
error, ``COST_LIMIT_EXCEEDED`` (400), without asking the store. One that only
has to wait for points is refused with ``RATE_LIMITED`` (429, ``Retry-After``).
In ``measure`` mode ``CostAnalysis`` reports these refusals instead of
applying them; the bucket is charged exactly as ``enforce`` would charge it.

After execution the points the operation did not use are refunded, as
Shopify does: the estimate minus the actual cost, which is never less than
the work done (upstream calls plus items received), so a refund never gives
back work that was done, whatever the response shows.
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
from switchyard.cost import CostLimitExceeded, CostMeasurement, CostReport, as_json
from switchyard.cost.measurement import measurement_of
from switchyard.errors import RateLimited


@dataclass(slots=True)
class BudgetCharge:
    """What was charged to one request's bucket, and the bucket afterwards.

    ``enforced`` is False in ``measure`` mode, where a refusal is only reported:
    the answer then carries no ``Retry-After``.
    """

    client_key: str
    tier: str
    decision: BudgetDecision
    after_refund: BudgetState | None = None
    enforced: bool = True

    @property
    def refused(self) -> bool:
        return not self.decision.allowed

    def headers(self) -> dict[str, str]:
        """``RateLimit``/``RateLimit-Policy`` (and ``Retry-After`` on a refusal)."""
        decision = self.decision
        if self.after_refund is not None or not self.enforced:
            remaining = decision.remaining
            if self.after_refund is not None:
                remaining = self.after_refund.remaining
            decision = BudgetDecision(
                allowed=decision.allowed or not self.enforced,
                cost=decision.cost,
                remaining=remaining,
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


def exceeds_capacity(estimated_cost: int, capacity: int) -> CostLimitExceeded:
    """The refusal of a query no wait can admit: it costs more than the bucket can hold.

    >>> exceeds_capacity(302, 100).message
    "This query costs 302 points, more than the 100 this client's budget can ever hold."
    """
    return CostLimitExceeded(
        estimated_cost,
        capacity,
        message=f"This query costs {estimated_cost} points, more than the {capacity} "
        "this client's budget can ever hold.",
    )


class CostRateLimiter:
    """Charges estimates to, and refunds unused points into, the caller's bucket."""

    def __init__(self, budgets: Budgets) -> None:
        self.budgets = budgets

    async def charge(self, context: BudgetedContext, estimate: CostReport) -> None:
        """``on_estimate``: refuse what cannot fit now (429) or ever (COST_LIMIT_EXCEEDED)."""
        tier = context.caller.tier
        capacity = self.budgets.policy_for(tier).capacity
        if estimate.cost > capacity:
            raise exceeds_capacity(estimate.cost, capacity)
        decision = await self.budgets.check(context.client_key, tier, estimate.cost)
        measurement = measurement_of(context)
        enforced = measurement is None or measurement.enforced
        context.budget = BudgetCharge(context.client_key, tier, decision, enforced=enforced)
        if decision.allowed:
            return
        if decision.reason == "exceeds_capacity":
            raise exceeds_capacity(estimate.cost, decision.capacity)
        extensions: dict[str, object] = {"requestedQueryCost": estimate.cost}
        if decision.retry_after is not None:
            extensions["retryAfter"] = math.ceil(decision.retry_after)
        raise RateLimited(decision.message, **extensions)

    async def refund(self, context: BudgetedContext, measurement: CostMeasurement) -> None:
        """``on_actual``: give back what the operation did not use.

        At most the estimate minus the actual cost, which is never less than
        the work done: upstream calls plus items received. The response
        already shows the bucket as it will be once the points are back.
        """
        charge = context.budget
        if charge is None or charge.refused or charge.decision.degraded:
            return
        unused = measurement.unused
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
    """Shopify's ``extensions.cost``: requested and actual cost, and the bucket's state.

    In ``measure`` mode, ``wouldRefuse`` holds what ``enforce`` would have
    answered instead (its message and extensions) when it would have refused.
    """
    if measurement is None:
        return None
    extension: dict[str, Any] = {
        "requestedQueryCost": measurement.requested,
        "actualQueryCost": measurement.actual,
    }
    if charge is not None:
        extension["throttleStatus"] = charge.throttle_status()
    refusal = measurement.refusal
    if refusal is not None:
        extension["wouldRefuse"] = {"message": refusal.message, **_refusal_extensions(refusal)}
    return extension


def _refusal_extensions(refusal: Any) -> dict[str, Any]:
    original = refusal.original_error
    code = getattr(original, "code", None)
    if code is not None:  # a GraphError: its code and extensions, as the presenter shows them
        return {"code": str(code), **getattr(original, "extensions", {})}
    return dict(refusal.extensions or {})


def cost_breakdown(measurement: CostMeasurement | None) -> dict[str, Any] | None:
    """The field-by-field estimate, for ``X-Switchyard-Cost: explain``."""
    return None if measurement is None else as_json(measurement.estimate)
