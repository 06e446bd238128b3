"""Buckets in Redis, shared by every replica: one atomic Lua script and one round trip per check.

Each script reads the clock of the Redis server (``TIME``), never the
gateway's, so replicas whose clocks disagree still agree on every bucket.
Keys are hash-tagged (``{switchyard:budget:ip:203.0.113.7}``) so a bucket is
one slot on Redis Cluster, and expire once the bucket would be full again::

    store = RedisBudgetStore.from_url("redis://127.0.0.1:6379/0")
    policy = BucketPolicy(capacity=5000, refill_per_second=250)
    decision = await store.take("partner-app", 40, policy)
    await store.aclose()
"""

from __future__ import annotations

from typing import Any

from switchyard.budgets.settings import (
    DEFAULT_KEY_PREFIX,
    DEFAULT_REDIS_TIMEOUT,
    BucketPolicy,
    mask_url,
)
from switchyard.budgets.store import (
    BudgetBackendUnavailable,
    BudgetDecision,
    BudgetState,
    check_points,
    denied,
    spent,
    state,
)
from switchyard.redis_link import RedisError, RedisLink, RedisScript

# Shared by every script: KEYS[1] the bucket, ARGV[1] capacity, ARGV[2] refill per second.
# Redis 7 replicates script effects, so TIME is allowed; replicate_commands() makes
# Redis 5 and 6 do the same and is a no-op later. Numbers are stored and returned as
# "%.17g" strings because Lua numbers in replies are truncated to integers.
_REFILL = """
if redis.replicate_commands then redis.replicate_commands() end
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local saved = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(saved[1])
local ts = tonumber(saved[2])
if tokens == nil or ts == nil then
  tokens = capacity
else
  tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
end
local function save(left)
  if left >= capacity then
    redis.call('DEL', KEYS[1])
    return
  end
  local ttl = math.ceil((capacity - left) / rate * 1000)
  redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', left),
             'ts', string.format('%.17g', now))
  redis.call('PEXPIRE', KEYS[1], string.format('%d', math.max(1, ttl)))
end
"""

# ARGV[3] cost, ARGV[4] points credited first (deferred refunds). Returns {1 if spent else 0,
# tokens left}.
_TAKE = (
    _REFILL
    + """
local cost = tonumber(ARGV[3])
local credit = tonumber(ARGV[4] or '0')
if credit > 0 then
  tokens = math.min(capacity, tokens + credit)
end
if cost > tokens then
  if credit > 0 then save(tokens) end
  return {0, string.format('%.17g', tokens)}
end
if cost > 0 or credit > 0 then
  tokens = tokens - cost
  save(tokens)
end
return {1, string.format('%.17g', tokens)}
"""
)

# ARGV[3] amount. Returns tokens after the refund.
_REFUND = (
    _REFILL
    + """
tokens = math.min(capacity, tokens + tonumber(ARGV[3]))
save(tokens)
return string.format('%.17g', tokens)
"""
)

_PEEK = _REFILL + "\nreturn string.format('%.17g', tokens)\n"


class RedisBudgetStore:
    """A ``BudgetStore`` on a ``RedisLink``: every check of the process pipelined on one connection.

    Every Redis failure is raised as ``BudgetBackendUnavailable``. The store
    owns ``link`` and closes it in ``aclose``.
    """

    def __init__(
        self, link: RedisLink, *, key_prefix: str = DEFAULT_KEY_PREFIX, name: str = "redis"
    ) -> None:
        self._link = link
        self._prefix = key_prefix
        self._name = name
        self._take = RedisScript(link, _TAKE)
        self._refund = RedisScript(link, _REFUND)
        self._peek = RedisScript(link, _PEEK)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        timeout: float = DEFAULT_REDIS_TIMEOUT,
    ) -> RedisBudgetStore:
        """A store with its own link and a short timeout, so a dead Redis fails fast."""
        link = RedisLink.from_url(url, timeout=timeout, client_name="switchyard-budgets")
        return cls(link, key_prefix=key_prefix, name=mask_url(url))

    def __repr__(self) -> str:
        return f"RedisBudgetStore({self._name!r}, key_prefix={self._prefix!r})"

    def key(self, client_key: str) -> str:
        """The Redis key of a client's bucket, hash-tagged whole for Redis Cluster.

        >>> RedisBudgetStore.from_url("redis://localhost").key("ip:203.0.113.7")
        '{switchyard:budget:ip:203.0.113.7}'
        """
        return "{" + f"{self._prefix}:{client_key}" + "}"

    async def take(
        self, key: str, cost: int, policy: BucketPolicy, *, credit: int = 0
    ) -> BudgetDecision:
        check_points("cost", cost)
        check_points("credit", credit)
        was_spent, tokens = await self._run(self._take, key, policy, cost, credit)
        if was_spent:
            return spent(cost, float(tokens), policy)
        return denied(cost, float(tokens), policy)

    async def refund(self, key: str, amount: int, policy: BucketPolicy) -> BudgetState:
        check_points("amount", amount)
        return state(float(await self._run(self._refund, key, policy, amount)), policy)

    async def peek(self, key: str, policy: BucketPolicy) -> BudgetState:
        return state(float(await self._run(self._peek, key, policy)), policy)

    async def ping(self) -> bool:
        return await self._link.ping()

    async def aclose(self) -> None:
        await self._link.aclose()

    async def _run(self, script: RedisScript, key: str, policy: BucketPolicy, *args: int) -> Any:
        try:
            return await script(
                [self.key(key)], [policy.capacity, repr(policy.refill_per_second), *args]
            )
        except RedisError as exc:
            raise BudgetBackendUnavailable(f"{self._name}: {type(exc).__name__}: {exc}") from exc
