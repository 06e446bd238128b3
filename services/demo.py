"""``switchyard demo`` (or ``python -m services.demo``): the demo services and a gateway over them.

    python -m services.demo [--host 127.0.0.1] [--port 8000] [--services-port 7001] [--seed 42]

Starts the six services as child processes (accounts on ``--services-port``,
the others on the following ports), reporting each as it starts and becomes
ready, then serves ``switchyard.toml``'s graph with the services' addresses
until Ctrl-C or SIGTERM. A service that dies is reported at once; a port in use
is one line naming it.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from services.data import DEFAULT_SEED
from services.launcher import DemoPlatform, PlatformError
from services.registry import SERVICE_NAMES
from switchyard.cli import CommandError, check_port_free, graph_for, serve
from switchyard.config import ConfigError, GatewayConfig, load_config
from switchyard.graph import GraphLoadError

CONFIG = Path(__file__).resolve().parent.parent / "switchyard.toml"
WATCH_INTERVAL_S = 0.5
BANNER = """
Switchyard demo is running.

  GraphiQL   http://{host}:{port}{path}   (opens on an example query, demo key and debug header set)
  API keys   X-Api-Key: demo-key-please-change        (orders:read, tier pro)
             X-Api-Key: demo-admin-key-please-change  (orders:read admin, tier service)
  A token    switchyard token --sub 42 --scope orders:read   (signed with the demo's dev key)
  Metrics    {metrics}   (Prometheus; one access-log line per request below)

Ctrl-C stops the gateway and every service.
"""


def demo_config(platform: DemoPlatform, host: str, port: int) -> GatewayConfig:
    """``switchyard.toml`` pointed at the running services."""
    base = load_config(CONFIG)
    upstreams = {
        name: settings.model_copy(update={"instances": platform.addresses[name]})
        for name, settings in base.upstreams.items()
    }
    return base.model_copy(
        update={
            "upstreams": upstreams,
            "server": base.server.model_copy(update={"host": host, "port": port}),
        }
    )


def metrics_url(config: GatewayConfig) -> str:
    """Where ``/metrics`` is served (the gateway's port unless ``[metrics] port`` says)."""
    metrics = config.metrics
    if not metrics.enabled:
        return "off ([metrics] enabled = false)"
    host = metrics.host or config.server.host
    return f"http://{host}:{metrics.port or config.server.port}{metrics.path}"


def watch(platform: DemoPlatform, stopping: threading.Event) -> None:
    """Report, once each, services that die while the demo runs."""
    reported: set[int] = set()
    while not stopping.wait(WATCH_INTERVAL_S):
        for process in platform.dead():
            if id(process) not in reported:
                reported.add(id(process))
                print(
                    f"demo: the {process.name} service died; its fields now answer errors. "
                    f"Its output:\n{process.output_tail()}",
                    file=sys.stderr,
                    flush=True,
                )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="switchyard demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--services-port", type=int, default=7001, help="port of the first service")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seed of the demo data")
    args = parser.parse_args(argv)

    def progress(line: str) -> None:
        print(f"  {line}", flush=True)

    ports = {name: args.services_port + offset for offset, name in enumerate(SERVICE_NAMES)}
    try:
        check_port_free(args.host, args.port)
        platform = DemoPlatform(seed=args.seed, ports=ports, progress=progress)
        print("Starting the demo services:", flush=True)
        with platform:
            config = demo_config(platform, args.host, args.port)
            graph = graph_for(config, None)
            print(
                BANNER.format(
                    host=args.host,
                    port=args.port,
                    path=config.server.graphql_path,
                    metrics=metrics_url(config),
                ),
                flush=True,
            )
            stopping = threading.Event()
            watcher = threading.Thread(target=watch, args=(platform, stopping), daemon=True)
            watcher.start()
            try:
                return serve(config, graph, dev=True)
            finally:
                stopping.set()
    except (PlatformError, CommandError, ConfigError, GraphLoadError, ValueError) as exc:
        print(f"switchyard demo: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
