"""The gateway of another revision beside this one, the same requests interleaved.

    git worktree add /tmp/before <rev>
    python -m bench.versus /tmp/before [--rounds 2] [--concurrency 8]
                           [--operations small medium large] [--extra TOML]

Starts the demo services and two gateway processes (the other checkout's code and
this one's, the bench key's auth, coalescing and the upstream cache off in both so
neither shares calls between requests; ``--other-predates-sharing`` for a revision
older than those settings, which then has neither), sends the three operations of
``bench/operations.py`` to both in one stream and prints each one's CPU per request
and p50, and their ratio: ratios in one run, whatever else the machine does.
``--extra`` adds TOML tables to both configs, e.g. ``--extra "$(python -m
bench.telemetry --print-config on)"`` compares the two with metrics and traces on.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.fanout import BENCH_KEY, auth_toml
from bench.harness import GatewayProcess, _wait_until_healthy, gateway_toml, run_mixed_load
from bench.operations import OPERATIONS
from services.launcher import DemoPlatform, find_free_ports
from services.registry import SERVICE_NAMES

HERE = Path(__file__).resolve().parent.parent
REQUESTS = {"small": 1200, "medium": 400, "large": 60}
NO_SHARING = "coalesce = false\ncache = { enabled = false }"


def start(root: Path, config: str, port: int) -> GatewayProcess:
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as handle:
        handle.write(config)
    process = subprocess.Popen(
        [sys.executable, "-m", "switchyard.cli", "serve", "--config", handle.name],
        cwd=root,
        env=dict(os.environ, PYTHONPATH=str(root)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    gateway = GatewayProcess(process, f"http://127.0.0.1:{port}")
    _wait_until_healthy(gateway)
    return gateway


async def versus(
    other: Path,
    rounds: int,
    concurrency: int,
    *,
    other_shares: bool,
    operations: list[str],
    extra: str,
) -> None:
    ports = find_free_ports(len(SERVICE_NAMES) + 2)
    service_ports = {name: [port] for name, port in zip(SERVICE_NAMES, ports, strict=False)}
    with DemoPlatform(ports=service_ports) as platform:
        addresses = platform.addresses
        before_upstream = "" if other_shares else NO_SHARING
        before = start(
            other,
            gateway_toml(addresses, ports[-2], extra=auth_toml() + extra, upstream=before_upstream),
            ports[-2],
        )
        after = start(
            HERE,
            gateway_toml(addresses, ports[-1], extra=auth_toml() + extra, upstream=NO_SHARING),
            ports[-1],
        )
        try:
            gateways = {"before": before, "after": after}
            for name in operations:
                requests = REQUESTS[name]
                payload = OPERATIONS[name].payload
                for number in range(1, rounds + 1):
                    results = await run_mixed_load(
                        gateways,
                        payload,
                        requests=requests,
                        concurrency=concurrency,
                        headers={"X-Api-Key": BENCH_KEY},
                    )
                    old, new = results["before"], results["after"]
                    errors = {k: sum("errors" in b for b in r.bodies) for k, r in results.items()}
                    cpu = new.cpu_ms_per_request / old.cpu_ms_per_request
                    print(
                        f"{name:6} round {number}: CPU/req before {old.cpu_ms_per_request:7.2f} ms"
                        f" after {new.cpu_ms_per_request:7.2f} ms (x{cpu:.2f}); p50 before"
                        f" {old.p50_ms:7.1f} after {new.p50_ms:7.1f}"
                        f" (x{new.p50_ms / old.p50_ms:.2f}); responses with errors {errors}",
                        flush=True,
                    )
        finally:
            for gateway in (before, after):
                gateway.process.terminate()
                gateway.process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("other", type=Path, help="a checkout of the other revision")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--other-predates-sharing",
        action="store_true",
        help="the other revision has no coalesce/cache settings (before commit 7d63c4a)",
    )
    parser.add_argument("--operations", nargs="+", choices=list(REQUESTS), default=list(REQUESTS))
    parser.add_argument("--extra", default="", help="TOML tables added to both gateways' configs")
    args = parser.parse_args()
    asyncio.run(
        versus(
            args.other,
            args.rounds,
            args.concurrency,
            other_shares=args.other_predates_sharing,
            operations=args.operations,
            extra=args.extra,
        )
    )


if __name__ == "__main__":
    main()
