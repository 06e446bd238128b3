"""The ``switchyard`` command line.

    switchyard serve [--config FILE] [--graph MOD:ATTR] [--workers N]   the gateway
    switchyard demo                        the demo platform and its gateway (from a checkout)
    switchyard schema [--graph MOD:ATTR]   print a graph's SDL
    switchyard cost FILE [--variables J]   the cost of an operation, field by field
    switchyard documents FILE...           a trusted-documents manifest, with each one's cost
    switchyard config check FILE           validate a config file and the graph it names
    switchyard ide fetch [--dest DIR]      put GraphiQL's assets where the gateway serves them
    switchyard token --sub 42 [--scope S]  a token signed with the config's dev key

The config is ``--config``, else ``$SWITCHYARD_CONFIG``, else ``switchyard.toml``
in the current folder. ``SWITCHYARD_HOST``, ``SWITCHYARD_PORT`` and
``SWITCHYARD_GRAPH`` are the defaults of ``--host``, ``--port`` and ``--graph``,
like uvicorn's.

``serve`` runs uvicorn on uvloop and httptools when they are installed (they are
dependencies). With ``--workers N`` each of N worker processes builds its own
app from ``app_from_environment`` (``$SWITCHYARD_CONFIG``, ``$SWITCHYARD_GRAPH``),
sharing one listening socket.
"""

from __future__ import annotations

import argparse
import errno
import importlib.util
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from switchyard import __version__
from switchyard.config import ConfigError, GatewayConfig, load_config
from switchyard.graph import Graph, GraphLoadError, load_graph
from switchyard.persisted import ManifestError

if TYPE_CHECKING:
    from starlette.applications import Starlette

DEFAULT_CONFIG = Path("switchyard.toml")
WORKER_APP = "switchyard.cli:app_from_environment"
"""The app factory each worker of ``serve --workers N`` imports."""
DEMO_MODULE = "services.demo"
"""What ``switchyard demo`` runs, from the checkout that holds the demo."""


class CommandError(Exception):
    """A command that cannot go on; the message is the one line the user sees."""


