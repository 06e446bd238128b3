"""Typed settings of one upstream, validated from the gateway's config file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

DEFAULT_TIMEOUT = 2.0
DEFAULT_CONNECT_TIMEOUT = 1.0
DEFAULT_MIN_CALL_TIME = 0.05
DEFAULT_MAX_CONNECTIONS = 100
DEFAULT_MAX_KEEPALIVE = 50
DEFAULT_KEEPALIVE_EXPIRY = 4.0


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ForwardSettings(_Section):
    """What of the caller's identity is sent to this upstream (headers or gRPC metadata)."""

    bearer_token: bool = Field(
        False, description="send the caller's own JWT as `authorization: Bearer ...`"
    )
    identity_headers: bool = Field(
        False,
        description="send x-switchyard-subject, x-switchyard-scopes and x-switchyard-client-id",
    )


class TlsSettings(_Section):
    """TLS towards a gRPC upstream: the CA to verify it by, and a client certificate."""

    ca_file: Path | None = Field(None, description="PEM CA bundle; default: the system's roots")
    cert_file: Path | None = None
    key_file: Path | None = None

    @field_validator("ca_file", "cert_file", "key_file")
    @classmethod
    def _readable(cls, path: Path | None) -> Path | None:
        if path is not None and not path.is_file():
            raise ValueError("no such file")
        return path


class RetrySettings(_Section):
    """Retries of idempotent calls (``switchyard.upstream.retry``)."""

    enabled: bool = True
    attempts: int = Field(3, ge=1, description="calls at most, the first included")
    backoff: float = Field(
        0.025, gt=0, description="seconds: the first retry waits up to it, doubled each time"
    )
    max_backoff: float = Field(1.0, gt=0, description="seconds: no wait is drawn above it")
    budget: float = Field(
        0.1, ge=0, le=1, description="retries at most this share of calls over the window"
    )
    min_per_second: float = Field(
        2.0, ge=0, description="retries per second allowed beyond the budget's share"
    )
    budget_window: float = Field(10.0, gt=0, description="seconds the budget counts calls over")


class BreakerSettings(_Section):
    """A circuit breaker per instance (``switchyard.upstream.breaker``)."""

    enabled: bool = True
    failure_ratio: float = Field(
        0.5, gt=0, le=1, description="opens when this share of the window's calls failed"
    )
    min_calls: int = Field(20, ge=1, description="calls in the window before it may open")
    window: float = Field(10.0, gt=0, description="seconds of calls it counts")
    open_for: float = Field(5.0, gt=0, description="seconds open before probing again")
    half_open_probes: int = Field(
        1, ge=1, description="calls let through while half open; as many successes close it"
    )


class HealthSettings(_Section):
    """Active health checks of every instance (``switchyard.upstream.health``)."""

    enabled: bool | None = Field(
        None, description="default: on for gRPC upstreams and when health_path is set"
    )
    interval: float = Field(2.0, gt=0, description="seconds between checks of an instance")
    timeout: float = Field(1.0, gt=0, description="seconds a check may take")
    unhealthy_threshold: int = Field(2, ge=1, description="failed checks in a row to eject")
    healthy_threshold: int = Field(1, ge=1, description="passed checks in a row to re-admit")


DEFAULT_CACHE_BYTES = 16 * 1024 * 1024
DEFAULT_CACHE_MAX_TTL = 3600.0
DEFAULT_CACHE_REDIS_TIMEOUT = 0.1


class CacheSettings(_Section):
    """``[upstreams.NAME.cache]``: answers kept as long as ``Cache-Control`` allows
    (``switchyard.upstream.cache``)."""

    enabled: bool = Field(True, description="honour Cache-Control max-age; off: nothing kept")
    backend: Literal["memory", "redis"] = Field(
        "memory", description="memory: an LRU per process; redis: shared by replicas"
    )
    max_bytes: int = Field(
        DEFAULT_CACHE_BYTES, ge=0, description="memory: bytes of answers kept, at most"
    )
    max_ttl: float = Field(
        DEFAULT_CACHE_MAX_TTL, gt=0, description="seconds an answer is kept, at most"
    )
    grpc_ttl: dict[str, float] = Field(
        default_factory=dict,
        description="gRPC: seconds each method's answers are kept, by method name "
        "(BatchGetProducts) or full path (/demo.catalog.v1.Catalog/BatchGetProducts)",
    )
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="redis: the server")
    redis_timeout: float = Field(
        DEFAULT_CACHE_REDIS_TIMEOUT, gt=0, description="redis: seconds per round trip"
    )
    key_prefix: str = Field("switchyard:cache", min_length=1, description="redis: key prefix")

    @field_validator("grpc_ttl")
    @classmethod
    def _positive(cls, ttls: dict[str, float]) -> dict[str, float]:
        for method, seconds in ttls.items():
            if seconds <= 0:
                raise ValueError(f"{method}: a TTL is a positive number of seconds")
        return ttls


