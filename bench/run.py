"""The issue-10 harness: the gateway beside the floor and a naive gateway, under wrk.

    python -m bench.run --quick    # make bench: latency 0, c=16, about 4 minutes on 2 cores
    python -m bench.run --full     # make bench-full: latency 0 and 10 ms, c=1/16/64, memory

Starts the six demo services and three targets, each its own process on a free port:

    floor    bench/floor.py: no GraphQL, the fewest upstream calls, the fastest measured
             server and client (--floor-server, --floor-client)
    gateway  ``switchyard serve`` with the demo config's features on: API-key auth, cost
             analysis enforcing, per-client budgets (the bench key's tier far above the load),
             debug / development mode
    naive    the same gateway over bench/naive_graph.py: one upstream call per parent

and, for each fixed upstream latency, operation and concurrency, measures the targets in
turn (floor, gateway, naive, floor, gateway, naive...: ``--rounds``) with wrk: a short
warm-up, then ``--duration`` seconds. A table on the terminal, JSON in bench/out/
(bench/README.md says what each column means).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import platform as host
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc.aio
import httpx
import orjson

from bench.fanout import BENCH_KEY, auth_toml
from bench.harness import cpu_seconds, gateway_toml
from bench.operations import OPERATIONS, Operation
from services.admin import AdminClient
from services.faults import FaultConfig
from services.grpc_server import ADMIN_SERVICE
from services.launcher import DemoPlatform, find_free_ports
from services.recording import RequestRecord
from services.registry import SERVICE_NAMES

BENCH_DIR = Path(__file__).resolve().parent
OUT_DIR = BENCH_DIR / "out"
LUA_REPORT = BENCH_DIR / "wrk_report.lua"
TARGETS = ("floor", "gateway", "naive")
HEADERS = {"Content-Type": "application/json", "X-Api-Key": BENCH_KEY}
FEATURES_TOML = (
    # The demo config's features: cost analysis enforcing (the large query costs 2,152
    # points: the demo's max_cost 5,000), budgets in process, the bench key's tier ("service",
    # bench/fanout.py) refilled far faster than any load here, so nothing is refused.
    '[cost]\nmode = "enforce"\nmax_cost = 5000\n'
    '[budgets]\nenabled = true\nbackend = "memory"\ndefault_tier = "anonymous"\n'
    "[budgets.tiers]\n"
    "anonymous = { capacity = 1000, refill_per_second = 50 }\n"
    "service = { capacity = 1000000000, refill_per_second = 1000000000 }\n"
)
GATEWAY_SERVER_TOML = (
    # Idle keep-alive connections stay open through the memory check (uvicorn's default: 5 s).
    "keep_alive = 600.0"
)
GATEWAY_UPSTREAM_TOML = (
    # The floor shares no call between requests: neither may the gateway it is compared with
    # (the load repeats one operation, so coalescing would answer most requests from others'
    # calls). The upstream cache is off for the same reason.
    "coalesce = false\ncache = { enabled = false }"
)
CPU_TARGET = {"small": 3.0, "medium": 3.0, "large": 2.0}
RPS_TARGET = {"small": 0.6, "medium": 0.6, "large": 0.5}
P50_TARGET = 1.15


@dataclass(frozen=True)
class Mode:
    name: str
    latencies_ms: tuple[float, ...]
    concurrencies: tuple[int, ...]
    rounds: int
    warmup_s: float
    duration_s: float
    memory: bool
    soak_s: float


QUICK = Mode("quick", (0.0,), (16,), rounds=2, warmup_s=2, duration_s=7, memory=False, soak_s=0)
FULL = Mode(
    "full", (0.0, 10.0), (1, 16, 64), rounds=2, warmup_s=2, duration_s=8, memory=True, soak_s=300
)


# --- processes -------------------------------------------------------------------------


def ensure_wrk() -> str:
    """wrk's path; installed from Debian's packages (apt-get install -y wrk) when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is missing: apt-get install -y wrk", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in ([*sudo, "apt-get", "update"], [*sudo, "apt-get", "install", "-y", "wrk"]):
        if subprocess.run(command, env=env, check=False).returncode != 0:
            raise SystemExit(f"could not install wrk ({' '.join(command)} failed)")
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is still missing after apt-get install")
    return found


