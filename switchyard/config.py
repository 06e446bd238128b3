"""The gateway's one config root: a TOML file plus ``SWITCHYARD_*`` environment overrides.

Validated once at start-up into typed objects; unknown keys are rejected and
every error names the offending key without echoing its value (values may be
secrets)::

    config = load_config("switchyard.toml")
    # SWITCHYARD_SERVER__PORT=9000 overrides [server] port

Secrets need not be written in the file: any string may be, or contain,
``${env:NAME}`` (an environment variable) or ``${file:/run/secrets/name}``
(a file's content, without its trailing newline); ``$${`` is a literal ``${``::

    secret = "${file:/run/secrets/jwt-hs256}"
    redis_url = "redis://:${env:REDIS_PASSWORD}@redis:6379/0"
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    model_validator,
)

from switchyard.auth.settings import AuthSettings
from switchyard.budgets import BudgetSettings
from switchyard.cache_control import HttpCacheSettings
from switchyard.compression import CompressionSettings
from switchyard.cors import CorsSettings
from switchyard.cost import CostSettings
from switchyard.csrf import CsrfSettings
from switchyard.limits import LimitSettings
from switchyard.persisted import ApqSettings, PersistedDocumentSettings
from switchyard.telemetry.settings import AccessLogSettings, MetricsSettings, TracingSettings
from switchyard.upstream.headers import ResponseHeaderRules
from switchyard.upstream.settings import UpstreamSettings

ENV_PREFIX = "SWITCHYARD_"
ENV_NESTING = "__"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_GRAPHQL_PATH = "/graphql"
DEFAULT_REQUEST_TIMEOUT = 10.0
DEFAULT_MAX_REQUEST_TIMEOUT = 60.0
DEFAULT_SHUTDOWN_GRACE = 30.0
DEFAULT_GC_THRESHOLD = (20_000, 10, 10)
"""The youngest generation collected every 20,000 allocations instead of 700: the large
operation with 32 in flight spends 8-13% less CPU (bench/README.md), RSS unchanged."""
DEFAULT_KEEP_ALIVE = 75.0
DEFAULT_DOCUMENT_CACHE_BYTES = 64 * 1024 * 1024
CLI_VARIABLES = frozenset(
    {"SWITCHYARD_CONFIG", "SWITCHYARD_HOST", "SWITCHYARD_PORT", "SWITCHYARD_GRAPH"}
)
"""Read by the command line as its flags' defaults, never as config overrides."""
_REFERENCE = re.compile(r"\$\$\{|\$\{(env|file):([^}]*)\}")


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
    max_request_timeout: float = Field(
        DEFAULT_MAX_REQUEST_TIMEOUT,
        gt=0,
        description="the longest deadline: request_timeout and operation_timeouts are capped by it",
    )
    operation_timeouts: dict[str, PositiveFloat] = Field(
        default_factory=dict,
        description="a deadline of its own per operation name, instead of request_timeout",
    )
    max_in_flight: int = Field(
        0,
        ge=0,
        description="requests served at once (health probes aside); beyond it 503 OVERLOADED; "
        "0 = no limit",
    )
    overload_retry_after: int = Field(
        1, ge=1, description="seconds, the Retry-After of an answer refused by max_in_flight"
    )
    shutdown_grace: float = Field(
        DEFAULT_SHUTDOWN_GRACE,
        gt=0,
        description="on SIGTERM, seconds requests in flight may take before they are cancelled",
    )
    mode: Literal["production", "development"] = Field(
        "production",
        description="production: introspection by scope only, no suggestions, no debug, no IDE",
    )
    introspection_scope: str = Field(
        "introspection", description="in production, the scope a caller needs to introspect"
    )
    debug: bool = Field(
        False,
        description="development only: X-Switchyard-Debug: 1 adds extensions.upstreams",
    )
    document_cache_bytes: int = Field(
        DEFAULT_DOCUMENT_CACHE_BYTES, ge=0, description="parsed and validated documents kept"
    )
    log_level: str = Field("info", pattern=r"^(debug|info|warning|error)$")
    keep_alive: float = Field(
        DEFAULT_KEEP_ALIVE,
        gt=0,
        description="seconds an idle client connection is kept open (uvicorn's "
        "timeout_keep_alive); above the idle timeout of the load balancer in front",
    )
    gc_freeze: bool = Field(
        True,
        description="after start-up, keep start-up objects out of garbage collections "
        "(switchyard.app.freeze_startup_objects)",
    )
    gc_threshold: tuple[PositiveInt, PositiveInt, PositiveInt] | None = Field(
        DEFAULT_GC_THRESHOLD,
        description="after start-up, the garbage collector's thresholds (gc.set_threshold) "
        "for the process; [700, 10, 10] are Python's",
    )
    execution: Literal["planned", "standard"] = Field(
        "planned",
        description="planned: operations run from a cached plan, level by level (graphql-core's "
        "execution for what a plan does not cover); standard: graphql-core for every operation",
    )

    @model_validator(mode="after")
    def _request_timeout_within_the_cap(self) -> Self:
        if self.request_timeout > self.max_request_timeout:
            raise ValueError(
                f"request_timeout: {self.request_timeout} is above max_request_timeout "
                f"({self.max_request_timeout})"
            )
        return self

    @model_validator(mode="after")
    def _debug_is_for_development(self) -> Self:
        if self.debug and self.mode == "production":
            raise ValueError('debug: debug = true needs mode = "development"')
        return self

    @property
    def production(self) -> bool:
        return self.mode == "production"


