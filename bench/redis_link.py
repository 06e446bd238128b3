"""CPU per budget check: redis-py's client against ``RedisLink``, side by side.

    python -m bench.redis_link [--checks 4000] [--rounds 3] [--concurrency 1 4 8]

Runs the budget store's own take script (``EVALSHA``) against one Redis
(127.0.0.1:6379 unless ``SWITCHYARD_BENCH_REDIS_URL``) through both clients,
interleaved round by round, and prints the gateway process's CPU per check.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from switchyard.budgets.redis_store import _TAKE
from switchyard.redis_link import RedisLink, RedisScript

REDIS_URL = os.environ.get("SWITCHYARD_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
# A bucket that never runs dry, so every check does the same work.
ARGS: list[str | int] = [10**9, "1e9", 1, 0]


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
    key = "{switchyard:bench:link:" + uuid.uuid4().hex + "}"
    client = Redis.from_url(REDIS_URL)
    redis_py_script = client.register_script(_TAKE)
    link = RedisLink.from_url(REDIS_URL)
    link_script = RedisScript(link, _TAKE)
    clients: dict[str, Callable[[], Awaitable[object]]] = {
        "redis-py": lambda: redis_py_script(keys=[key], args=ARGS),
        "RedisLink": lambda: link_script([key], ARGS),
    }
    try:
        for check in clients.values():  # connect, load the script
            await cpu_per_check(check, 200, 1)
        print(f"{rounds} interleaved rounds x {checks} checks; CPU µs per check")
        for concurrency in concurrencies:
            totals = dict.fromkeys(clients, 0.0)
            for _ in range(rounds):
                for name, check in clients.items():
                    totals[name] += await cpu_per_check(check, checks, concurrency) / rounds
            ratio = totals["redis-py"] / totals["RedisLink"]
            print(
                f"{concurrency} in flight   redis-py {totals['redis-py']:6.1f}   "
                f"RedisLink {totals['RedisLink']:6.1f}   ({ratio:.1f}x less)"
            )
    finally:
        await client.delete(key)
        await client.aclose()
        await link.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checks", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    args = parser.parse_args()
    asyncio.run(bench(args.checks, args.rounds, args.concurrency))


if __name__ == "__main__":
    main()
