"""What cost analysis and the budget check add to the gateway's CPU per request.

    python -m bench.cost_overhead [--rounds 16] [--requests 100] [--concurrency 8] [--first 1 50]

Four gateway processes over the same demo services, measured side by side: each
round starts four fresh processes, sends the same number of requests to each,
interleaved in one stream (so machine noise hits all four alike), and reads each
one's CPU clock:

    off      cost analysis off, no budgets
    control  the same as off: how far two identical gateways differ (the noise floor)
    memory   cost analysis enforcing + per-client budgets in process
    redis    cost analysis enforcing + per-client budgets in Redis (127.0.0.1:6379)

The target (issue 4) is at most 5% more CPU per request than ``off``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import uuid

from bench.fanout import BENCH_KEY, DEEP_QUERY, auth_toml
from bench.harness import gateway_processes, gateway_toml, run_mixed_load
from services.launcher import DemoPlatform, find_free_ports
from services.registry import SERVICE_NAMES as DEMO_UPSTREAMS

REDIS_URL = os.environ.get("SWITCHYARD_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
UNLIMITED_TIER = (
    "service = { capacity = 1000000000, refill_per_second = 1000000000 }\n"
    "anonymous = { capacity = 1000, refill_per_second = 50 }\n"
)


def variant_toml(name: str) -> str:
    if name in ("off", "control"):
        return '[cost]\nmode = "off"\n'
    backend = "memory" if name == "memory" else "redis"
    return (
        '[cost]\nmode = "enforce"\nmax_cost = 100000\n'
        f'[budgets]\nenabled = true\nbackend = "{backend}"\nredis_url = "{REDIS_URL}"\n'
        f'key_prefix = "switchyard:bench:{uuid.uuid4().hex}"\n'
        f"[budgets.tiers]\n{UNLIMITED_TIER}"
    )


async def bench(rounds: int, requests: int, concurrency: int, firsts: list[int]) -> None:
    variants = ["off", "control", "memory", "redis"]
    ports = find_free_ports(len(DEMO_UPSTREAMS) + len(variants))
    service_ports = {name: [port] for name, port in zip(DEMO_UPSTREAMS, ports, strict=False)}
    gateway_ports = ports[len(DEMO_UPSTREAMS) :]
    headers = {"X-Api-Key": BENCH_KEY}
    print(
        f"{rounds} rounds x {requests} requests per gateway, {concurrency} in flight,"
        " fresh gateway processes each round"
    )
    with DemoPlatform(ports=service_ports) as platform:
        for first in firsts:
            payload = {"query": DEEP_QUERY, "variables": {"n": first}}
            cpu = dict.fromkeys(variants, 0.0)
            count = dict.fromkeys(variants, 0)
            spread: dict[str, list[float]] = {name: [] for name in variants[1:]}
            for _ in range(rounds):
                # New processes every round: one process can be a few percent faster than
                # an identical one for its whole life (memory layout); rounds average it out.
                configs = {
                    name: (
                        gateway_toml(
                            platform.addresses,
                            port,
                            extra=auth_toml() + variant_toml(name),
                            debug=False,
                        ),
                        port,
                    )
                    for name, port in zip(variants, gateway_ports, strict=True)
                }
                with gateway_processes(configs) as gateways:
                    results = await run_mixed_load(
                        gateways,
                        payload,
                        requests=requests,
                        concurrency=concurrency,
                        headers=headers,
                    )
                for name, result in results.items():
                    failed = [body["errors"] for body in result.bodies if "errors" in body]
                    if failed:
                        raise SystemExit(
                            f"{name}: {len(failed)} responses with errors: {failed[0]}"
                        )
                    cpu[name] += result.cpu_seconds
                    count[name] += len(result.latencies)
                base_round = results["off"].cpu_ms_per_request
                for name in variants[1:]:
                    spread[name].append(results[name].cpu_ms_per_request / base_round - 1)
            base = cpu["off"] / count["off"] * 1000
            row = [f"first={first:<3} off {base:7.2f} ms/req"]
            for name in variants[1:]:
                per_request = cpu[name] / count[name] * 1000
                low, high = min(spread[name]) * 100, max(spread[name]) * 100
                row.append(
                    f"{name} {per_request:7.2f} ms/req ({(per_request / base - 1) * 100:+.1f}%;"
                    f" rounds {low:+.1f}..{high:+.1f}%)"
                )
            print("   ".join(row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--first", type=int, nargs="+", default=[1, 50])
    args = parser.parse_args()
    asyncio.run(bench(args.rounds, args.requests, args.concurrency, args.first))


if __name__ == "__main__":
    main()
