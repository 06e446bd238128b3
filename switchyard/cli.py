"""The ``switchyard`` command line.

    switchyard demo [--port 8000]         five demo services + the gateway, GraphiQL in a browser
    switchyard serve --config FILE        the gateway alone
    switchyard services                   the demo services alone
    switchyard schema                     print the SDL
    switchyard config check FILE          validate a config file
    switchyard ide fetch [--dest DIR]     put GraphiQL's assets where the gateway serves them

Options that take a value can also be given as environment variables
(``SWITCHYARD_PORT``, ``SWITCHYARD_CONFIG``, ...), like uvicorn's.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from switchyard.config import DEMO_CONFIG, ConfigError, GatewayConfig, load_config


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"SWITCHYARD_{name}", default)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchyard", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="run the demo services and the gateway")
    demo.add_argument("--host", default=_env("HOST", "127.0.0.1"))
    demo.add_argument("--port", type=int, default=int(_env("PORT", "8000") or 8000))
    demo.add_argument("--seed", type=int, default=42, help="seed of the demo data")

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

    config = commands.add_parser("config", help="config file tools")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = config_commands.add_parser("check", help="validate a config file")
    check.add_argument("file", type=Path)

    ide_parser = commands.add_parser("ide", help="GraphiQL assets")
    ide_commands = ide_parser.add_subparsers(dest="ide_command", required=True, metavar="ACTION")
    fetch = ide_commands.add_parser("fetch", help="download pinned GraphiQL assets from npm")
    fetch.add_argument("--dest", type=Path, default=None)
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
    if args.command == "config":
        load_config(args.file)
        print(f"{args.file}: ok")
        return 0
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
        from services.launcher import DemoPlatform

        platform = DemoPlatform(
            host=args.host,
            instances=args.instances,
            seed=args.seed,
            latency_ms=args.latency_ms,
            jitter_ms=args.jitter_ms,
            error_rate=args.error_rate,
        )
        platform.run_forever()
        return 0
    if args.command == "demo":
        return demo(args.host, args.port, args.seed)
    raise AssertionError(f"unhandled command {args.command}")


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
    server.run()
    return 0 if server.started else 1


def demo(host: str, port: int, seed: int) -> int:
    """The five demo services as child processes, then the gateway in this one."""
    from services.launcher import DemoPlatform

    base = load_config(DEMO_CONFIG)
    with DemoPlatform(seed=seed) as platform:
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
