"""``[metrics]``, ``[tracing]`` and ``[access_log]``: what the gateway tells operators.

Metrics are on by default (``GET /metrics``), traces off, the access log on::

    [metrics]
    max_operation_names = 100       # later names fold into "other"
    port = 9100                     # 0 (default): on the gateway's own port
    token = "${env:METRICS_TOKEN}"  # then a scrape needs Authorization: Bearer <token>

    [tracing]
    enabled = true
    sampling_ratio = 0.1
    exporter = "otlp"               # otlp (gRPC) | console | memory | none
    memory_max_spans = 1000         # memory: the most recent spans kept, older ones dropped
    endpoint = "http://127.0.0.1:4317"
    accept_incoming = false         # continue a client's traceparent only when true

    [access_log]
    format = "auto"                 # JSON in production, console lines in development
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

OTHER_OPERATION = "other"
"""The label of every operation name beyond the bounded set."""
ANONYMOUS_OPERATION = "anonymous"
"""The label of operations without a name."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricsSettings(_Section):
    enabled: bool = Field(True, description="serve Prometheus metrics at path")
    path: str = Field("/metrics", pattern=r"^/[A-Za-z0-9/_-]*$")
    port: int = Field(
        0, ge=0, le=65535, description="0: served on the gateway's own port; else on this port"
    )
    host: str | None = Field(None, description="the separate port's host; default server.host")
    token: str | None = Field(
        None, min_length=16, repr=False, description="when set, /metrics needs this bearer token"
    )
    max_operation_names: int = Field(
        100,
        ge=0,
        description="distinct operation names kept as label values; later ones fold into "
        f'"{OTHER_OPERATION}"',
    )
    operation_names: list[str] = Field(
        default_factory=list,
        description="when not empty, only these names are label values (the persisted set)",
    )
    latency_buckets: list[float] = Field(
        default_factory=lambda: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
        min_length=1,
    )


class TracingSettings(_Section):
    enabled: bool = Field(False, description="OpenTelemetry traces")
    sampling_ratio: float = Field(1.0, ge=0.0, le=1.0, description="share of new traces kept")
    exporter: Literal["otlp", "console", "memory", "none"] = "otlp"
    endpoint: str | None = Field(
        None, description="the OTLP collector (gRPC); default: OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    memory_max_spans: int = Field(
        1000, ge=1, description='exporter = "memory": the most recent finished spans kept'
    )
    service_name: str = "switchyard"
    accept_incoming: bool = Field(
        False,
        description="continue the trace of a client's traceparent/tracestate (trusted clients)",
    )


class AccessLogSettings(_Section):
    enabled: bool = Field(True, description="one line per GraphQL request")
    format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto: JSON in production, console lines in development"
    )
