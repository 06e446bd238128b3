"""Buckets in Redis, shared by every replica: one atomic Lua script per check, batched per tick.

Each script reads the clock of the Redis server (``TIME``), never the
gateway's, so replicas whose clocks disagree still agree on every bucket.
Keys are hash-tagged (``{switchyard:budget:ip:203.0.113.7}``) so a bucket is
one slot on Redis Cluster, and expire once the bucket would be full again::

    store = RedisBudgetStore.from_url("redis://127.0.0.1:6379/0")
    policy = BucketPolicy(capacity=5000, refill_per_second=250)
    decision = await store.take("partner-app", 40, policy)
    await store.aclose()

The client is redis-py's (``redis.asyncio``, or ``RedisCluster``), with a
small pool and no retries of its own: a check whose reply was lost may have
been applied, so it is never sent twice. Checks issued in the same turn of
the event loop share one pipelined round trip (``switchyard.budgets.batching``).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from switchyard.budgets.batching import (
    CONNECT_TIMEOUT,
    DEFAULT_MAX_IN_FLIGHT,
    Command,
    Pipeliner,
    RedisRefused,
    RedisUnavailable,
)
from switchyard.budgets.settings import (
    DEFAULT_KEY_PREFIX,
    DEFAULT_REDIS_TIMEOUT,
    BucketPolicy,
    mask_url,
)
from switchyard.budgets.store import (
    BudgetBackendRefused,
    BudgetBackendUnavailable,
    BudgetDecision,
    BudgetState,
    check_points,
    denied,
    spent,
    state,
)

CLIENT_NAME = "switchyard-budgets"
MAX_PENDING_CREDITS = 100_000
"""Clients with a refund waiting for the next batch; past it the oldest is dropped (strict)."""
CREDIT_DELAY = 0.1
"""Seconds a refund waits for a batch of checks to ride along with before going alone."""

# Shared by every script: KEYS[1] the bucket. Redis 7 replicates script effects, so TIME
# is allowed; replicate_commands() makes Redis 5 and 6 do the same and is a no-op later.
# Numbers are stored and returned as "%.17g" strings because Lua numbers in replies are
# truncated to integers. A bucket keeps its policy ('cap', 'rate') so that a refund can be
# applied without one; a full bucket is deleted (no key: full).
_PRELUDE = """
if redis.replicate_commands then redis.replicate_commands() end
local function fmt(x) return string.format('%.17g', x) end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local saved = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'cap', 'rate')
local function refilled(capacity, rate)
  local tokens = tonumber(saved[1])
  local ts = tonumber(saved[2])
  if tokens == nil or ts == nil then return capacity end
  return math.min(capacity, tokens + math.max(0, now - ts) * rate)
end
local function save(left, capacity, rate)
  if left >= capacity then
    redis.call('DEL', KEYS[1])
    return
  end
  local ttl = math.ceil((capacity - left) / rate * 1000)
  redis.call('HSET', KEYS[1], 'tokens', fmt(left), 'ts', fmt(now),
             'cap', fmt(capacity), 'rate', fmt(rate))
  redis.call('PEXPIRE', KEYS[1], string.format('%d', math.max(1, ttl)))
end
"""

# ARGV: capacity, refill per second, cost, points credited first (a refund that travels
# with the check). Returns {1 if spent else 0, tokens left}; a denied take keeps the credit.
_TAKE_SOURCE = (
    _PRELUDE
    + """
local capacity, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local cost, credit = tonumber(ARGV[3]), tonumber(ARGV[4])
local tokens = refilled(capacity, rate)
if credit > 0 then
  tokens = math.min(capacity, tokens + credit)
end
if cost > tokens then
  if credit > 0 then save(tokens, capacity, rate) end
  return {0, fmt(tokens)}
end
if cost > 0 or credit > 0 then
  tokens = tokens - cost
  save(tokens, capacity, rate)
end
return {1, fmt(tokens)}
"""
)

# ARGV: points. A refund with no policy at hand: the bucket's own. No bucket: it is full.
_CREDIT_SOURCE = (
    _PRELUDE
    + """
