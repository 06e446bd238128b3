"""Start and stop the demo services, each in its own process.

    with DemoPlatform(ports={"accounts": [7101], "catalog": [7104]}) as platform:
        platform.addresses  # {"accounts": ["http://127.0.0.1:7101"], "catalog": ["127.0.0.1:7104"]}
        platform.stop_service("accounts")
        platform.start_service("accounts")  # same ports again

Instance ``k`` of a service listens on its base port + 10 * k (accounts 7001, orders 7002,
reviews 7003, catalog 7004, inventory 7005, shipping 7006 by default). Every child gets
``--parent-pid`` and exits on its own when this process is gone, even after a crash.

From a shell: ``python -m services.launcher`` (or ``python -m services``) runs all six
until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Self

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.admin import ServiceEndpoint
from services.data import DEFAULT_SEED, DataSizes
from services.faults import FaultConfig
from services.registry import SERVICE_NAMES, ServiceSpec, get_spec

DEFAULT_HOST = "127.0.0.1"
DEFAULT_STARTUP_TIMEOUT_S = 15.0
DEFAULT_STOP_GRACE_S = 3.0
INSTANCE_PORT_STRIDE = 10
PROBE_INTERVAL_S = 0.02
PROBE_TIMEOUT_S = 0.5
STDERR_TAIL_BYTES = 2000
PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Exceptions:
#   PlatformError
#   ├── ServiceStartError   (a child died at start or never became ready)
#   │   └── PortInUseError  (its port was taken before it started)


class PlatformError(Exception):
    """Base of the launcher's errors."""


class ServiceStartError(PlatformError):
    """A service process did not become ready; the message carries its output tail."""


class PortInUseError(ServiceStartError):
    """A service's port is already taken."""


def find_free_ports(n: int, host: str = DEFAULT_HOST) -> list[int]:
    """``n`` distinct ports that were free on ``host`` a moment ago (for tests)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(n)]
        for sock in sockets:
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in sockets]


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        # Same option as the servers, so a port in TIME_WAIT counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceOptions:
    """What every service process of a platform is started with."""

    host: str = DEFAULT_HOST
    seed: int = DEFAULT_SEED
    sizes: DataSizes = field(default_factory=DataSizes)
    faults: FaultConfig = field(default_factory=FaultConfig)


class ServiceProcess:
    """One instance of one service, as a child process that can be started again."""

    def __init__(
        self, spec: ServiceSpec, instance: int, port: int, options: ServiceOptions
    ) -> None:
        self.spec = spec
        self.instance = instance
        self.port = port
        self.options = options
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __repr__(self) -> str:
        return f"ServiceProcess({self.spec.name}#{self.instance}, {self.address}, pid={self.pid})"

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def address(self) -> str:
        hostport = f"{self.options.host}:{self.port}"
        return f"http://{hostport}" if self.spec.kind == "rest" else hostport

    @property
    def endpoint(self) -> ServiceEndpoint:
        return ServiceEndpoint(self.spec.kind, self.address)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        options, sizes, faults = self.options, self.options.sizes, self.options.faults
        return [
            sys.executable, "-m", "services.run", self.spec.name,
            "--host", options.host, "--port", str(self.port), "--seed", str(options.seed),
            "--users", str(sizes.users), "--products", str(sizes.products),
            "--orders", str(sizes.orders), "--reviews", str(sizes.reviews),
            "--latency-ms", str(faults.latency_ms), "--jitter-ms", str(faults.jitter_ms),
            "--error-rate", str(faults.error_rate), "--fault-seed", str(faults.seed),
            "--parent-pid", str(os.getpid()),
        ]  # fmt: skip

    def start(self) -> None:
        """Spawn the process (without waiting for readiness); raises PortInUseError."""
        if self.running:
            return
        if not port_is_free(self.options.host, self.port):
            raise PortInUseError(
                f"{self.spec.name}#{self.instance}: port {self.port} on {self.options.host} "
                "is already in use"
            )
        self._close_log()
        # Kept open for the process's life and closed in _close_log; a file, not a pipe,
        # so a chatty child can never block on a full pipe.
        self._log = tempfile.TemporaryFile(prefix=f"switchyard-{self.spec.name}-")  # noqa: SIM115
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")])
        )
        self._process = subprocess.Popen(
            self.command(),
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # Own session: a terminal's Ctrl-C reaches the launcher, which stops children in order.
            start_new_session=True,
        )

    def wait_ready(self, deadline: float) -> None:
        """Block until the service answers its readiness probe, before ``deadline``
        (a ``time.monotonic()`` value); raises ServiceStartError with the output tail."""
        while True:
            if self._process is None or self._process.poll() is not None:
                code = None if self._process is None else self._process.returncode
                raise ServiceStartError(
                    f"{self.spec.name}#{self.instance} ({self.address}) exited at start "
                    f"with code {code}; output tail:\n{self.output_tail()}"
                )
            if self._probe():
                return
            if time.monotonic() > deadline:
                raise ServiceStartError(
                    f"{self.spec.name}#{self.instance} ({self.address}) not ready in time; "
                    f"output tail:\n{self.output_tail()}"
                )
            time.sleep(PROBE_INTERVAL_S)

    def _probe(self) -> bool:
        try:
            with socket.create_connection((self.options.host, self.port), PROBE_TIMEOUT_S):
                pass
        except OSError:
            return False
        if self.spec.kind == "rest":
            try:
                response = httpx.get(f"{self.address}/__admin/health", timeout=PROBE_TIMEOUT_S)
            except httpx.HTTPError:
                return False
            return response.status_code == 200
        with grpc.insecure_channel(self.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            request = health_pb2.HealthCheckRequest(service=self.spec.grpc_service or "")
            try:
                answer = stub.Check(request, timeout=PROBE_TIMEOUT_S)
            except grpc.RpcError:
                return False
            return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

    def stop(self, grace: float = DEFAULT_STOP_GRACE_S) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; returns once the process is reaped."""
        self.terminate()
        self.wait_stopped(time.monotonic() + grace)

    def terminate(self) -> None:
        if self.running:
            assert self._process is not None
            self._process.terminate()

    def wait_stopped(self, deadline: float) -> None:
        process = self._process
        if process is not None:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._close_log()

    def output_tail(self) -> str:
        if self._log is None:
            return ""
        self._log.flush()
        size = self._log.seek(0, os.SEEK_END)
        self._log.seek(max(0, size - STDERR_TAIL_BYTES))
        return self._log.read().decode("utf-8", "replace").strip()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


