"""CPU per budget check: the Redis budget store (batched) against plain redis-py, side by side.

    python -m bench.budget_store [--checks 4000] [--rounds 3] [--concurrency 1 16]

Both run the store's own take script against one Redis (127.0.0.1:6379 unless
``SWITCHYARD_BENCH_REDIS_URL``), interleaved round by round, and print this
process's CPU per check:

    store     RedisBudgetStore.take: the checks of each event-loop tick in one pipeline
    redis-py  one EVALSHA per check through redis-py's asyncio client (its default pool)

The target (issue 9) is at most 250 µs per check at 1 in flight and 100 µs at 16.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from switchyard.budgets import BucketPolicy, RedisBudgetStore
from switchyard.budgets.redis_store import TAKE

REDIS_URL = os.environ.get("SWITCHYARD_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
# A bucket that never runs dry, so every check does the same work.
POLICY = BucketPolicy(capacity=10**9, refill_per_second=1e9)


async def cpu_per_check(
    check: Callable[[], Awaitable[object]], checks: int, concurrency: int
) -> float:
    async def worker() -> None:
        for _ in range(checks // concurrency):
            await check()

    started = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return (time.process_time() - started) / checks * 1e6


async def bench(checks: int, rounds: int, concurrencies: list[int]) -> None:
    prefix = f"switchyard:bench:{uuid.uuid4().hex}"
    store = RedisBudgetStore.from_url(REDIS_URL, key_prefix=prefix)
    client = Redis.from_url(REDIS_URL)
    key = store.key("client")
    args: list[str | int] = [POLICY.capacity, repr(POLICY.refill_per_second), 1, 0]
    await client.script_load(TAKE.source)
    variants: dict[str, Callable[[], Awaitable[object]]] = {
        "store": lambda: store.take("client", 1, POLICY),
        "redis-py": lambda: client.evalsha(TAKE.sha, 1, key, *args),
    }
    try:
        for check in variants.values():  # connect, fill the pools
            await cpu_per_check(check, 400, max(concurrencies))
        print(f"{rounds} interleaved rounds x {checks} checks; CPU µs per check")
        for concurrency in concurrencies:
            totals = dict.fromkeys(variants, 0.0)
            trips = store.round_trips
            for _ in range(rounds):
                for name, check in variants.items():
                    totals[name] += await cpu_per_check(check, checks, concurrency) / rounds
            per_trip = checks * rounds / max(1, store.round_trips - trips)
            print(
                f"{concurrency:2} in flight   store {totals['store']:6.1f}"
                f" ({per_trip:4.1f} checks per round trip)"
                f"   redis-py {totals['redis-py']:6.1f}"
                f"   (redis-py / store {totals['redis-py'] / totals['store']:.1f})"
            )
    finally:
        await client.delete(key)
        await client.aclose()
        await store.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checks", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()
    asyncio.run(bench(args.checks, args.rounds, args.concurrency))


if __name__ == "__main__":
    main()