if not saved[1] then return 0 end
local capacity, rate = tonumber(saved[3]), tonumber(saved[4])
if capacity == nil or rate == nil then
  -- saved by a gateway that did not record the policy: add; the next check clamps
  redis.call('HSET', KEYS[1], 'tokens', fmt(tonumber(saved[1]) + tonumber(ARGV[1])))
  return 1
end
save(math.min(capacity, refilled(capacity, rate) + tonumber(ARGV[1])), capacity, rate)
return 1
"""
)

# ARGV: capacity, refill per second, amount. Returns tokens after the refund.
_REFUND_SOURCE = (
    _PRELUDE
    + """
local capacity, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local tokens = math.min(capacity, refilled(capacity, rate) + tonumber(ARGV[3]))
save(tokens, capacity, rate)
return fmt(tokens)
"""
)

# ARGV: capacity, refill per second. Returns tokens now; changes nothing.
_PEEK_SOURCE = _PRELUDE + "\nreturn fmt(refilled(tonumber(ARGV[1]), tonumber(ARGV[2])))\n"


class LuaScript:
    """A script run by its SHA1 (``EVALSHA``); the pipeliner sends it whole on ``NOSCRIPT``."""

    __slots__ = ("sha", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


TAKE = LuaScript(_TAKE_SOURCE)
CREDIT = LuaScript(_CREDIT_SOURCE)
REFUND = LuaScript(_REFUND_SOURCE)
PEEK = LuaScript(_PEEK_SOURCE)
_TAKE_CREDIT = 7  # where the credit is in a TAKE command: EVALSHA sha 1 key cap rate cost credit


def redis_client(
    url: str,
    *,
    timeout: float = DEFAULT_REDIS_TIMEOUT,
    cluster: bool = False,
    max_connections: int = DEFAULT_MAX_IN_FLIGHT,
) -> Redis | RedisCluster:
    """redis-py's asyncio client for the budget store (not connected until used).

    No retries (a lost reply may hide an applied check) and no per-socket
    timeout: ``Pipeliner`` bounds each round trip as a whole (``timeout``) and
    the opening of a connection (``timeout``, at least ``CONNECT_TIMEOUT``).
    ``max_connections`` is per node on a cluster.
    """
    options: dict[str, Any] = {
        "socket_timeout": None,
        "socket_connect_timeout": max(timeout, CONNECT_TIMEOUT),
        "client_name": CLIENT_NAME,
        "retry": Retry(NoBackoff(), 0),
        "max_connections": max_connections,
    }
    if cluster:
        return RedisCluster.from_url(url, **options)
    return Redis.from_url(url, **options)


class RedisBudgetStore:
    """A ``BudgetStore`` in Redis, standalone or Cluster, its checks batched per tick.

    A Redis that cannot be reached or does not answer in time raises
    ``BudgetBackendUnavailable``; one that answers with an error (a replica's
    ``READONLY`` even after reconnecting, ``WRONGTYPE``) raises
    ``BudgetBackendRefused``. The store owns ``client`` and closes it in ``aclose``.
    """

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        timeout: float = DEFAULT_REDIS_TIMEOUT,
        name: str = "redis",
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> None:
        if isinstance(client, Redis):
            max_in_flight = min(max_in_flight, client.connection_pool.max_connections)
        self._pipeliner = Pipeliner(
            client, timeout=timeout, max_in_flight=max_in_flight, collect=self._with_credits
        )
        self._prefix = key_prefix
        self._name = name
        # Shaped like a bucket's key (ACL key patterns that admit buckets admit it), but
        # no client's: a client key is never empty.
        self._ready_key = self.key("")
        self._credits: dict[str, int] = {}
        self._credit_timer: asyncio.TimerHandle | None = None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        timeout: float = DEFAULT_REDIS_TIMEOUT,
        cluster: bool = False,
    ) -> RedisBudgetStore:
        """A store with its own client and a short timeout, so a dead Redis fails fast."""
        client = redis_client(url, timeout=timeout, cluster=cluster)
        return cls(client, key_prefix=key_prefix, timeout=timeout, name=mask_url(url))

    def __repr__(self) -> str:
        return f"RedisBudgetStore({self._name!r}, key_prefix={self._prefix!r})"

    @property
    def round_trips(self) -> int:
        """Pipelines sent to Redis so far (each carries every command of its tick)."""
        return self._pipeliner.round_trips

    def key(self, client_key: str) -> str:
        """The Redis key of a client's bucket, hash-tagged whole for Redis Cluster.

        >>> RedisBudgetStore.from_url("redis://localhost").key("ip:203.0.113.7")
        '{switchyard:budget:ip:203.0.113.7}'
        """
        return "{" + f"{self._prefix}:{client_key}" + "}"

    async def take(self, key: str, cost: int, policy: BucketPolicy) -> BudgetDecision:
        check_points("cost", cost)
        was_spent, tokens = await self._run(TAKE, key, policy, cost, 0)
        if was_spent:
            return spent(cost, float(tokens), policy)
        return denied(cost, float(tokens), policy)

    def credit(self, key: str, amount: int) -> None:
        """Refund ``amount`` points in Redis, with the next batch: applied at most once.

        The points ride along with the next batch of checks (within
        ``CREDIT_DELAY``, else a batch goes for them alone): inside the
        client's own check when it is in that batch, else as a command of
        their own, in the same round trip. Either way they leave this process
        when the batch is formed and never come back: a batch whose reply is
        lost (Redis may have applied it) loses the refund rather than risk
        giving it twice. Nothing waits for the answer.
        """
        check_points("amount", amount)
        if amount == 0:
            return
        credits = self._credits
        bucket = self.key(key)
        credits[bucket] = credits.pop(bucket, 0) + amount
        if len(credits) > MAX_PENDING_CREDITS:
            del credits[next(iter(credits))]
        if self._credit_timer is None:
            loop = asyncio.get_running_loop()
            self._credit_timer = loop.call_later(CREDIT_DELAY, self._pipeliner.wake)

    async def refund(self, key: str, amount: int, policy: BucketPolicy) -> BudgetState:
        check_points("amount", amount)
        return state(float(await self._run(REFUND, key, policy, amount)), policy)

    async def peek(self, key: str, policy: BucketPolicy) -> BudgetState:
        return state(float(await self._run(PEEK, key, policy)), policy)

    async def ping(self) -> bool:
        """Whether Redis takes writes: a replica that answers ``PING`` still cannot keep budgets."""
        await self._wait(self._pipeliner.call("DEL", self._ready_key))
        return True

    async def aclose(self) -> None:
        """Send the refunds still waiting, then close the connections."""
        if self._credit_timer is not None:
            self._credit_timer.cancel()
            self._pipeliner.wake()
        await self._pipeliner.aclose()

    def _with_credits(self, batch: list[Command]) -> list[Command]:
        """``batch`` with the waiting refunds: in the client's own check, else on their own."""
        credits = self._credits
        if not credits:
            return batch
        if self._credit_timer is not None:
            self._credit_timer.cancel()
            self._credit_timer = None
        for command in batch:
            if command.script is TAKE.source:
                points = credits.pop(command.args[3], 0)
                if points:
                    command.args = (*command.args[:_TAKE_CREDIT], points)
        alone = [
            Command(("EVALSHA", CREDIT.sha, 1, bucket, points), script=CREDIT.source)
            for bucket, points in credits.items()
        ]
        credits.clear()
        return alone + batch

    async def _run(self, script: LuaScript, key: str, policy: BucketPolicy, *args: int) -> Any:
        reply = self._pipeliner.call(
            "EVALSHA",
            script.sha,
            1,
            self.key(key),
            policy.capacity,
            repr(policy.refill_per_second),
            *args,
            script=script.source,
        )
        return await self._wait(reply)

    async def _wait(self, reply: Awaitable[Any]) -> Any:
        try:
            return await reply
        except RedisRefused as exc:
            raise BudgetBackendRefused(f"{self._name}: {exc}") from exc
        except RedisUnavailable as exc:
            raise BudgetBackendUnavailable(f"{self._name}: {exc}") from exc