class UpstreamSettings(_Section):
    """One upstream service: how to reach it and how long to wait.

    ``instances`` are base URLs for HTTP kinds (``http://127.0.0.1:7001``) and
    ``host:port`` targets for gRPC; calls are spread round-robin over them.
    ``kind`` names a transport: ``rest`` and ``grpc`` are built in, a graph may
    add more (``switchyard.upstream.kinds``).
    """

    kind: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    instances: list[str] = Field(min_length=1)
    timeout: float = Field(DEFAULT_TIMEOUT, gt=0, description="seconds per call")
    connect_timeout: float = Field(DEFAULT_CONNECT_TIMEOUT, gt=0)
    min_call_time: float = Field(
        DEFAULT_MIN_CALL_TIME,
        ge=0,
        description="seconds: a call is not started with less of the request's deadline left",
    )
    max_connections: int = Field(
        DEFAULT_MAX_CONNECTIONS, ge=1, description="HTTP: open connections per instance, at most"
    )
    max_keepalive_connections: int = Field(
        DEFAULT_MAX_KEEPALIVE,
        ge=0,
        description="HTTP, httpcore transport only: idle connections kept per instance",
    )
    keepalive_expiry: float = Field(
        DEFAULT_KEEPALIVE_EXPIRY,
        gt=0,
        description="HTTP: seconds an idle connection is kept; below the upstream's own",
    )
    http_transport: Literal["aiohttp", "httpcore"] = Field(
        "aiohttp", description="HTTP: the pool under httpx (aiohttp's, or httpx's own httpcore)"
    )
    required: bool = Field(True, description="whether /readyz waits for this upstream")
    health_path: str | None = Field(
        None, description="HTTP path answering 2xx when healthy; without it any answer counts"
    )
    headers: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="sent with every call (HTTP headers, gRPC metadata), e.g. a service token",
    )
    tls: TlsSettings | None = Field(None, description="gRPC: TLS instead of plain text")
    forward: ForwardSettings = ForwardSettings()
    coalesce: bool = Field(
        True, description="identical reads in flight at the same time share one call"
    )
    cache: CacheSettings = CacheSettings()
    balancing: Literal["least_outstanding", "round_robin"] = Field(
        "least_outstanding", description="how calls are spread over the admitted instances"
    )
    max_concurrency: int | None = Field(
        None, ge=1, description="calls in flight at most, all instances together (a bulkhead)"
    )
    max_concurrency_wait: float = Field(
        0.05, ge=0, description="seconds a call beyond max_concurrency waits for a slot"
    )
    idempotent: bool = Field(
        False, description="every call may be sent twice: mutations are retried too"
    )
    retry: RetrySettings = RetrySettings()
    breaker: BreakerSettings = BreakerSettings()
    health: HealthSettings = HealthSettings()

    @field_validator("instances")
    @classmethod
    def _no_blank_addresses(cls, instances: list[str]) -> list[str]:
        for address in instances:
            if not address or any(c.isspace() for c in address):
                raise ValueError("an instance address may not be empty or contain spaces")
        return instances

    @property
    def health_checked(self) -> bool:
        """Whether instances are actively checked (``health.enabled``, else its default)."""
        if self.health.enabled is not None:
            return self.health.enabled
        return self.kind == "grpc" or self.health_path is not None

    def static_headers(self) -> dict[str, str]:
        """``headers`` with their values revealed, lower-cased names (as gRPC metadata needs)."""
        return {name.lower(): value.get_secret_value() for name, value in self.headers.items()}
