"""What a client is told about its budget: HTTP headers and Shopify's ``throttleStatus``.

Headers follow draft-ietf-httpapi-ratelimit-headers-08 and later, whose two
fields are structured-field lists of named policies. Ours is one policy,
``"cost"``, measured in query-cost points::

    RateLimit-Policy: "cost";q=1000;w=20   # 1000 points, refilled fully in 20 s
    RateLimit: "cost";r=940;t=2           # 940 points left, full again in 2 s
    Retry-After: 3                         # only on a denial

A token bucket has no fixed window, so ``w`` is the time an empty bucket takes
to fill and ``t`` the time this one takes; both are whole seconds, rounded up
because the draft allows only integers and rounding down would promise points
early. Earlier drafts' ``RateLimit-Limit``/``-Remaining``/``-Reset`` are not sent.
"""

from __future__ import annotations

import math

from switchyard.budgets.store import BudgetDecision, BudgetState, retry_after_seconds

POLICY_NAME = "cost"


def rate_limit_headers(decision: BudgetDecision) -> dict[str, str]:
    """Headers for a response to a request that was checked against a budget.

    >>> rate_limit_headers(BudgetDecision(False, 50, 12.0, 1000, 50.0, retry_after=0.76))
    {'RateLimit-Policy': '"cost";q=1000;w=20', 'RateLimit': '"cost";r=12;t=20', 'Retry-After': '1'}

    When the store was unreachable (``degraded``) the bucket is unknown, so only
    ``Retry-After`` is sent, and only on a denial. A cost that can never fit
    (``retry_after is None``) gets no ``Retry-After``: waiting would not help.
    """
    headers: dict[str, str] = {}
    if not decision.degraded:
        window = math.ceil(decision.capacity / decision.refill_per_second)
        headers["RateLimit-Policy"] = f'"{POLICY_NAME}";q={decision.capacity};w={window}'
        headers["RateLimit"] = (
            f'"{POLICY_NAME}";r={math.floor(decision.remaining)};'
            f"t={math.ceil(decision.seconds_to_full)}"
        )
    if not decision.allowed and decision.retry_after is not None:
        headers["Retry-After"] = str(retry_after_seconds(decision))
    return headers


def throttle_status(budget: BudgetDecision | BudgetState) -> dict[str, float | int]:
    """Shopify's ``extensions.cost.throttleStatus`` for the bucket after this request.

    >>> throttle_status(BudgetState(remaining=990.5, capacity=1000, refill_per_second=50.0))
    {'maximumAvailable': 1000.0, 'currentlyAvailable': 990, 'restoreRate': 50.0}
    """
    return {
        "maximumAvailable": float(budget.capacity),
        "currentlyAvailable": math.floor(budget.remaining),
        "restoreRate": float(budget.refill_per_second),
    }
