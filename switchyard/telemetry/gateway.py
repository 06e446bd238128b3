"""``Telemetry``: the metrics, traces and access log one gateway was configured with,
and the units it adds to the pipeline (none when all three are off)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.middleware import Middleware
from starlette.routing import Route
from strawberry.extensions import SchemaExtension

if TYPE_CHECKING:
    from switchyard.config import GatewayConfig
    from switchyard.telemetry.access_log import AccessLog
    from switchyard.telemetry.endpoint import MetricsServer
    from switchyard.telemetry.metrics import GatewayMetrics
    from switchyard.telemetry.tracing import Tracing
    from switchyard.upstream.kinds import TransportFactory

ExtensionFactory = Callable[[], SchemaExtension]


class Telemetry:
    """Built with the gateway; ``start``/``aclose`` in its lifespan."""

    def __init__(
        self, config: GatewayConfig, upstreams: Callable[[], Mapping[str, Any]] = dict
    ) -> None:
        self.config = config
        self.graphql_path = config.server.graphql_path
        self.metrics: GatewayMetrics | None = None
        self.tracing: Tracing | None = None
        self.access_log: AccessLog | None = None
        self.metrics_server: MetricsServer | None = None
        if config.metrics.enabled:
            from switchyard.telemetry.metrics import GatewayMetrics

            self.metrics = GatewayMetrics(config.metrics, upstreams)
        if config.tracing.enabled:
            from switchyard.telemetry.tracing import Tracing

            self.tracing = Tracing(config.tracing)
        if config.access_log.enabled:
            from switchyard.telemetry.access_log import AccessLog

            self.access_log = AccessLog(config.access_log, production=config.server.production)

    @property
    def enabled(self) -> bool:
        return any(x is not None for x in (self.metrics, self.tracing, self.access_log))

    def middleware(self) -> list[Middleware]:
        """The HTTP edge's unit, right after the request id's."""
        if not self.enabled:
            return []
        from switchyard.telemetry.middleware import TelemetryMiddleware

        return [Middleware(TelemetryMiddleware, telemetry=self, graphql_path=self.graphql_path)]

    def operation_units(self, *, cost_stage: bool) -> list[ExtensionFactory]:
        """The unit first among the operation's: names it; with tracing, times its stages."""
        if not self.enabled:
            return []
        from switchyard.telemetry.extension import OperationTelemetry, TracedOperation

        if self.tracing is None:
            return [OperationTelemetry]
        return [lambda: TracedOperation(cost_stage=cost_stage)]

    def after_cost_units(self, *, cost_stage: bool) -> list[ExtensionFactory]:
        """With tracing and a cost stage: the unit after it, where ``execute`` begins."""
        if self.tracing is None or not cost_stage:
            return []
        from switchyard.telemetry.extension import ExecuteMarker

        return [ExecuteMarker]

    def kinds(self, kinds: Mapping[str, TransportFactory]) -> Mapping[str, TransportFactory]:
        """``kinds``, each instance's transport observed when metrics or tracing are on."""
        if self.metrics is None and self.tracing is None:
            return kinds
        from switchyard.telemetry.instruments import instrumented

        return instrumented(kinds, self.metrics, self.tracing)

    def routes(self) -> list[Route]:
        """``/metrics`` on the gateway's port, unless it has a port of its own."""
        if self.metrics is None or self.config.metrics.port:
            return []
        from switchyard.telemetry.endpoint import metrics_endpoint

        return [Route(self.config.metrics.path, metrics_endpoint(self.metrics), methods=["GET"])]

    async def start(self) -> None:
        settings = self.config.metrics
        if self.metrics is not None and settings.port:
            from switchyard.telemetry.endpoint import MetricsServer

            host = settings.host or self.config.server.host
            self.metrics_server = MetricsServer(self.metrics, host, settings.port)
            await self.metrics_server.start()

    async def aclose(self) -> None:
        if self.metrics_server is not None:
            await self.metrics_server.aclose()
            self.metrics_server = None
        if self.tracing is not None:
            await self.tracing.aclose()
