"""Run one demo service in this process.

    python -m services.run NAME --port P [--host 127.0.0.1] [--seed 42]
        [--users N --products N --orders N --reviews N]
        [--latency-ms X --jitter-ms Y --error-rate Z] [--parent-pid PID]

With ``--parent-pid`` the service exits as soon as that process is gone, so a crashed
launcher leaves no orphans.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from services.data import DEFAULT_SEED, DataSizes, DemoData
from services.faults import FaultConfig
from services.registry import SERVICE_NAMES, get_spec

DEFAULT_HOST = "127.0.0.1"
PARENT_POLL_INTERVAL_S = 0.2
SHUTDOWN_GRACE_S = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceConfig:
    """Everything one service process needs, resolved once at start."""

    name: str
    port: int
    host: str = DEFAULT_HOST
    seed: int = DEFAULT_SEED
    sizes: DataSizes = field(default_factory=DataSizes)
    faults: FaultConfig = field(default_factory=FaultConfig)
    parent_pid: int | None = None


def parse_args(argv: Sequence[str] | None = None) -> ServiceConfig:
    parser = argparse.ArgumentParser(prog="python -m services.run", description=__doc__)
    parser.add_argument("name", choices=SERVICE_NAMES)
    parser.add_argument("--port", type=int, help="default: the service's demo port")
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    defaults = DataSizes()
    for size in ("users", "products", "orders", "reviews"):
        parser.add_argument(f"--{size}", type=int, default=getattr(defaults, size))
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--fault-seed", type=int, default=0)
    parser.add_argument("--parent-pid", type=int)
    args = parser.parse_args(argv)
    try:
        return ServiceConfig(
            name=args.name,
            port=args.port if args.port is not None else get_spec(args.name).default_port,
            host=args.host,
            seed=args.seed,
            sizes=DataSizes(
                users=args.users, products=args.products, orders=args.orders, reviews=args.reviews
            ),
            faults=FaultConfig(
                latency_ms=args.latency_ms,
                jitter_ms=args.jitter_ms,
                error_rate=args.error_rate,
                seed=args.fault_seed,
            ),
            parent_pid=args.parent_pid,
        )
    except ValueError as exc:
        parser.error(str(exc))


async def _exit_when_orphaned(parent_pid: int) -> None:
    # Polling works on every platform and, unlike PR_SET_PDEATHSIG, does not depend on
    # which thread of the parent spawned us.
    while True:
        await asyncio.sleep(PARENT_POLL_INTERVAL_S)
        if os.getppid() != parent_pid:
            break
    # The parent is gone: nobody will read our state, so skip graceful shutdown.
    os._exit(0)


async def _serve_rest(config: ServiceConfig, data: DemoData) -> None:
    import uvicorn

    module = importlib.import_module(get_spec(config.name).module)
    app = module.create_app(data, faults=config.faults)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=int(SHUTDOWN_GRACE_S),
        )
    )
    await server.serve()


async def _serve_grpc(config: ServiceConfig, data: DemoData) -> None:
    module = importlib.import_module(get_spec(config.name).module)
    server = await module.create_server(data, faults=config.faults)
    address = f"{config.host}:{config.port}"
    try:
        server.add_insecure_port(address)
    except RuntimeError as exc:
        raise SystemExit(
            f"{config.name}: cannot listen on {address}, the port is probably in use ({exc})"
        ) from None
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.stop(SHUTDOWN_GRACE_S)


async def serve(config: ServiceConfig) -> None:
    """Generate the data and serve until SIGINT / SIGTERM (or the parent's death)."""
    data = DemoData.from_sizes(config.seed, config.sizes)
    watchdog = None
    if config.parent_pid is not None:
        watchdog = asyncio.create_task(_exit_when_orphaned(config.parent_pid))
    try:
        if get_spec(config.name).kind == "rest":
            await _serve_rest(config, data)
        else:
            await _serve_grpc(config, data)
    finally:
        if watchdog is not None:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m services.run``."""
    config = parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
