"""The foundation benchmark: the deep fan-out query against the demo platform.

    python -m bench.fanout [--requests 300] [--concurrency 8] [--first 1 50]

Starts the five demo services and a gateway process on free loopback ports,
runs the query for each ``first``, and prints upstream calls per query (from
the gateway's debug record), p50/p99 latency and the gateway's CPU per request.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib

from bench.harness import gateway_process, gateway_toml, run_load
from services.launcher import DemoPlatform, find_free_ports
from services.registry import SERVICE_NAMES as DEMO_UPSTREAMS

DEEP_QUERY = """
query Deep($n: Int!) {
  orders(first: $n) { edges { node {
    customer { name }
    items { product { name stock { available }
      reviews(first: 3) { edges { node { author { name } } } } } }
  } } }
}
"""
BENCH_KEY = "bench-service-key-0123456789"
BENCH_SCOPES = ["admin", "orders:read", "users:read", "reviews:read", "products:read"]


def auth_toml() -> str:
    digest = hashlib.sha256(BENCH_KEY.encode()).hexdigest()
    return (
        "[auth]\nallow_anonymous = true\n[[auth.api_keys]]\n"
        f'hash = "sha256:{digest}"\nclient_id = "bench"\ntier = "service"\n'
        f"scopes = {BENCH_SCOPES!r}\n".replace("'", '"')
    )


async def bench(requests: int, concurrency: int, firsts: list[int]) -> None:
    ports = find_free_ports(len(DEMO_UPSTREAMS) + 1)
    service_ports = {name: [port] for name, port in zip(DEMO_UPSTREAMS, ports, strict=False)}
    with DemoPlatform(ports=service_ports) as platform:
        config = gateway_toml(platform.addresses, ports[-1], extra=auth_toml())
        with gateway_process(config, ports[-1]) as gateway:
            headers = {"X-Api-Key": BENCH_KEY, "X-Switchyard-Debug": "1"}
            print(f"{requests} requests per row, {concurrency} in flight")
            print(
                f"{'first':>5}  {'upstream calls/query':<48} {'p50 ms':>7} {'p99 ms':>7} "
                f"{'CPU ms/req':>10}"
            )
            for first in firsts:
                payload = {"query": DEEP_QUERY, "variables": {"n": first}}
                result = await run_load(
                    gateway, payload, requests=requests, concurrency=concurrency, headers=headers
                )
                errors = sum(1 for body in result.bodies if "errors" in body)
                usage = result.bodies[-1]["extensions"]["upstreams"]
                calls = " ".join(f"{name}={u['calls']}" for name, u in usage.items())
                total = sum(u["calls"] for u in usage.values())
                print(
                    f"{first:>5}  {calls + f' (total {total})':<48} {result.p50_ms:>7.2f} "
                    f"{result.p99_ms:>7.2f} {result.cpu_ms_per_request:>10.2f}"
                    + (f"  errors in {errors} responses" if errors else "")
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--first", type=int, nargs="+", default=[1, 50])
    args = parser.parse_args()
    asyncio.run(bench(args.requests, args.concurrency, args.first))


if __name__ == "__main__":
    main()
