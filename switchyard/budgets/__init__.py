"""Per-client budgets of query-cost points: token buckets in this process or in Redis.

``Budgets`` is the entry point; the rest is what it is made of::

    budgets = Budgets.from_settings(config.budgets)
    key = bucket_key(caller, peer_ip, headers.getlist("x-forwarded-for"),
                     config.budgets.trusted_proxies)
    decision = await budgets.check(key, caller.tier, estimated_cost)
    response.headers.update(rate_limit_headers(decision))
    if not decision.allowed:
        ...  # HTTP 429, extensions.code RATE_LIMITED, message decision.message
"""

from switchyard.budgets.facade import Budgets
from switchyard.budgets.headers import rate_limit_headers, throttle_status
from switchyard.budgets.keys import bucket_key, client_address
from switchyard.budgets.memory import MemoryBudgetStore
from switchyard.budgets.redis_store import RedisBudgetStore
from switchyard.budgets.settings import (
    DEFAULT_TIERS,
    BucketPolicy,
    BudgetSettings,
    mask_url,
)
from switchyard.budgets.store import (
    BudgetBackendRefused,
    BudgetBackendUnavailable,
    BudgetDecision,
    BudgetState,
    BudgetStore,
)

__all__ = [
    "DEFAULT_TIERS",
    "BucketPolicy",
    "BudgetBackendRefused",
    "BudgetBackendUnavailable",
    "BudgetDecision",
    "BudgetSettings",
    "BudgetState",
    "BudgetStore",
    "Budgets",
    "MemoryBudgetStore",
    "RedisBudgetStore",
    "bucket_key",
    "client_address",
    "mask_url",
    "rate_limit_headers",
    "throttle_status",
]
