"""Typed settings of the ``[budgets]`` config section: per-client cost budgets by tier.

The Redis URL may carry a password, so it is masked in ``repr`` and never
echoed in validation errors::

    [budgets]
    enabled = true
    backend = "redis"
    redis_url = "redis://:secret@redis.internal:6379/0"
    failure_mode = "closed"
    trusted_proxies = ["10.0.0.0/8"]

    [budgets.tiers.partner]
    capacity = 10000
    refill_per_second = 500

On Redis Cluster, ``redis_url`` names any node and ``redis_cluster = true``
says so: redis-py's cluster client finds the others and follows ``MOVED``.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator, Mapping
from typing import Any, Literal, Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, field_validator, model_validator
from redis.asyncio.connection import ConnectionPool, parse_url
from redis.exceptions import RedisError

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_KEY_PREFIX = "switchyard:budget"
DEFAULT_TIER = "anonymous"
DEFAULT_REDIS_TIMEOUT = 0.25
DEFAULT_RECHECK_INTERVAL = 1.0
DEFAULT_MEMORY_MAX_KEYS = 100_000
REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})
MASK = "***"


class BucketPolicy(BaseModel):
    """A token bucket: holds at most ``capacity`` points, refilled continuously.

    >>> BucketPolicy(capacity=1000, refill_per_second=50).seconds_to_fill
    20.0
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    capacity: int = Field(ge=1, description="most points a client can hold (largest burst)")
    refill_per_second: float = Field(gt=0, description="points restored per second")

    @property
    def seconds_to_fill(self) -> float:
        """Seconds an empty bucket takes to become full."""
        return self.capacity / self.refill_per_second


DEFAULT_TIERS: Mapping[str, BucketPolicy] = {
    "anonymous": BucketPolicy(capacity=100, refill_per_second=5),
    "free": BucketPolicy(capacity=1000, refill_per_second=50),
    "pro": BucketPolicy(capacity=5000, refill_per_second=250),
    "service": BucketPolicy(capacity=20000, refill_per_second=1000),
}


class BudgetSettings(BaseModel):
    """Whether budgets apply, where buckets live and what each tier gets.

    Tiers given in config replace the defaults entirely; ``default_tier`` must
    be one of them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    enabled: bool = Field(False, description="check and charge budgets before execution")
    backend: Literal["memory", "redis"] = Field(
        "memory", description="memory: one replica, no dependency; redis: shared by replicas"
    )
    redis_url: str = DEFAULT_REDIS_URL
    redis_cluster: bool = Field(
        False, description="redis_url is a node of a Redis Cluster (redis:// or rediss://, db 0)"
    )
    key_prefix: str = Field(DEFAULT_KEY_PREFIX, min_length=1, pattern=r"^[^{}\s]+$")
    failure_mode: Literal["open", "closed"] = Field(
        "open", description="when Redis is unreachable: open admits, closed rejects"
    )
    tiers: dict[str, BucketPolicy] = Field(
        default_factory=lambda: dict(DEFAULT_TIERS), min_length=1
    )
    default_tier: str = DEFAULT_TIER
    trusted_proxies: tuple[IPvAnyNetwork, ...] = Field(
        (), description="peers (IPs or CIDRs) whose X-Forwarded-For is believed"
    )
    redis_timeout: float = Field(
        DEFAULT_REDIS_TIMEOUT, gt=0, description="seconds to connect, and to wait for each reply"
    )
    recheck_interval: float = Field(
        DEFAULT_RECHECK_INTERVAL,
        ge=0,
        description="after a failure, seconds to apply failure_mode before trying Redis again",
    )
    memory_max_keys: int = Field(DEFAULT_MEMORY_MAX_KEYS, ge=1)

    @field_validator("redis_url")
    @classmethod
    def _a_redis_url(cls, url: str) -> str:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError:
            raise ValueError("not a valid URL") from None
        if parts.scheme not in REDIS_SCHEMES:
            raise ValueError("must start with redis://, rediss:// or unix://")
        check_redis_url(url)
        return url

    @model_validator(mode="after")
    def _default_tier_exists(self) -> Self:
        if self.default_tier not in self.tiers:
            raise ValueError(f"default_tier {self.default_tier!r} is not one of the tiers")
        return self

    @model_validator(mode="after")
    def _a_cluster_url(self) -> Self:
        if self.redis_cluster:
            options = parse_url(self.redis_url)
            if "path" in options:
                raise ValueError("redis_cluster needs a redis:// or rediss:// URL")
            if options.get("db"):
                raise ValueError("redis_cluster has only database 0")
        return self

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, mask_url(value) if name == "redis_url" else value


def check_redis_url(url: str) -> None:
    """Raise ``ValueError`` for a URL redis-py cannot use, naming options, never values.

    TLS options are redis-py's query parameters: ``ssl_ca_certs`` (a CA
    bundle), ``ssl_cert_reqs`` (``required``, ``optional`` or ``none``),
    ``ssl_check_hostname``, ``ssl_certfile``/``ssl_keyfile``; their files are
    read now, so a wrong path is a config error rather than an outage.
    """
    try:
        options: dict[str, Any] = dict(parse_url(url))
    except ValueError as exc:
        # redis-py's parser names the option, never its value.
        raise ValueError(str(exc)) from None
    if url.startswith("rediss://"):
        verify = str(options.get("ssl_cert_reqs") or "required").lower()
        if verify not in ("required", "optional", "none"):
            raise ValueError("ssl_cert_reqs must be required, optional or none")
        try:
            context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
            if options.get("ssl_certfile"):
                context.load_cert_chain(options["ssl_certfile"], options.get("ssl_keyfile"))
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"its TLS files cannot be used: {exc}") from None
    try:
        ConnectionPool.from_url(url).make_connection()  # type: ignore[no-untyped-call]
    except TypeError as exc:  # "... got an unexpected keyword argument 'name'"
        raise ValueError(f"an option redis-py does not know: {exc}") from None
    except (ValueError, RedisError) as exc:
        raise ValueError(f"redis-py cannot use it: {type(exc).__name__}") from None


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, safe for logs and errors.

    >>> mask_url("redis://user:s3cret@cache:6379/0?password=s3cret")
    'redis://user:***@cache:6379/0?password=***'
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<invalid url>"
    netloc = parts.netloc
    if parts.password is not None:
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{parts.username or ''}:{MASK}@{host}" + (f":{port}" if port else "")
    query = parts.query
    if "password=" in query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if k == "password" else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
