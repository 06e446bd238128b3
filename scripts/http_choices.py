"""The HTTP client under httpx and the HTTP server, compared on the small query with wrk.

    .venv/bin/python scripts/http_choices.py [--seconds 10] [--rounds 2] [--concurrency 16 64]
        [--baseline DIR] [--only NAME ...]

Starts the demo platform and one gateway per variant on free loopback ports
(auth on: an API key; cost analysis and budgets off; production mode), then
loads ``query { user(id: "1") { name } }`` with wrk against each variant in
turn, A B A B, and prints rps, p99, errors and the gateway's CPU per request.
``--baseline DIR`` adds the gateway of another checkout (``git worktree add
DIR COMMIT``), served from there: the code before a change.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fanout import BENCH_KEY, auth_toml  # noqa: E402
from bench.harness import cpu_seconds, gateway_toml  # noqa: E402
from services.launcher import DemoPlatform, find_free_ports  # noqa: E402
from services.registry import SERVICE_NAMES  # noqa: E402

QUERY = 'query { user(id: "1") { name } }'
WORKER_APP = "switchyard.cli:app_from_environment"
_ESCAPED = QUERY.replace('"', '\\"')
LUA = f"""
wrk.method = "POST"
wrk.body = [[{{"query": "{_ESCAPED}"}}]]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Api-Key"] = "{BENCH_KEY}"
"""


@dataclass(frozen=True)
class Variant:
    name: str
    server: str  # "serve", "uvicorn-h11" or "granian"
    http_transport: str | None = "aiohttp"  # None: the checkout's own (the baseline)
    checkout: Path = ROOT


@dataclass
class Run:
    rps: float
    p99_ms: float
    errors: int
    cpu_ms: float


@dataclass
class Cell:
    runs: list[Run] = field(default_factory=list)

    def mean(self, attribute: str) -> float:
        return statistics.fmean(getattr(run, attribute) for run in self.runs)

    def spread(self, attribute: str) -> str:
        values = [getattr(run, attribute) for run in self.runs]
        return "/".join(f"{v:.0f}" if v >= 10 else f"{v:.2f}" for v in values)


def config_text(variant: Variant, addresses: dict[str, list[str]], port: int) -> str:
    text = gateway_toml(addresses, port, extra=auth_toml() + '[cost]\nmode = "off"\n', debug=False)
    if variant.http_transport is not None:
        line = f'http_transport = "{variant.http_transport}"'
        text = re.sub(r'(kind = "(rest|xml)")', rf"\1\n{line}", text)
    return text


def command(variant: Variant, config: Path, port: int) -> list[str]:
    python = sys.executable
    if variant.server == "serve":
        return [python, "-m", "switchyard.cli", "serve", "--config", str(config)]
    if variant.server == "uvicorn-h11":
        return [
            *(python, "-m", "uvicorn", "--factory", WORKER_APP, "--port", str(port)),
            *("--loop", "asyncio", "--http", "h11", "--no-access-log", "--log-level", "warning"),
        ]
    if variant.server == "granian":
        return [
            *(python, "-m", "granian", "--interface", "asgi", "--factory", "--port", str(port)),
            *("--loop", "uvloop", "--http", "1", "--no-ws", "--workers", "1"),
            *("--log-level", "warning", WORKER_APP),
        ]
    raise ValueError(variant.server)


@contextmanager
def gateway(variant: Variant, addresses: dict[str, list[str]], port: int) -> Iterator[int]:
    """The variant's gateway process, ready; yields the pid that serves (granian: its worker)."""
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as handle:
        handle.write(config_text(variant, addresses, port))
    env = {**os.environ, "SWITCHYARD_CONFIG": handle.name, "PYTHONPATH": str(variant.checkout)}
    # Timeouts under load are logged as warnings: counted by wrk, not printed here.
    process = subprocess.Popen(
        command(variant, Path(handle.name), port),
        cwd=variant.checkout,
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_healthy(process, port)
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        yield int(children[0]) if variant.server == "granian" and children else process.pid
    finally:
        process.terminate()
        process.wait(20)
        os.unlink(handle.name)


def wait_healthy(process: subprocess.Popen[bytes], port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200:
                answer = httpx.post(
                    f"http://127.0.0.1:{port}/graphql",
                    json={"query": QUERY},
                    headers={"X-Api-Key": BENCH_KEY},
                ).json()
                if answer.get("errors") or not answer.get("data"):
                    raise RuntimeError(f"the query fails: {answer}")
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("gateway did not start")


def wrk(port: int, concurrency: int, seconds: float, lua: Path) -> tuple[int, float, float, int]:
    """Requests completed, rps, p99 (ms) and errors (socket errors and non-2xx)."""
    out = subprocess.run(
        [
            *("wrk", "-t2", f"-c{concurrency}", f"-d{seconds:.0f}s", "--latency", "-s", str(lua)),
            f"http://127.0.0.1:{port}/graphql",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return requests, rps, p99, errors + (int(non_2xx.group(1)) if non_2xx else 0)


def measure(
    variants: Sequence[Variant], concurrencies: Sequence[int], seconds: float, rounds: int
) -> dict[tuple[str, int], Cell]:
    ports = find_free_ports(len(SERVICE_NAMES) + len(variants))
    service_ports = {name: [port] for name, port in zip(SERVICE_NAMES, ports, strict=False)}
    gateway_ports = dict(zip((v.name for v in variants), ports[len(SERVICE_NAMES) :], strict=True))
    cells: dict[tuple[str, int], Cell] = {}
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        lua = Path(folder) / "post.lua"
        lua.write_text(LUA)
        platform = stack.enter_context(DemoPlatform(ports=service_ports))
        pids = {
            v.name: stack.enter_context(gateway(v, platform.addresses, gateway_ports[v.name]))
            for v in variants
        }
        for concurrency in concurrencies:
            for round_number in range(rounds):
                for variant in variants:  # A B A B: the machine's drift hits every variant
                    port = gateway_ports[variant.name]
                    wrk(port, concurrency, min(2.0, seconds), lua)  # warm-up: pools filled
                    before = cpu_seconds(pids[variant.name])
                    requests, rps, p99, errors = wrk(port, concurrency, seconds, lua)
                    cpu = cpu_seconds(pids[variant.name]) - before
                    run = Run(rps, p99, errors, cpu / max(1, requests) * 1000)
                    cells.setdefault((variant.name, concurrency), Cell()).runs.append(run)
                    print(
                        f"c={concurrency:<3} round {round_number + 1} {variant.name:<24} "
                        f"{rps:8.0f} rps  p99 {p99:8.1f} ms  errors {errors:5d}  "
                        f"CPU {run.cpu_ms:6.2f} ms/req",
                        flush=True,
                    )
    return cells


def report(
    cells: dict[tuple[str, int], Cell], variants: Sequence[Variant], concurrencies: Sequence[int]
) -> None:
    reference = variants[0].name
    print(f"\nmeans over rounds (each round's figures after them); ratios to {reference}")
    print("| variant | c | rps | p99 ms | errors | CPU ms/req | rps ratio | CPU ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for concurrency in concurrencies:
        base = cells[(reference, concurrency)]
        for variant in variants:
            cell = cells[(variant.name, concurrency)]
            print(
                f"| {variant.name} | {concurrency} "
                f"| {cell.mean('rps'):.0f} ({cell.spread('rps')}) "
                f"| {cell.mean('p99_ms'):.0f} ({cell.spread('p99_ms')}) "
                f"| {sum(r.errors for r in cell.runs)} "
                f"| {cell.mean('cpu_ms'):.2f} ({cell.spread('cpu_ms')}) "
                f"| {cell.mean('rps') / base.mean('rps'):.2f} "
                f"| {cell.mean('cpu_ms') / base.mean('cpu_ms'):.2f} |"
            )


VARIANTS = {
    "httpcore": Variant("httpcore", "serve", "httpcore"),
    "aiohttp": Variant("aiohttp", "serve", "aiohttp"),
    "aiohttp+uvicorn-h11": Variant("aiohttp+uvicorn-h11", "uvicorn-h11", "aiohttp"),
    "aiohttp+granian": Variant("aiohttp+granian", "granian", "aiohttp"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout's folder")
    parser.add_argument("--only", nargs="+", choices=sorted(VARIANTS), default=sorted(VARIANTS))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    variants = [VARIANTS[name] for name in VARIANTS if name in args.only]
    if args.baseline is not None:
        variants.insert(0, Variant("baseline", "serve", None, args.baseline.resolve()))
    cells = measure(variants, args.concurrency, args.seconds, args.rounds)
    report(cells, variants, args.concurrency)


if __name__ == "__main__":
    main()