class DemoPlatform:
    """A set of demo service processes on loopback ports.

    ``services`` defaults to all six; ``instances`` is a count for all or per service;
    ``ports`` maps a service to one port per instance (or a base port), else the default
    base ports apply; ``faults`` sets per-service injected faults at start.
    """

    def __init__(
        self,
        services: Iterable[str] | None = None,
        *,
        instances: int | Mapping[str, int] = 1,
        ports: Mapping[str, int | Sequence[int]] | None = None,
        host: str = DEFAULT_HOST,
        seed: int = DEFAULT_SEED,
        sizes: DataSizes | None = None,
        faults: Mapping[str, FaultConfig] | None = None,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT_S,
        stop_grace: float = DEFAULT_STOP_GRACE_S,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.progress = progress
        names = list(SERVICE_NAMES if services is None else services)
        specs = [get_spec(name) for name in names]
        ports = dict(ports or {})
        unknown = set(ports) - set(names)
        if unknown:
            raise ValueError(f"ports given for services not started: {', '.join(sorted(unknown))}")
        faults = dict(faults or {})
        self.startup_timeout = startup_timeout
        self.stop_grace = stop_grace
        self._processes: dict[str, list[ServiceProcess]] = {}
        for spec in specs:
            count = instances if isinstance(instances, int) else instances.get(spec.name, 1)
            options = ServiceOptions(
                host=host,
                seed=seed,
                sizes=sizes or DataSizes(),
                faults=faults.get(spec.name, FaultConfig()),
            )
            service_ports = _instance_ports(spec, count, ports.get(spec.name))
            self._processes[spec.name] = [
                ServiceProcess(spec, k, port, options) for k, port in enumerate(service_ports)
            ]
        all_ports = [p.port for p in self.processes]
        if len(set(all_ports)) != len(all_ports):
            raise ValueError(f"two service instances share a port: {sorted(all_ports)}")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def processes(self) -> list[ServiceProcess]:
        return [p for group in self._processes.values() for p in group]

    @property
    def addresses(self) -> dict[str, list[str]]:
        """``{"accounts": ["http://127.0.0.1:7001"], "catalog": ["127.0.0.1:7004"], ...}``."""
        return {name: [p.address for p in group] for name, group in self._processes.items()}

    def endpoints(self, name: str) -> list[ServiceEndpoint]:
        """The admin endpoints of every instance of ``name``."""
        return [p.endpoint for p in self._group(name)]

    def endpoint(self, name: str, instance: int = 0) -> ServiceEndpoint:
        return self._group(name)[instance].endpoint

    def start(self) -> None:
        """Start every service and wait until all are ready; on failure stop them all."""
        self._start(self.processes)

    def stop(self) -> None:
        """Stop every service; returns once all children are reaped and ports released."""
        self._stop(self.processes)

    def start_service(self, name: str) -> None:
        """Start the instances of one service again on the same ports, and wait for them."""
        self._start(self._group(name))

    def stop_service(self, name: str) -> None:
        """Stop the instances of one service."""
        self._stop(self._group(name))

    def run_forever(self) -> int:
        """Start, print the addresses, serve until SIGINT/SIGTERM, stop. Returns an exit
        code: 0, or 1 when a service died on its own."""
        stopping = threading.Event()

        def request_stop(signum: int, frame: FrameType | None) -> None:
            stopping.set()

        previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            for name, addresses in self.addresses.items():
                print(f"{name:<10} {' '.join(addresses)}", flush=True)
            while not stopping.wait(0.5):
                dead = [p for p in self.processes if not p.running]
                if dead:
                    for p in dead:
                        print(f"{p.name} died; output tail:\n{p.output_tail()}", file=sys.stderr)
                    return 1
            return 0
        finally:
            self.stop()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _group(self, name: str) -> list[ServiceProcess]:
        try:
            return self._processes[name]
        except KeyError:
            raise ValueError(f"service {name!r} is not part of this platform") from None

    def _start(self, processes: list[ServiceProcess]) -> None:
        try:
            for process in processes:
                self._report(f"{process.name:<10} starting on {process.address}")
                process.start()
            deadline = time.monotonic() + self.startup_timeout
            for process in processes:
                process.wait_ready(deadline)
                self._report(f"{process.name:<10} ready")
        except BaseException:
            self._stop(processes)
            raise

    def _report(self, line: str) -> None:
        if self.progress is not None:
            self.progress(line)

    def dead(self) -> list[ServiceProcess]:
        """The instances that exited on their own since they were started."""
        return [p for p in self.processes if p.pid is not None and not p.running]

    def _stop(self, processes: list[ServiceProcess]) -> None:
        for process in processes:
            process.terminate()
        deadline = time.monotonic() + self.stop_grace
        for process in processes:
            process.wait_stopped(deadline)


def _instance_ports(spec: ServiceSpec, count: int, given: int | Sequence[int] | None) -> list[int]:
    if count < 1:
        raise ValueError(f"{spec.name}: instances must be at least 1")
    if given is None or isinstance(given, int):
        base = spec.default_port if given is None else given
        return [base + INSTANCE_PORT_STRIDE * k for k in range(count)]
    if len(given) != count:
        raise ValueError(f"{spec.name}: {len(given)} ports given for {count} instances")
    return list(given)


def _parse_port(item: str) -> tuple[str, int]:
    name, _, port = item.partition("=")
    if not port.isdigit():
        raise ValueError(f"--port expects NAME=PORT, got {item!r}")
    return name, int(port)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m services.launcher``: run the demo platform until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m services.launcher", description=__doc__)
    parser.add_argument("services", nargs="*", help=f"default: all of {', '.join(SERVICE_NAMES)}")
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument(
        "--port",
        action="append",
        default=[],
        metavar="NAME=PORT",
        help="base port of a service (instance k adds 10*k); repeatable",
    )
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    defaults = DataSizes()
    for size in ("users", "products", "orders", "reviews"):
        parser.add_argument(f"--{size}", type=int, default=getattr(defaults, size))
    args = parser.parse_args(argv)
    try:
        ports = dict(_parse_port(item) for item in args.port)
        platform = DemoPlatform(
            args.services or None,
            instances=args.instances,
            ports=ports,
            host=args.host,
            seed=args.seed,
            sizes=DataSizes(
                users=args.users, products=args.products, orders=args.orders, reviews=args.reviews
            ),
        )
    except ValueError as exc:
        parser.error(str(exc))
    try:
        return platform.run_forever()
    except PlatformError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
