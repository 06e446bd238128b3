"""The ``switchyard`` command line.

    switchyard demo [--port 8000]         five demo services + the gateway, GraphiQL in a browser
    switchyard serve --config FILE        the gateway alone
    switchyard services                   the demo services alone
    switchyard schema                     print the SDL
    switchyard cost FILE [--variables J]  the cost of an operation, field by field
    switchyard config check FILE          validate a config file
    switchyard ide fetch [--dest DIR]     put GraphiQL's assets where the gateway serves them
    switchyard token --sub 42 [--scope S]  a token signed with the config's dev key

Options that take a value can also be given as environment variables
(``SWITCHYARD_PORT``, ``SWITCHYARD_CONFIG``, ...), like uvicorn's.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from switchyard.config import DEMO_CONFIG, ConfigError, GatewayConfig, load_config
from upstreams.clients import DEMO_UPSTREAMS


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"SWITCHYARD_{name}", default)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchyard", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="run the demo services and the gateway")
    demo.add_argument("--host", default=_env("HOST", "127.0.0.1"))
    demo.add_argument("--port", type=int, default=int(_env("PORT", "8000") or 8000))
    demo.add_argument("--seed", type=int, default=42, help="seed of the demo data")
    demo.add_argument(
        "--services-port",
        type=int,
        default=7001,
        help="port of the first demo service; the others follow (default 7001-7005)",
    )

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument(
        "--config", type=Path, default=_env("CONFIG"), required=_env("CONFIG") is None
    )
    serve.add_argument("--host", default=_env("HOST"), help="overrides [server] host")
    serve.add_argument("--port", type=int, default=_env("PORT"), help="overrides [server] port")

    services = commands.add_parser("services", help="run the demo services alone")
    services.add_argument("--host", default="127.0.0.1")
    services.add_argument("--instances", type=int, default=1, help="instances per service")
    services.add_argument("--seed", type=int, default=42)
    services.add_argument("--latency-ms", type=float, default=0.0)
    services.add_argument("--jitter-ms", type=float, default=0.0)
    services.add_argument("--error-rate", type=float, default=0.0)

    commands.add_parser("schema", help="print the schema (SDL)")

    cost = commands.add_parser("cost", help="print the cost of an operation, field by field")
    cost.add_argument("file", help="a file holding the operation, or - for standard input")
    cost.add_argument("--variables", default="{}", help="the operation's variables as JSON")
    cost.add_argument("--operation", default=None, help="which operation of the document")

    config = commands.add_parser("config", help="config file tools")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = config_commands.add_parser("check", help="validate a config file")
    check.add_argument("file", type=Path)

    ide_parser = commands.add_parser("ide", help="GraphiQL assets")
    ide_commands = ide_parser.add_subparsers(dest="ide_command", required=True, metavar="ACTION")
    fetch = ide_commands.add_parser("fetch", help="download pinned GraphiQL assets from npm")
    fetch.add_argument("--dest", type=Path, default=None)

    token = commands.add_parser("token", help="print a token signed with the config's dev key")
    token.add_argument("--sub", required=True, help="the user id the token names")
    token.add_argument("--scope", action="append", default=[], help="a scope (repeatable)")
    token.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    token.add_argument("--config", type=Path, default=_env("CONFIG") or DEMO_CONFIG)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except ConfigError as exc:
        print(f"switchyard: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    if args.command == "schema":
        from schema import build_schema

        print(build_schema().as_str())
        return 0
    if args.command == "cost":
        return print_cost(args.file, args.variables, args.operation)
    if args.command == "config":
        load_config(args.file)
        print(f"{args.file}: ok")
        return 0
    if args.command == "token":
        return print_token(args.config, args.sub, args.scope, args.ttl)
    if args.command == "ide":
        from switchyard import ide

        return ide.fetch_command(args.dest)
    if args.command == "serve":
        config = load_config(args.config)
        overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
        if overrides:
            config = config.model_copy(
                update={"server": config.server.model_copy(update=overrides)}
            )
        return serve(config)
    if args.command == "services":
        from services.faults import FaultConfig
        from services.launcher import DemoPlatform

        faults = FaultConfig(
            latency_ms=args.latency_ms, jitter_ms=args.jitter_ms, error_rate=args.error_rate
        )
        platform = DemoPlatform(
            host=args.host,
            instances=args.instances,
            seed=args.seed,
            faults=dict.fromkeys(DEMO_UPSTREAMS, faults),
        )
        return platform.run_forever()
    if args.command == "demo":
        return demo(args.host, args.port, args.seed, args.services_port)
    raise AssertionError(f"unhandled command {args.command}")


def print_token(config_file: Path, subject: str, scopes: list[str], ttl: int) -> int:
    """Print a token for ``subject``; exit 2 unless the config has a key marked ``dev = true``."""
    from switchyard.auth.dev_tokens import NoDevKey, mint_dev_token

    if ttl <= 0:
        print("switchyard: --ttl must be a positive number of seconds", file=sys.stderr)
        return 2
    config = load_config(config_file)
    try:
        token = mint_dev_token(config.auth.jwt, subject=subject, scopes=scopes, ttl=ttl)
    except NoDevKey as exc:
        print(f"switchyard: {config_file}: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


def print_cost(source: str, variables_json: str, operation: str | None) -> int:
    """``switchyard cost FILE``: the static estimate of an operation against the graph."""
    import orjson
    from graphql import GraphQLError, parse

    from schema import build_schema
    from switchyard.cost import CostError, CostModel, estimate_cost, explain

    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        variables = orjson.loads(variables_json)
        schema = build_schema()
        report = estimate_cost(
            CostModel.from_strawberry(schema), schema._schema, parse(text), variables, operation
        )
    except (OSError, orjson.JSONDecodeError, GraphQLError, CostError) as exc:
        print(f"switchyard: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    print(explain(report))
    return 0


def serve(config: GatewayConfig) -> int:
    """Run the gateway under uvicorn until SIGINT/SIGTERM."""
    import uvicorn

    from switchyard.app import create_app
    from switchyard.logs import configure_logging

    configure_logging(config.server.log_level)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            host=config.server.host,
            port=config.server.port,
            log_level=config.server.log_level,
            lifespan="on",
            access_log=False,
        )
    )
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


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def demo(host: str, port: int, seed: int, services_port: int = 7001) -> int:
    """The five demo services as child processes, then the gateway in this one."""
    from services.launcher import DemoPlatform

    base = load_config(DEMO_CONFIG)
    ports = {name: services_port + offset for offset, name in enumerate(DEMO_UPSTREAMS)}
    with DemoPlatform(seed=seed, ports=ports) as platform:
        upstreams = {
            name: settings.model_copy(update={"instances": platform.addresses[name]})
            for name, settings in base.upstreams.items()
        }
        config = base.model_copy(
            update={
                "upstreams": upstreams,
                "server": base.server.model_copy(update={"host": host, "port": port}),
            }
        )
        print(f"GraphiQL: http://{host}:{port}{config.server.graphql_path}", flush=True)
        return serve(config)


if __name__ == "__main__":
    raise SystemExit(main())
