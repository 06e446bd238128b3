"""How far past the request deadline answers arrive when one service hangs.

    python -m bench.deadline [--service accounts] [--timeout 0.5] [--requests 40] [--concurrency 4]

Starts the demo services and a gateway process on free loopback ports, makes one
service hang (injected latency far beyond the deadline, through its admin
interface), sends the README's query, and prints, over every answer, how long after
the deadline (``[server] request_timeout``) it arrived: p50, p99 and the largest,
and whether each answer carried ``UPSTREAM_TIMEOUT`` beside the other services' data.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from pathlib import Path

from bench.fanout import BENCH_KEY, auth_toml
from bench.harness import gateway_process, gateway_toml, run_load
from services.admin import AdminClient
from services.faults import FaultConfig
from services.launcher import DemoPlatform, find_free_ports
from services.registry import SERVICE_NAMES as DEMO_UPSTREAMS
from switchyard.config import load_config

PROJECT_CONFIG = Path(__file__).resolve().parent.parent / "switchyard.toml"
README_QUERY = load_config(PROJECT_CONFIG).ide.initial_query or ""
"""The README's example query: GraphiQL's first query in the demo config."""
HUNG = FaultConfig(latency_ms=120_000)


async def bench(service: str, timeout: float, requests: int, concurrency: int) -> None:
    ports = find_free_ports(len(DEMO_UPSTREAMS) + 1)
    service_ports = {name: [port] for name, port in zip(DEMO_UPSTREAMS, ports, strict=False)}
    with DemoPlatform(ports=service_ports) as platform:
        config = gateway_toml(platform.addresses, ports[-1], extra=auth_toml())
        # The deadline, not the upstream's own (longer) timeout, is what must fire.
        config = config.replace(
            'log_level = "warning"', f'log_level = "warning"\nrequest_timeout = {timeout}'
        )
        config = config.replace("\ninstances = ", "\ntimeout = 60.0\ninstances = ")
        async with AdminClient() as admin:
            for endpoint in platform.endpoints(service):
                await admin.set_faults(endpoint, HUNG)
            with gateway_process(config, ports[-1]) as gateway:
                result = await run_load(
                    gateway,
                    {"query": README_QUERY},
                    requests=requests,
                    concurrency=concurrency,
                    headers={"X-Api-Key": BENCH_KEY},
                )
            for endpoint in platform.endpoints(service):
                await admin.set_faults(endpoint, FaultConfig())
    codes = [{e["extensions"]["code"] for e in body.get("errors", [])} for body in result.bodies]
    # Answers that waited for the deadline; once a breaker opens, calls fail fast instead.
    late = sorted(
        (latency - timeout) * 1000
        for latency, found in zip(result.latencies, codes, strict=True)
        if "UPSTREAM_TIMEOUT" in found
    )
    print(
        f"{service} hung, request_timeout {timeout} s, {requests} requests, {concurrency} in flight"
    )
    if late:
        p99 = late[min(len(late) - 1, int(len(late) * 0.99))]
        print(
            f"{len(late)} answers with UPSTREAM_TIMEOUT, past the deadline by: "
            f"p50 {statistics.median(late):.1f} ms, p99 {p99:.1f} ms, max {late[-1]:.1f} ms"
        )
    fast = sum(1 for found in codes if "UPSTREAM_UNAVAILABLE" in found)
    with_data = sum(1 for body in result.bodies if body.get("data") is not None)
    print(f"answers failed fast (UPSTREAM_UNAVAILABLE): {fast}; with data: {with_data}/{requests}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--service", default="accounts", choices=DEMO_UPSTREAMS)
    parser.add_argument("--timeout", type=float, default=0.5, help="request_timeout, seconds")
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(bench(args.service, args.timeout, args.requests, args.concurrency))


if __name__ == "__main__":
    main()