def _env(name: str) -> str | None:
    return os.environ.get(f"SWITCHYARD_{name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchyard", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"switchyard {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def config_option(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--config",
            type=Path,
            default=None,
            help="default: $SWITCHYARD_CONFIG or switchyard.toml",
        )

    def graph_option(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--graph", default=_env("GRAPH"), help='"module:attribute"; overrides [graph] module'
        )

    serve = commands.add_parser("serve", help="run the gateway")
    config_option(serve)
    graph_option(serve)
    serve.add_argument("--host", default=_env("HOST"), help="overrides [server] host")
    serve.add_argument("--port", type=int, default=_env("PORT"), help="overrides [server] port")
    serve.add_argument(
        "--dev", action="store_true", help="allow JWT keys marked dev = true (never in production)"
    )
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="worker processes on one socket (in-process state is per worker); default 1",
    )

    demo = commands.add_parser(
        "demo", help="run the demo services and a gateway over them (from a Switchyard checkout)"
    )
    demo.add_argument("--project", type=Path, default=Path.cwd(), help="the checkout's folder")

    schema = commands.add_parser("schema", help="print a graph's schema (SDL)")
    config_option(schema)
    graph_option(schema)

    cost = commands.add_parser("cost", help="print the cost of an operation, field by field")
    config_option(cost)
    graph_option(cost)
    cost.add_argument("file", help="a file holding the operation, or - for standard input")
    cost.add_argument("--variables", default="{}", help="the operation's variables as JSON")
    cost.add_argument("--operation", default=None, help="which operation of the document")

    documents = commands.add_parser(
        "documents", help="build a trusted-documents manifest from .graphql files"
    )
    config_option(documents)
    graph_option(documents)
    documents.add_argument("files", nargs="+", type=Path, help=".graphql files")
    documents.add_argument(
        "--output", "-o", type=Path, default=None, help="write the manifest here (default: stdout)"
    )
    documents.add_argument(
        "--format", choices=["apollo", "relay"], default="apollo", help="the manifest's format"
    )

    config = commands.add_parser("config", help="config file tools")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = config_commands.add_parser("check", help="validate a config file and its graph")
    check.add_argument("file", type=Path)
    graph_option(check)

    ide_parser = commands.add_parser("ide", help="GraphiQL assets")
    ide_commands = ide_parser.add_subparsers(dest="ide_command", required=True, metavar="ACTION")
    fetch = ide_commands.add_parser("fetch", help="download pinned GraphiQL assets from npm")
    fetch.add_argument("--dest", type=Path, default=None)

    token = commands.add_parser("token", help="print a token signed with the config's dev key")
    config_option(token)
    token.add_argument("--sub", required=True, help="the user id the token names")
    token.add_argument("--scope", action="append", default=[], help="a scope (repeatable)")
    token.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, passed_on = parser.parse_known_args(argv)
    if args.command != "demo" and passed_on:
        parser.error(f"unrecognized arguments: {' '.join(passed_on)}")
    # The demo's own options (--port, --services-port, --seed) are its launcher's.
    args.rest = passed_on
    try:
        return _run(args)
    except (ConfigError, GraphLoadError, CommandError, ManifestError) as exc:
        print(f"switchyard: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    command = args.command
    if command == "serve":
        config = _config(args.config)
        overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
        if overrides:
            config = config.model_copy(
                update={"server": config.server.model_copy(update=overrides)}
            )
        graph = graph_for(config, args.graph)
        if args.workers == 1:
            return serve(config, graph, dev=args.dev)
        return serve_workers(
            config, _config_path(args.config), args.graph, args.workers, dev=args.dev
        )
    if command == "demo":
        return run_demo(args.project, args.rest)
    if command == "schema":
        print(graph_for(_config(args.config, required=False), args.graph).schema.as_str())
        return 0
    if command == "cost":
        config = _config(args.config, required=False)
        return print_cost(
            graph_for(config, args.graph), config, args.file, args.variables, args.operation
        )
    if command == "documents":
        config = _config(args.config, required=False)
        return print_documents(
            graph_for(config, args.graph), config, args.files, args.output, args.format
        )
    if command == "config":
        return check_config(args.file, args.graph)
    if command == "token":
        return print_token(_config(args.config), args.config, args.sub, args.scope, args.ttl)
    if command == "ide":
        from switchyard import ide

        return ide.fetch_command(args.dest)
    raise AssertionError(f"unhandled command {command}")


def check_config(path: Path, graph_reference: str | None) -> int:
    """``switchyard config check``: the file, the graph it names, and the upstreams it needs."""
    config = load_config(path)
    try:
        graph = graph_for(config, graph_reference)
        graph.check(config.upstreams)
    except (GraphLoadError, CommandError) as exc:
        raise CommandError(f"{path}: {exc}") from None
    count = len(config.upstreams)
    names = ", ".join(graph.upstreams) or "none"
    print(f"{path}: ok ({count} upstream{'' if count == 1 else 's'}: {names})")
    return 0


def _config_path(given: Path | None) -> Path:
    return given or Path(_env("CONFIG") or DEFAULT_CONFIG)


def _config(given: Path | None, *, required: bool = True) -> GatewayConfig:
    path = _config_path(given)
    if not required and given is None and not path.exists():
        return GatewayConfig()
    return load_config(path)


def graph_for(config: GatewayConfig, reference: str | None) -> Graph:
    """The graph ``--graph`` names, else the config's ``[graph] module``."""
    reference = reference or config.graph.module
    if reference is None:
        raise CommandError(
            'no graph: set [graph] module = "package.module:graph" in the config, or --graph'
        )
    return load_graph(reference, base_dir=config.source_dir or Path.cwd())


def print_token(
    config: GatewayConfig, config_file: Path | None, subject: str, scopes: list[str], ttl: int
) -> int:
    """Print a token for ``subject``; exit 2 unless the config has a key marked ``dev = true``."""
    from switchyard.auth.dev_tokens import NoDevKey, mint_dev_token

    if ttl <= 0:
        raise CommandError("--ttl must be a positive number of seconds")
    try:
        token = mint_dev_token(config.auth.jwt, subject=subject, scopes=scopes, ttl=ttl)
    except NoDevKey as exc:
        raise CommandError(f"{_config_path(config_file)}: {exc}") from None
    print(token)
    return 0


def print_cost(
    graph: Graph, config: GatewayConfig, source: str, variables_json: str, operation: str | None
) -> int:
    """``switchyard cost FILE``: the static estimate of an operation against the graph."""
    import orjson
    from graphql import GraphQLError, parse

    from switchyard.cost import CostError, CostModel, estimate_cost, explain

    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        variables = orjson.loads(variables_json)
        model = CostModel.from_strawberry(
            graph.schema, default_list_size=config.cost.default_list_size
        )
        report = estimate_cost(model, graph.schema._schema, parse(text), variables, operation)
    except (OSError, orjson.JSONDecodeError, GraphQLError, CostError) as exc:
        raise CommandError(str(exc).splitlines()[0]) from None
    print(explain(report))
    return 0


def print_documents(
    graph: Graph, config: GatewayConfig, files: list[Path], output: Path | None, form: str
) -> int:
    """``switchyard documents FILE...``: one trusted document per operation, validated, and
    each one's cost; the manifest goes to ``output`` (else stdout, the costs then to stderr)."""
    import orjson

    from switchyard.cost import CostModel
    from switchyard.persisted import ManifestError, apollo_manifest, build_documents

    model = CostModel.from_strawberry(graph.schema, default_list_size=config.cost.default_list_size)
    try:
        built = build_documents(files, graph.schema._schema, cost_model=model)
    except ManifestError as exc:
        raise CommandError(str(exc).splitlines()[0]) from None
    documents = [b.document for b in built]
    manifest = (
        apollo_manifest(documents)
        if form == "apollo"
        else {document.id: document.body for document in documents}
    )
    encoded = orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n"
    report = sys.stdout if output is not None else sys.stderr
    for entry in built:
        name = entry.document.name or "(anonymous)"
        cost = "-" if entry.cost is None else str(entry.cost)
        print(f"{name:<28} cost {cost:>5}  sha256:{entry.document.id}", file=report)
    if output is not None:
        output.write_bytes(encoded)
        print(f"{len(built)} documents written to {output}", file=report)
    else:
        sys.stdout.write(encoded.decode())
    return 0


def serve(config: GatewayConfig, graph: Graph, *, dev: bool = False) -> int:
    """Run the gateway under uvicorn, in this process, until SIGINT/SIGTERM.

    On SIGTERM it stops accepting, finishes the requests in flight within
    ``[server] shutdown_grace`` seconds, then closes its upstream connections.
    """
    import uvicorn

    from switchyard.app import create_app
    from switchyard.logs import configure_logging

    _refuse_dev_keys(config, dev)
    app = create_app(config, graph)
    check_port_free(config.server.host, config.server.port)
    configure_logging(config.server.log_level)
    server = uvicorn.Server(uvicorn.Config(app, **uvicorn_options(config)))
    # uvicorn re-raises the signal that stopped it once it has shut down; turning
    # SIGTERM into KeyboardInterrupt lets callers (the demo) clean up and exit 0.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0 if server.started else 1


def serve_workers(
    config: GatewayConfig,
    config_file: Path,
    graph_reference: str | None,
    workers: int,
    *,
    dev: bool = False,
) -> int:
    """Run ``workers`` uvicorn processes on one socket; each builds its app from the config file.

    ``config`` (the file with the command line's overrides) was checked here; the
    workers read the same file, told its path and the graph by the environment.
    """
    import uvicorn

    _refuse_dev_keys(config, dev)
    check_port_free(config.server.host, config.server.port)
    os.environ["SWITCHYARD_CONFIG"] = str(config_file.resolve())
    if graph_reference is not None:
        os.environ["SWITCHYARD_GRAPH"] = graph_reference
    metrics_dir = None
    if config.metrics.enabled and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Each worker keeps its metrics in files there; any worker's /metrics sums them all.
        metrics_dir = tempfile.mkdtemp(prefix="switchyard-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    # uvicorn's supervisor stops the workers on SIGINT/SIGTERM and restarts one that dies.
    try:
        uvicorn.run(WORKER_APP, factory=True, workers=workers, **uvicorn_options(config))
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def app_from_environment() -> Starlette:
    """The app of one ``serve --workers`` worker: ``$SWITCHYARD_CONFIG`` serving
    ``$SWITCHYARD_GRAPH`` (else the config's ``[graph] module``)."""
    from switchyard.app import create_app
    from switchyard.logs import configure_logging

    config = _config(None)
    configure_logging(config.server.log_level)
    return create_app(config, graph_for(config, _env("GRAPH")))


def uvicorn_options(config: GatewayConfig) -> dict[str, Any]:
    """uvicorn's settings for the gateway: uvloop and httptools when importable."""
    return {
        "host": config.server.host,
        "port": config.server.port,
        "loop": "uvloop" if _importable("uvloop") else "asyncio",
        "http": "httptools" if _importable("httptools") else "h11",
        "log_level": config.server.log_level,
        "lifespan": "on",
        "access_log": False,
        # The peer stays the TCP peer: only [budgets] trusted_proxies decides whose
        # X-Forwarded-For is believed (uvicorn would trust loopback's by default).
        "proxy_headers": False,
        # On SIGTERM uvicorn stops accepting, lets requests in flight finish for up to
        # this long, cancels what is left, then runs the lifespan's shutdown (which
        # closes the upstream connections).
        "timeout_graceful_shutdown": config.server.shutdown_grace,
        "timeout_keep_alive": config.server.keep_alive,
    }


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _refuse_dev_keys(config: GatewayConfig, dev: bool) -> None:
    dev_keys = [key.kid for key in config.auth.jwt.keys if key.dev]
    if dev_keys and not dev:
        raise CommandError(
            f"auth.jwt.keys: {dev_keys[0]!r} is marked dev = true (anyone can sign with it); "
            "remove it, or pass --dev for development"
        )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def check_port_free(host: str, port: int) -> None:
    """Raise ``CommandError`` in one line when ``host:port`` cannot be listened on."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise CommandError(f"port {port} on {host} is already in use") from None
            raise CommandError(f"cannot listen on {host}:{port} ({exc.strerror})") from None


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_demo(project: Path, arguments: Sequence[str]) -> int:
    """Hand over to the checkout's demo launcher: the runtime does not ship the demo."""
    if not (project / "services" / "demo.py").is_file():
        raise CommandError(
            f"no demo in {project.resolve()}: run `switchyard demo` from a Switchyard checkout "
            "(or pass --project DIR)"
        )
    os.chdir(project)
    command = [sys.executable, "-m", DEMO_MODULE, *arguments]
    os.execv(sys.executable, command)
    return 0  # pragma: no cover


if __name__ == "__main__":
    raise SystemExit(main())
