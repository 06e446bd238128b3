"""What metrics and traces cost the gateway, for the large operation (bench/operations.py).

    python -m bench.telemetry [--rounds 6] [--requests 60] [--rps-requests 240] [--concurrency 8]
                              [--breakdown]

Gateway processes over the same demo services, in two measurements per round, each
round with fresh processes:

- **CPU per request**, the four side by side, the same requests interleaved in one
  stream (machine noise hits all alike), each one's CPU clock read;
- **requests per second**, A B A B: ``off`` alone, then ``on`` alone, twice, each
  with ``--concurrency`` in flight, and each one's CPU per request meanwhile.

    off      metrics, traces and the access log off
    control  the same as off: how far two identical gateways differ (the noise floor)
    on       metrics on + traces at sampling 1.0 to the in-memory exporter (1,000 spans kept)
    all      on + the access log (JSON lines, to /dev/null)
    metrics  metrics alone, traces  traces alone, tenth  on at sampling 0.1
             (``--breakdown``: CPU per request only)

The target (issue 13) is at most 5% fewer requests per second with ``on`` than ``off``.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import time
from typing import Any

import httpx

from bench.fanout import BENCH_KEY, auth_toml
from bench.harness import (
    GatewayProcess,
    cpu_seconds,
    gateway_processes,
    gateway_toml,
    run_mixed_load,
)
from bench.operations import OPERATIONS
from services.launcher import DemoPlatform, find_free_ports
from services.registry import SERVICE_NAMES as DEMO_UPSTREAMS

VARIANTS = ("off", "control", "on", "all")
TELEMETRY = {
    "off": "[metrics]\nenabled = false\n[access_log]\nenabled = false\n",
    "on": (
        "[metrics]\nenabled = true\n[access_log]\nenabled = false\n"
        '[tracing]\nenabled = true\nsampling_ratio = 1.0\nexporter = "memory"\n'
    ),
    "all": (
        "[metrics]\nenabled = true\n"
        '[access_log]\nenabled = true\nformat = "json"\n'
        '[tracing]\nenabled = true\nsampling_ratio = 1.0\nexporter = "memory"\n'
    ),
}
TELEMETRY["control"] = TELEMETRY["off"]
TELEMETRY["metrics"] = "[metrics]\nenabled = true\n[access_log]\nenabled = false\n"
TELEMETRY["traces"] = (
    "[metrics]\nenabled = false\n[access_log]\nenabled = false\n"
    '[tracing]\nenabled = true\nsampling_ratio = 1.0\nexporter = "memory"\n'
)
TELEMETRY["tenth"] = TELEMETRY["on"].replace("sampling_ratio = 1.0", "sampling_ratio = 0.1")
BREAKDOWN = ("metrics", "traces", "tenth")
# The gateway compared with itself shares no upstream call: coalescing and the cache off.
UPSTREAM = "coalesce = false\ncache = { enabled = false }"


async def throughput(
    gateway: GatewayProcess,
    payload: dict[str, Any],
    requests: int,
    concurrency: int,
    headers: dict[str, str],
) -> tuple[float, float]:
    """Requests per second of ``gateway`` alone, ``concurrency`` in flight, and its CPU
    seconds per request meanwhile."""
    remaining = requests

    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                response = await client.post("/graphql", json=payload, headers=headers)
                response.raise_for_status()

        await asyncio.gather(
            *(client.post("/graphql", json=payload, headers=headers) for _ in range(concurrency))
        )
        started, cpu = time.perf_counter(), cpu_seconds(gateway.pid)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        return requests / elapsed, (cpu_seconds(gateway.pid) - cpu) / requests


async def bench(
    rounds: int, requests: int, concurrency: int, rps_requests: int, breakdown: bool
) -> None:
    variants = VARIANTS + BREAKDOWN if breakdown else VARIANTS
    operation = OPERATIONS["large"]
    payload = operation.payload
    headers = {"X-Api-Key": BENCH_KEY}
    ports = find_free_ports(len(DEMO_UPSTREAMS) + len(variants))
    service_ports = {name: [port] for name, port in zip(DEMO_UPSTREAMS, ports, strict=False)}
    gateway_ports = ports[len(DEMO_UPSTREAMS) :]
    print(
        f"large operation; {rounds} rounds; CPU: {requests} requests per gateway interleaved;"
        f" rps: off, on, off, on alone, {rps_requests} requests each; {concurrency} in flight"
    )
    cpu = dict.fromkeys(variants, 0.0)
    count = dict.fromkeys(variants, 0)
    rps: dict[str, list[float]] = {"off": [], "on": []}
    alone: dict[str, list[float]] = {"off": [], "on": []}
    with DemoPlatform(ports=service_ports) as platform:
        for round_number in range(1, rounds + 1):
            configs = {
                name: (
                    gateway_toml(
                        platform.addresses,
                        port,
                        extra=auth_toml() + TELEMETRY[name],
                        debug=False,
                        upstream=UPSTREAM,
                    ),
                    port,
                )
                for name, port in zip(variants, gateway_ports, strict=True)
            }
            with gateway_processes(configs, stderr=subprocess.DEVNULL) as gateways:
                results = await run_mixed_load(
                    gateways, payload, requests=requests, concurrency=concurrency, headers=headers
                )
                for name, result in results.items():
                    failed = [body["errors"] for body in result.bodies if "errors" in body]
                    if failed:
                        raise SystemExit(f"{name}: {len(failed)} answers with errors: {failed[0]}")
                    cpu[name] += result.cpu_seconds
                    count[name] += len(result.latencies)
                for name in ("off", "on", "off", "on"):
                    per_second, cpu_per_request = await throughput(
                        gateways[name], payload, rps_requests, concurrency, headers
                    )
                    rps[name].append(per_second)
                    alone[name].append(cpu_per_request)
            row = "  ".join(f"{name} {results[name].cpu_ms_per_request:6.2f}" for name in variants)
            print(
                f"round {round_number}: CPU ms/req {row}   rps off {rps['off'][-2]:.1f}"
                f" {rps['off'][-1]:.1f}  on {rps['on'][-2]:.1f} {rps['on'][-1]:.1f}",
                flush=True,
            )
    base = cpu["off"] / count["off"] * 1000
    print(f"CPU per request: off {base:.2f} ms", end="")
    for name in variants[1:]:
        per_request = cpu[name] / count[name] * 1000
        print(f"   {name} {per_request:.2f} ms ({(per_request / base - 1) * 100:+.1f}%)", end="")
    print()
    off, on = sum(rps["off"]) / len(rps["off"]), sum(rps["on"]) / len(rps["on"])
    print(
        f"requests per second (A B A B): off {off:.1f}   on {on:.1f} ({(on / off - 1) * 100:+.1f}%)"
    )
    off_cpu, on_cpu = (sum(alone[name]) / len(alone[name]) * 1000 for name in ("off", "on"))
    print(
        f"CPU per request in those runs (each gateway alone): off {off_cpu:.2f} ms"
        f"   on {on_cpu:.2f} ms ({(on_cpu / off_cpu - 1) * 100:+.1f}%)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--rps-requests", type=int, default=240)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--breakdown", action="store_true", help="also metrics alone and traces alone (CPU)"
    )
    parser.add_argument(
        "--print-config", choices=list(TELEMETRY), help="print a variant's TOML and exit"
    )
    args = parser.parse_args()
    if args.print_config:
        print(TELEMETRY[args.print_config], end="")
        return
    asyncio.run(
        bench(args.rounds, args.requests, args.concurrency, args.rps_requests, args.breakdown)
    )


if __name__ == "__main__":
    main()