def floor_layers(server: str, client: str) -> tuple[str, str]:
    """The floor's server and client, falling back to what is installed (said on the terminal)."""
    missing = [m for m in ("uvloop", "httptools") if importlib.util.find_spec(m) is None]
    if server == "uvicorn" and missing:
        print(f"floor: {', '.join(missing)} missing, serving on uvicorn-h11", flush=True)
        server = "uvicorn-h11"
    if server == "granian" and importlib.util.find_spec("granian") is None:
        print("floor: granian missing, serving on uvicorn", flush=True)
        server = "uvicorn"
    module = {"aiohttp": "aiohttp", "httpx-aiohttp": "httpx_aiohttp"}.get(client)
    if module is not None and importlib.util.find_spec(module) is None:
        print(f"floor: {module} missing, calling upstreams with httpx", flush=True)
        client = "httpx"
    return server, client


def raise_open_files_limit() -> int:
    """Soft limit on open files up to the hard one (children inherit it): 1,064 sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (workers), from /proc's children lists."""
    found = [pid]
    for current in found:
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                children = Path(f"/proc/{current}/task/{task}/children").read_text().split()
                found.extend(int(child) for child in children)
    return found


def host_cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


@dataclass
class Target:
    name: str
    command: list[str]
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pids(self) -> list[int]:
        assert self.process is not None
        return descendants(self.process.pid)

    def cpu(self) -> float:
        total = 0.0
        for pid in self.pids:
            with contextlib.suppress(OSError, ProcessLookupError):
                total += cpu_seconds(pid)
        return total

    def rss_kib(self) -> dict[int, int]:
        """VmRSS of each process (the server and its workers)."""
        return {pid: status_kib(pid, "VmRSS") for pid in self.pids}

    def reset_peak(self) -> bool:
        """Reset VmHWM to the current RSS (Linux 4.0+); False where refused."""
        try:
            for pid in self.pids:
                Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def peak_kib(self) -> int:
        """The largest VmHWM among the processes (peak RSS per worker)."""
        return max(status_kib(pid, "VmHWM") for pid in self.pids)

    def start(self) -> None:
        # Output to a file (read on failure): a naive gateway logs every failed call.
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.command,
                cwd=BENCH_DIR.parent,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log_tail(self) -> str:
        return self.log.read_bytes()[-2000:].decode("utf-8", "replace")

    def wait_healthy(self, timeout: float = 30) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/healthz", timeout=0.5).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start in {timeout:.0f} s")
            time.sleep(0.1)

    async def wait_idle(self, max_wait_s: float = 20, busy_share: float = 0.05) -> None:
        """Until the process uses under ``busy_share`` of a core for half a second."""
        deadline = time.monotonic() + max_wait_s
        while time.monotonic() < deadline:
            before = self.cpu()
            await asyncio.sleep(0.5)
            if self.cpu() - before < busy_share * 0.5:
                return

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def started_targets(
    platform: DemoPlatform, args: argparse.Namespace, workdir: Path
) -> Iterator[dict[str, Target]]:
    ports = find_free_ports(len(TARGETS))
    features = auth_toml() + FEATURES_TOML
    targets: dict[str, Target] = {}
    for name, port in zip(TARGETS, ports, strict=True):
        if name == "floor":
            command = [
                sys.executable, "-m", "bench.floor", "--port", str(port),
                "--upstreams", json.dumps(platform.addresses),
                "--server", args.floor_server, "--client", args.floor_client,
            ]  # fmt: skip
        else:
            config = workdir / f"{name}.toml"
            config.write_text(
                gateway_toml(
                    platform.addresses,
                    port,
                    extra=features,
                    server=GATEWAY_SERVER_TOML,
                    upstream=GATEWAY_UPSTREAM_TOML,
                )
            )
            command = [sys.executable, "-m", "switchyard.cli", "serve", "--config", str(config)]
            if name == "naive":
                command += ["--graph", "bench.naive_graph:graph"]
        targets[name] = Target(name, command, port, workdir / f"{name}.log")
    try:
        for target in targets.values():
            target.start()
        for target in targets.values():
            target.wait_healthy()
        yield targets
    finally:
        for target in targets.values():
            target.stop()


# --- the services' view ----------------------------------------------------------------


