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
from collections import deque
from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from switchyard.telemetry.settings import TracingSettings

logger = logging.getLogger("switchyard.tracing")
_PROPAGATOR = TraceContextTextMapPropagator()
_EMPTY = otel_context.Context()


_Context = tuple[int, int, bool, int, str]
"""A span context as plain data: trace id, span id, remote, flags, ``tracestate``."""
_Kept = tuple[
    str,  # name
    _Context,
    _Context | None,  # parent
    int,  # kind
    int | None,  # start (ns)
    int | None,  # end (ns)
    tuple[tuple[str, Any], ...],  # attributes
    tuple[tuple[str, int, tuple[tuple[str, Any], ...]], ...],  # events
    int,  # status code
    str | None,  # status description
]


class MemorySpans(SpanProcessor):
    """``exporter = "memory"``: the last ``max_spans`` finished spans, older ones dropped.

    Each is kept as tuples of ids, names and attribute values, which the garbage
    collector stops tracking, and made a ``ReadableSpan`` again when asked for. Kept
    as the SDK's objects (about 24 tracked objects a span), unbounded as the SDK's
    ``InMemorySpanExporter`` keeps them, every collection of the oldest generation
    walked them all: the large operation's CPU grew by a fifth within a few thousand
    requests, and 1,000 spans kept that way still cost it about 8%.
    """

    def __init__(self, max_spans: int) -> None:
        self.kept: deque[_Kept] = deque(maxlen=max_spans)
        self.resource: Resource | None = None
        self.scope: InstrumentationScope | None = None

    def on_end(self, span: ReadableSpan) -> None:
        if self.resource is None:
            self.resource, self.scope = span.resource, span.instrumentation_scope
        context, parent, status = span.context, span.parent, span.status
        self.kept.append(
            (
                span.name,
                _plain(context),
                None if parent is None else _plain(parent),
                span.kind.value,
                span.start_time,
                span.end_time,
                _items(span._attributes),
                tuple(
                    (event.name, event.timestamp, _items(event.attributes))
                    for event in span._events
                ),
                status.status_code.value,
                status.description,
            )
        )

    def spans(self) -> list[ReadableSpan]:
        """The spans kept, oldest first."""
        return [
            ReadableSpan(
                name=name,
                context=_context(context),
                parent=None if parent is None else _context(parent),
                resource=self.resource,
                attributes=dict(attributes),
                events=[
                    Event(e_name, dict(e_attributes), e_time)
                    for e_name, e_time, e_attributes in events
                ],
                kind=SpanKind(kind),
                status=Status(StatusCode(code), description),
                start_time=start,
                end_time=end,
                instrumentation_scope=self.scope,
            )
            for (
                name,
                context,
                parent,
                kind,
                start,
                end,
                attributes,
                events,
                code,
                description,
            ) in list(self.kept)
        ]


def _plain(context: SpanContext) -> _Context:
    trace_id, span_id, remote, flags, state = context[:5]
    return (trace_id, span_id, remote, int(flags), state.to_header() if state else "")


def _items(attributes: Any) -> tuple[tuple[str, Any], ...]:
    """A span's or event's attributes as pairs: the SDK's ``BoundedAttributes`` read
    through its plain dict, for each of its items is otherwise a call under a lock."""
    if not attributes:
        return ()
    return tuple(getattr(attributes, "_dict", attributes).items())


def _context(plain: _Context) -> SpanContext:
    trace_id, span_id, remote, flags, state = plain
    return SpanContext(
        trace_id,
        span_id,
        remote,
        TraceFlags(flags),
        TraceState.from_header([state]) if state else None,
    )


class Tracing:
    """The gateway's tracer, its sampler and its exporter."""

    def __init__(self, settings: TracingSettings) -> None:
        self.settings = settings
        self.provider = TracerProvider(
            sampler=ParentBased(TraceIdRatioBased(settings.sampling_ratio)),
            resource=Resource.create({"service.name": settings.service_name}),
        )
        self.memory: MemorySpans | None = None
        if settings.exporter == "memory":
            self.memory = MemorySpans(settings.memory_max_spans)
            self.provider.add_span_processor(self.memory)
        else:
            exporter = _exporter(settings)
            if exporter is not None:
                # To the console at once; to a collector in batches, by a thread.
                processor = (
                    SimpleSpanProcessor(exporter)
                    if isinstance(exporter, ConsoleSpanExporter)
                    else BatchSpanProcessor(exporter)
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
        """The spans kept so far, oldest first, with the in-memory exporter (tests, demos)."""
        return [] if self.memory is None else self.memory.spans()


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
    if settings.exporter == "console":
        return ConsoleSpanExporter()
    if settings.exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=settings.endpoint)
    return None
