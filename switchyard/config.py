"""The gateway's one config root: a TOML file plus ``SWITCHYARD_*`` environment overrides.

Validated once at start-up into typed objects; unknown keys are rejected and
every error names the offending key without echoing its value (values may be
secrets)::

    config = load_config("switchyard.toml")
    # SWITCHYARD_SERVER__PORT=9000 overrides [server] port
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from switchyard.auth.settings import AuthSettings
from switchyard.budgets import BudgetSettings
from switchyard.cost import CostSettings
from upstreams.settings import UpstreamSettings

ENV_PREFIX = "SWITCHYARD_"
ENV_NESTING = "__"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_GRAPHQL_PATH = "/graphql"
DEFAULT_REQUEST_TIMEOUT = 10.0
DEMO_CONFIG = Path(__file__).with_name("demo.toml")


class ConfigError(Exception):
    """A config file that cannot be used; the message is one line naming the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Section):
    host: str = DEFAULT_HOST
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)
    graphql_path: str = Field(DEFAULT_GRAPHQL_PATH, pattern=r"^/[A-Za-z0-9/_-]*$")
    request_timeout: float = Field(
        DEFAULT_REQUEST_TIMEOUT, gt=0, description="deadline shared by every upstream call"
    )
    debug: bool = Field(
        False, description="allow X-Switchyard-Debug: 1 to add extensions.upstreams"
    )
    log_level: str = Field("info", pattern=r"^(debug|info|warning|error)$")


class IdeSettings(_Section):
    enabled: bool = True
    assets_dir: Path | None = Field(
        None, description="where `switchyard ide fetch` put GraphiQL; default: packaged folder"
    )


class GatewayConfig(_Section):
    """Everything the gateway needs to start."""

    server: ServerSettings = ServerSettings()
    ide: IdeSettings = IdeSettings()
    auth: AuthSettings = AuthSettings()
    cost: CostSettings = CostSettings()
    budgets: BudgetSettings = BudgetSettings()
    upstreams: dict[str, UpstreamSettings] = Field(min_length=1)


def load_config(path: str | Path, *, environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """Read, merge and validate; raise ``ConfigError`` with a one-line reason."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    apply_environment(data, os.environ if environ is None else environ)
    return validate_config(data, source=str(path))


def validate_config(data: Mapping[str, Any], *, source: str = "config") -> GatewayConfig:
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {describe_errors(exc)}") from None


def describe_errors(exc: ValidationError) -> str:
    """Every problem as ``key.path: message``, joined on one line, never echoing a value."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        key = ".".join(str(part) for part in error["loc"]) or "(root)"
        message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        problems.append(f"{key}: {message}")
    return "; ".join(problems)


def apply_environment(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Overlay ``SWITCHYARD_SECTION__KEY=value`` onto the parsed file (JSON values allowed)."""
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in name[len(ENV_PREFIX) :].split(ENV_NESTING)]
        if not all(path):
            continue
        target = data
        for part in path[:-1]:
            child = target.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{name}: {'.'.join(path[:-1])} is not a table")
            target = child
        target[path[-1]] = _parse_env_value(raw)


def _parse_env_value(raw: str) -> Any:
    if raw[:1] in ("[", "{", '"'):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw
    return raw