class Backends:
    """Upstream calls per request, from the demo services' request records."""

    def __init__(self, platform: DemoPlatform, admin: AdminClient) -> None:
        self.platform = platform
        self.admin = admin
        self.since = 0.0
        self._channels: dict[str, grpc.aio.Channel] = {}

    def endpoints(self) -> list[Any]:
        return [e for name in SERVICE_NAMES for e in self.platform.endpoints(name)]

    async def reset(self) -> None:
        self.since = time.time()
        for endpoint in self.endpoints():
            await self.admin.reset(endpoint)

    async def set_latency(self, latency_ms: float) -> None:
        for endpoint in self.endpoints():
            await self.admin.set_faults(endpoint, FaultConfig(latency_ms=latency_ms))

    async def records(self) -> list[RequestRecord]:
        records: list[RequestRecord] = []
        for endpoint in self.endpoints():
            if endpoint.kind == "rest":
                found = await self.admin.requests(endpoint)
            else:
                found = await self.grpc_records(endpoint.address)
            records.extend(r for r in found if r.start >= self.since)
        return records

    async def grpc_records(self, address: str) -> list[RequestRecord]:
        """The admin ``Requests`` call on a channel without gRPC's 4 MB answer limit (a few
        seconds of load record more: AdminClient's channel refuses them)."""
        channel = self._channels.get(address)
        if channel is None:
            options = [("grpc.max_receive_message_length", -1)]
            channel = self._channels[address] = grpc.aio.insecure_channel(address, options)
        call = channel.unary_unary(f"/{ADMIN_SERVICE}/Requests", None, None)
        answer = orjson.loads(await call(b"{}", timeout=30))
        return [RequestRecord.from_json(record) for record in answer["requests"]]

    async def aclose(self) -> None:
        for channel in self._channels.values():
            await channel.close(None)

    async def settled_records(self, max_wait_s: float = 10) -> list[RequestRecord]:
        """The records once requests still in flight at the load's end have finished."""
        records = await self.records()
        deadline = time.monotonic() + max_wait_s
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            again = await self.records()
            if len(again) == len(records):
                break
            records = again
        return records


def calls_per_request(
    records: Sequence[RequestRecord], requests: int, concurrency: int
) -> dict[str, Any]:
    """Upstream calls per request the target received: every call the services recorded
    from the load's start (nothing in flight then) until the requests in flight at its end
    (``concurrency`` of them, wrk keeps every connection busy) finished, over the answered
    requests plus those. Exact for a target that answers each request with its own calls;
    a target that shares calls between requests (coalescing identical calls, caching)
    comes out below its own per-request count: ``per_request_id`` shows it, the calls
    grouped by the x-request-id each carried (fewer ids than requests: calls were shared).
    """
    by_request: Counter[str] = Counter()
    by_service: Counter[str] = Counter()
    for record in records:
        by_service[record.service] += 1
        request_id = record.headers.get("x-request-id")
        if request_id is not None:
            by_request[request_id] += 1
    received = requests + concurrency
    counts = list(by_request.values())
    return {
        "mean": len(records) / received,
        "total": len(records),
        "requests_received": received,
        "by_service": {k: v / received for k, v in sorted(by_service.items())},
        "request_ids_seen": len(by_request),
        "per_request_id": {
            "mean": sum(counts) / len(counts),
            "min": min(counts),
            "max": max(counts),
        }
        if counts
        else None,
        "shared": len(by_request) < 0.9 * requests,
    }


# --- wrk --------------------------------------------------------------------------------


def lua_string(text: str) -> str:
    level = "=" * 3
    while f"]{level}]" in text:
        level += "="
    return f"[{level}[{text}]{level}]"


def wrk_script(bodies: Sequence[bytes], headers: dict[str, str], workdir: Path) -> Path:
    lines = ["bodies = {" + ", ".join(lua_string(b.decode()) for b in bodies) + "}"]
    pairs = (f"[ {lua_string(k)} ] = {lua_string(v)}" for k, v in headers.items())
    lines.append("headers = {" + ", ".join(pairs) + "}")
    path = Path(tempfile.mkstemp(suffix=".lua", dir=workdir)[1])
    path.write_text("\n".join(lines) + "\n" + LUA_REPORT.read_text())
    return path


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: int
    status_errors: int
    body_errors: int
    paths: dict[str, int]

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def errors(self) -> int:
        return self.socket_errors + self.status_errors + self.body_errors


