"""Shared pieces of the benchmarks: a gateway process, a bounded load loop, CPU accounting.

Every run is bounded in requests and time and talks only to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """CPU time a process (all its threads) has used so far, to the nanosecond on Linux.

    Reads the process's CPU-time clock (``clock_getcpuclockid``: ``~pid << 3 | 2``);
    where that is refused, falls back to /proc's user plus system ticks (10 ms).
    """
    try:
        return time.clock_gettime((~pid << 3) | 2)
    except OSError:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return str(value)


def gateway_toml(
    addresses: Mapping[str, list[str]],
    port: int,
    extra: str = "",
    debug: bool = True,
    server: str = "",
    upstream: str = "",
) -> str:
    """A gateway's config over ``addresses``; ``server`` and ``upstream`` are TOML lines added
    to ``[server]`` and to every ``[upstreams.NAME]``, ``extra`` further tables."""
    lines = ["[graph]", 'module = "schema:graph"']
    lines += ["[server]", 'host = "127.0.0.1"', f"port = {port}", f"debug = {toml_value(debug)}"]
    # The debug extensions (calls per service) exist in development mode only.
    lines.append(f'mode = "{"development" if debug else "production"}"')
    lines.append('log_level = "warning"')
    if server:
        lines.append(server)
    kinds = {"catalog": "grpc", "inventory": "grpc", "shipping": "xml"}
    for name, instances in addresses.items():
        lines += [
            f"[upstreams.{name}]",
            f'kind = "{kinds.get(name, "rest")}"',
            f"instances = {toml_value(instances)}",
        ]
        if upstream:
            lines.append(upstream)
    return "\n".join(lines) + "\n" + extra


@dataclass
class GatewayProcess:
    process: subprocess.Popen[bytes]
    url: str

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def gateway_process(config_text: str, port: int) -> Iterator[GatewayProcess]:
    """``switchyard serve`` in a child process, ready when /healthz answers."""
    with gateway_processes({"gateway": (config_text, port)}) as gateways:
        yield gateways["gateway"]


@contextmanager
def gateway_processes(
    configs: Mapping[str, tuple[str, int]], stderr: int | None = None
) -> Iterator[dict[str, GatewayProcess]]:
    """One ``switchyard serve`` per ``name: (config text, port)``, started together;
    ``stderr`` (``subprocess.DEVNULL``: the access log's lines) as ``subprocess.Popen``'s."""
    started: dict[str, GatewayProcess] = {}
    files: list[str] = []
    try:
        for name, (config_text, port) in configs.items():
            with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as handle:
                handle.write(config_text)
            files.append(handle.name)
            process = subprocess.Popen(
                [sys.executable, "-m", "switchyard.cli", "serve", "--config", handle.name],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
            started[name] = GatewayProcess(process, f"http://127.0.0.1:{port}")
        for gateway in started.values():
            _wait_until_healthy(gateway)
        yield started
    finally:
        for gateway in started.values():
            gateway.process.terminate()
        for gateway in started.values():
            gateway.process.wait(10)
        for file in files:
            os.unlink(file)


def _wait_until_healthy(gateway: GatewayProcess, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if gateway.process.poll() is not None:
            raise RuntimeError(f"gateway exited with {gateway.process.returncode}")
        try:
            if httpx.get(gateway.url + "/healthz", timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"gateway did not start in {timeout:.0f} s")
        time.sleep(0.1)


@dataclass
class LoadResult:
    latencies: list[float]
    bodies: list[dict[str, Any]]
    cpu_seconds: float

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000

    @property
    def p99_ms(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_seconds / len(self.latencies) * 1000


async def run_load(
    gateway: GatewayProcess,
    payload: Mapping[str, Any],
    *,
    requests: int,
    concurrency: int,
    headers: Mapping[str, str] | None = None,
) -> LoadResult:
    """Send ``requests`` POSTs with ``concurrency`` in flight; measure the gateway's CPU."""
    results = await run_mixed_load(
        {"gateway": gateway},
        payload,
        requests=requests,
        concurrency=concurrency,
        headers=headers,
    )
    return results["gateway"]


async def run_mixed_load(
    gateways: Mapping[str, GatewayProcess],
    payload: Mapping[str, Any],
    *,
    requests: int,
    concurrency: int,
    headers: Mapping[str, str] | None = None,
) -> dict[str, LoadResult]:
    """``requests`` POSTs to each gateway, interleaved in one stream with ``concurrency`` in
    flight, so whatever else the machine does slows every gateway alike; CPU per gateway."""
    names = list(gateways)
    queue: asyncio.Queue[str] = asyncio.Queue()
    for _ in range(requests):
        for name in names:
            queue.put_nowait(name)
    latencies: dict[str, list[float]] = {name: [] for name in names}
    bodies: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    clients = {
        name: httpx.AsyncClient(base_url=gateway.url, timeout=30)
        for name, gateway in gateways.items()
    }
    try:

        async def worker() -> None:
            while not queue.empty():
                name = queue.get_nowait()
                started = time.perf_counter()
                response = await clients[name].post("/graphql", json=payload, headers=headers)
                latencies[name].append(time.perf_counter() - started)
                response.raise_for_status()
                bodies[name].append(response.json())

        # Warm-up: caches filled, and as many pooled upstream connections as will be used.
        await asyncio.gather(
            *(
                client.post("/graphql", json=payload, headers=headers)
                for client in clients.values()
                for _ in range(concurrency)
            )
        )
        before = {name: cpu_seconds(gateway.pid) for name, gateway in gateways.items()}
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        after = {name: cpu_seconds(gateway.pid) for name, gateway in gateways.items()}
    finally:
        for client in clients.values():
            await client.aclose()
    return {
        name: LoadResult(latencies[name], bodies[name], after[name] - before[name])
        for name in names
    }
