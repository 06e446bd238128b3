"""OpenTelemetry traces: one span per operation, its stages as events, one span per
upstream call (``switchyard.batch.size`` when a loader made it), and W3C trace context
sent to every upstream: REST as headers, gRPC as metadata.

The operation's span is the current span while the request runs, so the calls its
loaders make are its children; its stages (``parse``, ``validate``, ``cost``,
``execute``) are events on it, with their durations. No span per resolver. The provider
belongs to the gateway, not the process (``trace.set_tracer_provider`` is not called).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from switchyard.telemetry.settings import TracingSettings

logger = logging.getLogger("switchyard.tracing")
_PROPAGATOR = TraceContextTextMapPropagator()
_EMPTY = otel_context.Context()


class Tracing:
    """The gateway's tracer, its sampler and its exporter (``exporter`` for tests)."""

    def __init__(self, settings: TracingSettings, exporter: SpanExporter | None = None) -> None:
        self.settings = settings
        self.exporter = exporter if exporter is not None else _exporter(settings)
        self.provider = TracerProvider(
            sampler=ParentBased(TraceIdRatioBased(settings.sampling_ratio)),
            resource=Resource.create({"service.name": settings.service_name}),
        )
        if self.exporter is not None:
            # In memory and to the console at once; to a collector in batches, by a thread.
            immediate = isinstance(self.exporter, InMemorySpanExporter | ConsoleSpanExporter)
            processor = (
                SimpleSpanProcessor(self.exporter)
                if immediate
                else BatchSpanProcessor(self.exporter)
            )
            self.provider.add_span_processor(processor)
        self.tracer = self.provider.get_tracer("switchyard")
        self.accept_incoming = settings.accept_incoming

    def start_request(
        self, scope: Mapping[str, Any], attributes: dict[str, Any]
    ) -> tuple[Span, object]:
        """The operation's span, made current; ``end_request`` with the token ends it."""
        parent = _EMPTY
        if self.accept_incoming:
            carrier = {
                name.decode("latin-1"): value.decode("latin-1")
                for name, value in scope["headers"]
                if name in (b"traceparent", b"tracestate")
            }
            if carrier:
                parent = _PROPAGATOR.extract(carrier)
        span = self.tracer.start_span(
            "graphql", context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        return span, token

    @staticmethod
    def end_request(span: Span, token: object, attributes: dict[str, Any], failed: bool) -> None:
        otel_context.detach(token)  # type: ignore[arg-type]
        if span.is_recording():
            name = attributes.get("graphql.operation.name") or "anonymous"
            kind = attributes.get("graphql.operation.type")
            span.update_name(f"{kind} {name}" if kind else "graphql")
            span.set_attributes(attributes)
            if failed:
                span.set_status(Status(StatusCode.ERROR))
        span.end()

    def call_span(
        self, upstream: str, instance: str, operation: str, batch: tuple[str, int] | None
    ) -> Span:
        """A child span of the current (operation's) span for one upstream call."""
        attributes: dict[str, str | int] = {
            "switchyard.upstream": upstream,
            "switchyard.instance": instance,
        }
        if batch is not None:
            attributes["switchyard.batch.loader"] = batch[0]
            attributes["switchyard.batch.size"] = batch[1]
        return self.tracer.start_span(
            f"{upstream} {operation}", kind=SpanKind.CLIENT, attributes=attributes
        )

    async def aclose(self) -> None:
        # Flushes what is queued for export: a thread, so a slow collector holds no request.
        await asyncio.to_thread(self.provider.shutdown)

    def finished(self) -> list[ReadableSpan]:
        """The spans exported so far, with the in-memory exporter (tests, the bench)."""
        if isinstance(self.exporter, InMemorySpanExporter):
            self.provider.force_flush()
            return list(self.exporter.get_finished_spans())
        return []


def trace_headers(span: Span) -> dict[str, str]:
    """``traceparent`` (and ``tracestate``) naming ``span`` as the parent of what it calls."""
    context = span.get_span_context()
    if not context.is_valid:
        return {}
    headers = {
        "traceparent": f"00-{context.trace_id:032x}-{context.span_id:016x}-"
        f"{int(context.trace_flags):02x}"
    }
    state = context.trace_state
    if state:
        headers["tracestate"] = state.to_header()
    return headers


def _exporter(settings: TracingSettings) -> SpanExporter | None:
    if settings.exporter == "memory":
        return InMemorySpanExporter()
    if settings.exporter == "console":
        return ConsoleSpanExporter()
    if settings.exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=settings.endpoint)
    return None