async def run_wrk(
    wrk: str, script: Path, url: str, connections: int, seconds: float, timeout_s: float
) -> WrkResult:
    command = [
        wrk, "--latency", "-t", "1", "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
        "--timeout", f"{timeout_s:g}s", "-s", str(script), url + "/graphql",
    ]  # fmt: skip
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await process.communicate()
    text = stdout.decode()
    line = next((ln for ln in text.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no report: {text}\n{stderr.decode()}")
    raw = json.loads(line.removeprefix("WRKJSON "))
    return WrkResult(
        requests=raw["requests"],
        duration_s=raw["duration_us"] / 1e6,
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        socket_errors=raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
        status_errors=raw["status"],
        body_errors=raw["body_errors"],
        paths=raw["paths"],
    )


# --- one cell ---------------------------------------------------------------------------


@dataclass
class Measurement:
    latency_ms: float
    operation: str
    concurrency: int
    target: str
    round: int
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int
    error_detail: dict[str, int]
    cpu_ms_per_request: float | None
    """None when no request completed."""
    calls_per_request: float
    calls: dict[str, Any]
    peak_rss_mib: float
    paths: dict[str, int]
    requests: int
    host_busy: float
    """The machine's CPU in use during the load (all cores: 1.0 is every core busy)."""


@dataclass
class Context:
    wrk: str
    backends: Backends
    workdir: Path
    warmup_s: float
    duration_s: float
    timeout_s: float
    headers: dict[str, str] = field(default_factory=lambda: dict(HEADERS))


async def measure(
    ctx: Context,
    target: Target,
    operation: Operation,
    concurrency: int,
    latency_ms: float,
    round_: int,
) -> Measurement:
    script = wrk_script([operation.body], ctx.headers, ctx.workdir)
    await run_wrk(ctx.wrk, script, target.url, concurrency, ctx.warmup_s, ctx.timeout_s)
    await ctx.backends.settled_records(max_wait_s=3)  # the warm-up's stragglers end
    await ctx.backends.reset()
    target.reset_peak()
    before = target.cpu()
    host_before = host_cpu_ticks()
    result = await run_wrk(ctx.wrk, script, target.url, concurrency, ctx.duration_s, ctx.timeout_s)
    cpu = target.cpu() - before
    host_after = host_cpu_ticks()
    host_busy = (host_after[0] - host_before[0]) / max(1, host_after[1] - host_before[1])
    records = await ctx.backends.settled_records()
    calls = calls_per_request(records, result.requests, concurrency)
    script.unlink()
    await target.wait_idle()  # what it still works on (the naive gateway) spares the next
    return Measurement(
        latency_ms=latency_ms,
        operation=operation.name,
        concurrency=concurrency,
        target=target.name,
        round=round_,
        rps=result.rps,
        p50_ms=result.p50_ms if result.requests else None,
        p99_ms=result.p99_ms if result.requests else None,
        errors=result.errors,
        error_detail={
            "socket": result.socket_errors,
            "status": result.status_errors,
            "body": result.body_errors,
        },
        cpu_ms_per_request=cpu / result.requests * 1000 if result.requests else None,
        calls_per_request=calls["mean"],
        calls=calls,
        peak_rss_mib=target.peak_kib() / 1024,
        paths=result.paths,
        requests=result.requests,
        host_busy=host_busy,
    )


# --- summary, checks and the table ----------------------------------------------------

FIGURES = ("rps", "p50_ms", "p99_ms", "errors", "cpu_ms_per_request", "calls_per_request")
FIGURES_RSS = (*FIGURES, "peak_rss_mib")


def summarize(measurements: Sequence[Measurement]) -> list[dict[str, Any]]:
    """One row per (latency, operation, concurrency, target): the median over rounds, the
    spread (min-max), and the ratio to the floor of the same round (median and spread)."""
    cells: dict[tuple[float, str, int], dict[str, list[Measurement]]] = {}
    for m in measurements:
        cells.setdefault((m.latency_ms, m.operation, m.concurrency), {}).setdefault(
            m.target, []
        ).append(m)
    rows = []
    for (latency, operation, concurrency), by_target in cells.items():
        floors = {m.round: m for m in by_target.get("floor", [])}
        for target in TARGETS:
            runs = by_target.get(target, [])
            if not runs:
                continue
            row: dict[str, Any] = {
                "latency_ms": latency,
                "operation": operation,
                "concurrency": concurrency,
                "target": target,
                "rounds": len(runs),
            }
            for name in FIGURES_RSS:
                values = [float(getattr(m, name)) for m in runs if getattr(m, name) is not None]
                ratios = [
                    float(getattr(m, name)) / float(getattr(floors[m.round], name))
                    for m in runs
                    if m.round in floors
                    and getattr(m, name) is not None
                    and getattr(floors[m.round], name)
                ]
                row[name] = statistics.median(values) if values else None
                row[name + "_spread"] = [min(values), max(values)] if values else None
                row[name + "_ratio"] = statistics.median(ratios) if ratios else None
                row[name + "_ratio_spread"] = [min(ratios), max(ratios)] if ratios else None
            paths: Counter[str] = Counter()
            for m in runs:
                paths.update(m.paths)
            row["paths"] = dict(paths)
            row["calls_shared"] = any(m.calls.get("shared") for m in runs)
            rows.append(row)
    return rows


def find_row(
    rows: Sequence[dict[str, Any]], latency: float, op: str, c: int, target: str
) -> dict[str, Any] | None:
    for row in rows:
        if (row["latency_ms"], row["operation"], row["concurrency"], row["target"]) == (
            latency,
            op,
            c,
            target,
        ):
            return row
    return None


def checks(rows: Sequence[dict[str, Any]], mode: Mode) -> list[dict[str, Any]]:
    """The issue's targets (gateway against the floor) and the no-collapse rule of part 2."""
    found: list[dict[str, Any]] = []

    def add(name: str, passed: bool | None, detail: str) -> None:
        verdict = "n/a" if passed is None else ("PASS" if passed else "FAIL")
        found.append({"check": name, "verdict": verdict, "detail": detail})

    for op in OPERATIONS:
        gateway_rows = [r for r in rows if r["operation"] == op and r["target"] == "gateway"]
        floor_rows = {
            (r["latency_ms"], r["concurrency"]): r
            for r in rows
            if r["operation"] == op and r["target"] == "floor"
        }
        # Calls: the floor's, in every cell; fewer only when calls are shared between
        # requests (coalesced or cached: the load repeats one operation), which is said.
        bad, shared = [], []
        for r in gateway_rows:
            floor = floor_rows[(r["latency_ms"], r["concurrency"])]["calls_per_request"]
            where = f"at {r['latency_ms']:g} ms c={r['concurrency']}"
            if r["calls_per_request"] > floor + 0.05:
                bad.append(f"{r['calls_per_request']:.2f} vs {floor:.2f} {where}")
            elif r["calls_per_request"] < floor - 0.05:
                shared.append(f"{r['calls_per_request']:.2f} vs {floor:.2f} {where}")
        detail = "; ".join(bad) or f"{len(gateway_rows)} cells"
        if shared:
            detail += "; fewer (shared between requests): " + "; ".join(shared)
        add(
            f"{op}: upstream calls <= floor's (every cell)",
            not bad if gateway_rows else None,
            detail,
        )
        # CPU per request.
        limit = CPU_TARGET[op]
        ratios = [(r["cpu_ms_per_request_ratio"] or 0.0, r) for r in gateway_rows]
        worst = max(ratios, key=lambda pair: pair[0], default=None)
        add(
            f"{op}: gateway CPU/request <= {limit:g}x floor's (every cell)",
            None if worst is None else worst[0] <= limit,
            ""
            if worst is None
            else f"worst {worst[0]:.2f}x at {worst[1]['latency_ms']:g} ms"
            f" c={worst[1]['concurrency']}",
        )
        # p50 at 10 ms, c=1.
        row = find_row(rows, 10.0, op, 1, "gateway")
        add(
            f"{op}: p50 at 10 ms latency, c=1 <= {P50_TARGET:g}x floor's",
            None if row is None else (row["p50_ms_ratio"] or 1e9) <= P50_TARGET,
            "not measured in this mode"
            if row is None
            else f"{num(row['p50_ms'], 0, 1)} ms, {num(row['p50_ms_ratio'], 0, 2)}x",
        )
        # Throughput at latency 0, c=16 and 64.
        for c in (16, 64):
            row = find_row(rows, 0.0, op, c, "gateway")
            add(
                f"{op}: rps at latency 0, c={c} >= {RPS_TARGET[op]:g}x floor's",
                None if row is None else (row["rps_ratio"] or 0.0) >= RPS_TARGET[op],
                "not measured in this mode"
                if row is None
                else f"{row['rps']:.0f} rps, {num(row['rps_ratio'], 0, 2)}x",
            )
    # No collapse: rps(64) >= rps(1), p99(64) <= 64 / rps(1) * 2, zero errors.
    if not {1, 64} <= {r["concurrency"] for r in rows}:
        add("no collapse (part 2)", None, "needs c=1 and c=64 (full mode)")
    for latency in mode.latencies_ms:
        for op in OPERATIONS:
            for target in TARGETS:
                one = find_row(rows, latency, op, 1, target)
                many = find_row(rows, latency, op, 64, target)
                name = f"no collapse: {op} {target} at {latency:g} ms"
                if one is None or many is None:
                    continue
                bound_ms = 64 / one["rps"] * 2 * 1000 if one["rps"] else 0.0
                p99 = many["p99_ms"] if many["p99_ms"] is not None else float("inf")
                errors = sum(
                    r["errors"]
                    for r in rows
                    if (r["latency_ms"], r["operation"], r["target"]) == (latency, op, target)
                )
                passed = many["rps"] >= one["rps"] and p99 <= bound_ms and errors == 0
                add(
                    name,
                    passed,
                    f"rps {one['rps']:.0f} -> {many['rps']:.0f}; p99(64) {p99:.0f} ms"
                    f" (bound {bound_ms:.0f}); errors {errors:g}",
                )
    return found


def num(value: float | None, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def spread_text(pair: list[float] | None, digits: int) -> str:
    if not pair:
        return ""
    return f"{pair[0]:.{digits}f}-{pair[1]:.{digits}f}"


def path_text(paths: dict[str, int]) -> str:
    total = sum(paths.values())
    if not total:
        return "?"
    return " ".join(f"{name} {count / total:.0%}" for name, count in sorted(paths.items()))


COLUMNS = (
    # (figure, heading, width, digits)
    ("rps", "rps", 8, 0),
    ("p50_ms", "p50 ms", 8, 1),
    ("p99_ms", "p99 ms", 8, 1),
    ("errors", "err", 5, 0),
    ("cpu_ms_per_request", "CPU ms", 7, 2),
    ("calls_per_request", "calls", 6, 2),
    ("peak_rss_mib", "RSS MiB", 8, 1),
)


def print_table(rows: Sequence[dict[str, Any]]) -> None:
    header = f"{'op':<7}{'c':>3} {'target':<8}"
    for _, heading, width, _ in COLUMNS:
        header += f"{heading:>{width}}{'x':>6} "
    header += f" {'rps spread':<12} {'CPU x spread':<12} path"
    for latency in sorted({r["latency_ms"] for r in rows}):
        print(f"\nupstream latency {latency:g} ms (median of rounds; x = ratio to the floor)")
        print(header)
        print("-" * len(header))
        for row in (r for r in rows if r["latency_ms"] == latency):
            line = f"{row['operation']:<7}{row['concurrency']:>3} {row['target']:<8}"
            for figure, _, width, digits in COLUMNS:
                line += num(row[figure], width, digits) + num(row[figure + "_ratio"], 6, 2) + " "
            line += (
                f" {spread_text(row['rps_spread'], 0):<12}"
                f" {spread_text(row['cpu_ms_per_request_ratio_spread'], 2):<12}"
                f" {path_text(row['paths'])}"
                + ("  (calls shared between requests)" if row["calls_shared"] else "")
            )
            print(line)


def print_checks(found: Sequence[dict[str, Any]]) -> None:
    print("\nchecks (issue 10: targets and the no-collapse rule)")
    for check in found:
        print(f"  {check['verdict']:<4}  {check['check']:<58} {check['detail']}")


# --- memory (part 6) -------------------------------------------------------------------


async def open_idle_connections(
    target: Target, body: bytes, count: int
) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """``count`` keep-alive connections, each having made one request, then idle."""
    head = (
        "POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items())
        + f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    opened: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    semaphore = asyncio.Semaphore(32)

    async def one() -> None:
        async with semaphore:
            reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
            writer.write(head + body)
            await writer.drain()
            headers = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in headers.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            opened.append((reader, writer))

    await asyncio.gather(*(one() for _ in range(count)))
    return opened


def rss_mib(target: Target) -> dict[str, float]:
    return {str(pid): kib / 1024 for pid, kib in target.rss_kib().items()}


async def memory_idle_and_active(
    ctx: Context, target: Target, idle: int, active: int, seconds: float
) -> dict[str, Any]:
    small = OPERATIONS["small"]
    before = rss_mib(target)
    connections = await open_idle_connections(target, small.body, idle)
    with_idle = rss_mib(target)
    target.reset_peak()
    script = wrk_script([small.body], ctx.headers, ctx.workdir)
    result = await run_wrk(ctx.wrk, script, target.url, active, seconds, ctx.timeout_s)
    script.unlink()
    during_peak = target.peak_kib() / 1024
    after = rss_mib(target)
    still_open = sum(1 for reader, _ in connections if not reader.at_eof())
    for _, writer in connections:
        writer.close()
    report = {
        "idle_connections": idle,
        "idle_still_open_after": still_open,
        "active_connections": active,
        "active_rps": result.rps,
        "active_errors": result.errors,
        "rss_mib_before": before,
        "rss_mib_with_idle": with_idle,
        "rss_mib_after_active": after,
        "peak_rss_mib_during_active": during_peak,
    }
    print(
        f"\nmemory, {target.name}: {idle} idle keep-alive connections + {active} active (wrk)"
        f"\n  RSS per worker (MiB): before {_mib(before)}; with idle {_mib(with_idle)};"
        f" after active {_mib(after)}; peak while active {during_peak:.1f}"
        f"\n  active: {result.rps:.0f} rps, {result.errors} errors; idle connections still"
        f" open at the end: {still_open} of {idle}"
    )
    return report


def _mib(values: dict[str, float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values.values())


async def soak(ctx: Context, target: Target, seconds: float, concurrency: int) -> dict[str, Any]:
    """large + small in turn for ``seconds``; RSS every few seconds; growth after minute 1."""
    bodies = [OPERATIONS["large"].body, OPERATIONS["small"].body]
    script = wrk_script(bodies, ctx.headers, ctx.workdir)
    interval = 5.0
    samples: list[tuple[float, float]] = []
    started = time.monotonic()
    load = asyncio.create_task(
        run_wrk(ctx.wrk, script, target.url, concurrency, seconds, ctx.timeout_s)
    )
    while not load.done():
        samples.append((time.monotonic() - started, sum(target.rss_kib().values()) / 1024))
        await asyncio.wait({load}, timeout=interval)
    result = load.result()
    script.unlink()
    samples.append((time.monotonic() - started, sum(target.rss_kib().values()) / 1024))
    after_minute = [rss for t, rss in samples if t >= min(60.0, seconds / 5)]
    base = after_minute[0] if after_minute else samples[0][1]
    growth = (samples[-1][1] / base - 1) if base else 0.0
    passed = growth < 0.05 and result.errors == 0
    print(
        f"\nsoak, {target.name}: large + small in turn, c={concurrency}, {seconds:.0f} s:"
        f" {result.rps:.0f} rps, {result.errors} errors; RSS {samples[0][1]:.1f} MiB at start,"
        f" {base:.1f} after minute 1, {samples[-1][1]:.1f} at the end:"
        f" growth {growth:+.1%}  {'PASS' if passed else 'FAIL'} (< 5%, no errors)"
    )
    return {
        "seconds": seconds,
        "concurrency": concurrency,
        "rps": result.rps,
        "errors": result.errors,
        "samples_mib": samples,
        "rss_after_minute_1_mib": base,
        "rss_end_mib": samples[-1][1],
        "growth": growth,
        "verdict": "PASS" if passed else "FAIL",
    }


# --- the run ----------------------------------------------------------------------------


async def bench(mode: Mode, args: argparse.Namespace) -> dict[str, Any]:
    wrk = ensure_wrk()
    open_files = raise_open_files_limit()
    args.floor_server, args.floor_client = floor_layers(args.floor_server, args.floor_client)
    operations = [OPERATIONS[name] for name in args.operations]
    started_at = datetime.now(UTC)
    print(
        f"issue-10 bench, {mode.name} mode: latencies {list(mode.latencies_ms)} ms,"
        f" c={list(mode.concurrencies)}, {mode.rounds} rounds x {mode.duration_s:g} s"
        f" (+{mode.warmup_s:g} s warm-up) per target and cell; floor on {args.floor_server}"
        f" + {args.floor_client}; {os.cpu_count()} CPUs",
        flush=True,
    )
    measurements: list[Measurement] = []
    memory: dict[str, Any] = {}
    ports = find_free_ports(len(SERVICE_NAMES))
    service_ports = {name: [port] for name, port in zip(SERVICE_NAMES, ports, strict=True)}
    with (
        tempfile.TemporaryDirectory(prefix="switchyard-bench-") as tmp,
        DemoPlatform(ports=service_ports) as platform,
        started_targets(platform, args, Path(tmp)) as targets,
    ):
        async with AdminClient() as admin:
            backends = Backends(platform, admin)
            ctx = Context(
                wrk, backends, Path(tmp), mode.warmup_s, mode.duration_s, args.wrk_timeout
            )
            if args.debug_header:
                ctx.headers["X-Switchyard-Debug"] = "1"
            for latency in mode.latencies_ms:
                await backends.set_latency(latency)
                for operation in operations:
                    for concurrency in mode.concurrencies:
                        for round_ in range(mode.rounds):
                            for name in TARGETS:
                                m = await measure(
                                    ctx, targets[name], operation, concurrency, latency, round_
                                )
                                measurements.append(m)
                                save_partial(mode, measurements)
                                print(
                                    f"  {latency:>4g} ms {operation.name:<6} c={concurrency:<3}"
                                    f" round {round_ + 1} {name:<8} {m.rps:8.1f} rps"
                                    f"  p50 {num(m.p50_ms, 7, 1)} ms  p99 {num(m.p99_ms, 7, 1)} ms"
                                    f"  errors {m.errors:<4}"
                                    f" CPU {num(m.cpu_ms_per_request, 6, 2)} ms"
                                    f"  calls {m.calls_per_request:5.2f}"
                                    f"  host CPU {m.host_busy:4.0%}",
                                    flush=True,
                                )
            await backends.set_latency(0)
            rows = summarize(measurements)
            print_table(rows)
            found = checks(rows, mode)
            print_checks(found)
            if mode.memory:
                memory["idle_and_active"] = await memory_idle_and_active(
                    ctx, targets["gateway"], args.idle, 64, mode.duration_s
                )
                if mode.soak_s > 0:
                    memory["soak"] = await soak(ctx, targets["gateway"], mode.soak_s, 16)
                await backends.reset()
            await backends.aclose()
    return {
        "mode": asdict(mode),
        "started": started_at.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": host.platform(),
            "open_files_limit": open_files,
        },
        "floor": {"server": args.floor_server, "client": args.floor_client},
        "operations": {op.name: op.payload for op in operations},
        "measurements": [asdict(m) for m in measurements],
        "rows": rows,
        "checks": found,
        "memory": memory,
    }


def save_partial(mode: Mode, measurements: Sequence[Measurement]) -> None:
    """The measurements so far (bench/out/partial-<mode>.json), should the run not finish."""
    OUT_DIR.mkdir(exist_ok=True)
    path = OUT_DIR / f"partial-{mode.name}.json"
    path.write_text(json.dumps([asdict(m) for m in measurements], indent=1))


def write_json(result: dict[str, Any], mode: Mode) -> Path:
    OUT_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = OUT_DIR / f"bench-{mode.name}-{stamp}.json"
    text = json.dumps(result, indent=1)
    path.write_text(text)
    (OUT_DIR / f"latest-{mode.name}.json").write_text(text)
    (OUT_DIR / f"partial-{mode.name}.json").unlink(missing_ok=True)
    return path


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--quick", action="store_true", help="latency 0, c=16 (the default)")
    which.add_argument("--full", action="store_true", help="latency 0 and 10 ms, c=1/16/64")
    parser.add_argument("--operations", nargs="+", choices=list(OPERATIONS), default=[*OPERATIONS])
    parser.add_argument("--rounds", type=int, help="rounds per cell (A B A B)")
    parser.add_argument("--duration", type=float, help="seconds measured per target and cell")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up per target and cell")
    parser.add_argument("--concurrency", type=int, nargs="+", help="overrides the mode's")
    parser.add_argument("--latency", type=float, nargs="+", help="ms; overrides the mode's")
    parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--soak", type=float, help="seconds of the soak (full mode: 300)")
    parser.add_argument("--idle", type=int, default=1000, help="idle keep-alive connections")
    parser.add_argument("--wrk-timeout", type=float, default=5.0, help="seconds")
    parser.add_argument("--floor-server", default="uvicorn", help="uvicorn, uvicorn-h11, granian")
    parser.add_argument("--floor-client", default="aiohttp", help="aiohttp, httpx-aiohttp, httpx")
    parser.add_argument(
        "--debug-header", action="store_true", help="send X-Switchyard-Debug: 1 with the load"
    )
    args = parser.parse_args(argv)
    mode = FULL if args.full else QUICK
    mode = Mode(
        mode.name,
        tuple(args.latency) if args.latency else mode.latencies_ms,
        tuple(args.concurrency) if args.concurrency else mode.concurrencies,
        rounds=args.rounds or mode.rounds,
        warmup_s=args.warmup if args.warmup is not None else mode.warmup_s,
        duration_s=args.duration or mode.duration_s,
        memory=mode.memory if args.memory is None else args.memory,
        soak_s=args.soak if args.soak is not None else (mode.soak_s or 60.0),
    )
    result = asyncio.run(bench(mode, args))
    print(f"\nJSON: {write_json(result, mode)}")


if __name__ == "__main__":
    main()