class IdeSettings(_Section):
    enabled: bool | None = Field(None, description="default: on in development, off in production")
    initial_query: str | None = Field(None, description="what GraphiQL's editor shows first")
    initial_headers: dict[str, str] = Field(
        default_factory=dict, description="what GraphiQL's headers pane holds first"
    )
    assets_dir: Path | None = Field(
        None, description="where `switchyard ide fetch` put GraphiQL; default: packaged folder"
    )


class GraphSettings(_Section):
    module: str | None = Field(
        None,
        description='the graph to serve, as "module:attribute", found beside the config file first',
    )


class GatewayConfig(_Section):
    """Everything the gateway needs to start."""

    graph: GraphSettings = GraphSettings()
    server: ServerSettings = ServerSettings()
    ide: IdeSettings = IdeSettings()
    auth: AuthSettings = AuthSettings()
    limits: LimitSettings = LimitSettings()
    cost: CostSettings = CostSettings()
    budgets: BudgetSettings = BudgetSettings()
    upstreams: dict[str, UpstreamSettings] = Field(default_factory=dict)
    response_headers: ResponseHeaderRules = ResponseHeaderRules()
    persisted_documents: PersistedDocumentSettings = PersistedDocumentSettings()
    apq: ApqSettings = ApqSettings()
    http_cache: HttpCacheSettings = HttpCacheSettings()
    compression: CompressionSettings = CompressionSettings()
    cors: CorsSettings = CorsSettings()
    csrf: CsrfSettings = CsrfSettings()
    metrics: MetricsSettings = MetricsSettings()
    tracing: TracingSettings = TracingSettings()
    access_log: AccessLogSettings = AccessLogSettings()
    source_dir: Path | None = Field(None, exclude=True, description="the config file's folder")

    @model_validator(mode="after")
    def _passed_from_known_upstreams(self) -> Self:
        unknown = sorted(set(self.response_headers.pass_through) - set(self.upstreams))
        if unknown:
            raise ValueError(f"response_headers.pass_through: no upstream named {unknown[0]!r}")
        return self

    @property
    def ide_enabled(self) -> bool:
        enabled = self.ide.enabled
        return not self.server.production if enabled is None else enabled


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
    environ = os.environ if environ is None else environ
    apply_environment(data, environ)
    data = resolve_references(data, environ, source=str(path))
    if "source_dir" in data:
        raise ConfigError(f"{path}: source_dir: unknown key")
    config = validate_config(data, source=str(path))
    return config.model_copy(update={"source_dir": path.parent.resolve()})


def validate_config(data: Mapping[str, Any], *, source: str = "config") -> GatewayConfig:
    try:
        return GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {describe_errors(exc)}") from None


def resolve_references(data: Any, environ: Mapping[str, str], *, source: str, key: str = "") -> Any:
    """Replace ``${env:NAME}`` and ``${file:PATH}`` in every string; errors name the key only.

    >>> resolve_references({"a": {"b": "x-${env:T}"}}, {"T": "1"}, source="f")
    {'a': {'b': 'x-1'}}
    >>> resolve_references({"s": "${env:NOPE}"}, {}, source="f")
    Traceback (most recent call last):
    ...
    switchyard.config.ConfigError: f: s: environment variable NOPE is not set
    """
    if isinstance(data, dict):
        return {
            k: resolve_references(v, environ, source=source, key=f"{key}.{k}" if key else k)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [
            resolve_references(v, environ, source=source, key=f"{key}.{i}")
            for i, v in enumerate(data)
        ]
    if not isinstance(data, str) or "${" not in data:
        return data

    def substitute(match: re.Match[str]) -> str:
        kind, name = match.groups()
        if kind is None:
            return "${"
        if kind == "env":
            if name not in environ:
                raise ConfigError(f"{source}: {key}: environment variable {name} is not set")
            return environ[name]
        try:
            return Path(name).read_text(encoding="utf-8").removesuffix("\n")
        except OSError as exc:
            raise ConfigError(f"{source}: {key}: cannot read {name} ({exc.strerror})") from None

    return _REFERENCE.sub(substitute, data)


def describe_errors(exc: ValidationError) -> str:
    """Every problem as ``key.path: message``, joined on one line, never echoing a value."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        key = ".".join(str(part) for part in error["loc"]) or "(root)"
        message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        if error["type"] == "value_error":
            message = str(error.get("ctx", {}).get("error", message))
        problems.append(f"{key}: {message}")
    return "; ".join(problems)


def apply_environment(data: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Overlay ``SWITCHYARD_SECTION__KEY=value`` onto the parsed file (JSON values allowed).

    ``SWITCHYARD_PORT`` and the other ``CLI_VARIABLES`` are the command line's,
    not overrides.
    """
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name in CLI_VARIABLES:
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
