"""OpenTelemetry traces: one span per operation, its stages as events, one span per
upstream call (``switchyard.batch.size`` when a loader made it), and W3C trace context
sent to every upstream: REST as headers, gRPC as metadata.

A request's trace is written when the request ends. While it runs, its ids are chosen
and sampled with the SDK's sampler and id generator, every call it makes sends a
``traceparent`` naming the span id chosen for that call, and the calls' times and
outcomes are kept as plain values (``RequestTrace``). At the end the finished spans
(the SDK's ``ReadableSpan``, what its processors and exporters take) go to the span
processor: the calls', then the operation's with its stage events (``parse``,
``validate``, ``cost``, ``execute``). The SDK's ``Tracer`` is not used on this path:
its live spans (a lock, attribute cleaning and limits per span, each attribute copied
twice) made traces at sampling 1.0 cost the large operation +7.1% CPU per request,
against +2.0% to +5.2% written this way (``bench.telemetry --breakdown``); the
attributes written here are a fixed set of plain values. A call that ends after its
request's trace was written gets its span at once. No span per resolver.

While the request runs, the current OpenTelemetry span is the operation's (not
recording, its ids only), so spans other instrumentations make are its children.
``trace.set_tracer_provider`` is not called: the tracing belongs to the gateway.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import Decision, ParentBased, TraceIdRatioBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from switchyard.telemetry.settings import TracingSettings

logger = logging.getLogger("switchyard.tracing")
_PROPAGATOR = TraceContextTextMapPropagator()
_EMPTY = otel_context.Context()
_SAMPLED = int(TraceFlags.SAMPLED)
_RANDOM_TRACE_ID = int(TraceFlags.RANDOM_TRACE_ID)
_UNSET = Status(StatusCode.UNSET)
_ERROR = Status(StatusCode.ERROR)

CURRENT_TRACE: ContextVar[RequestTrace | None] = ContextVar("switchyard_trace", default=None)
"""The trace of the request being answered, for the calls it makes."""


class MemorySpans(SpanProcessor):
    """``exporter = "memory"``: the last ``max_spans`` finished spans, older ones dropped.

    The spans ``Tracing`` writes hold plain values (their attributes are dicts of strings
    and numbers, which the garbage collector does not track): about two tracked objects a
    call's span, seven the operation's. The SDK's own live spans, kept as its
    ``InMemorySpanExporter`` keeps them (about 24 tracked objects each, unbounded), had
    every collection of the oldest generation walk them all: the large operation's CPU
    grew by a fifth within a few thousand requests.
    """

    def __init__(self, max_spans: int) -> None:
        self.kept: deque[ReadableSpan] = deque(maxlen=max_spans)

    def on_end(self, span: ReadableSpan) -> None:
        self.kept.append(span)

    def spans(self) -> list[ReadableSpan]:
        """The spans kept, oldest first."""
        return list(self.kept)


class RequestTrace:
    """One request's trace while it runs: its ids, and its stages and calls as plain values."""

    __slots__ = (
        "attributes",
        "calls",
        "context",
        "context_token",
        "events",
        "recording",
        "remote_parent",
        "start",
        "token",
        "written",
    )

    def __init__(
        self,
        context: SpanContext,
        remote_parent: SpanContext | None,
        attributes: dict[str, Any],
        *,
        exported: bool,
    ) -> None:
        self.context = context
        """The operation span's ids."""
        self.remote_parent = remote_parent
        """The client's span, when its trace is continued."""
        self.recording = exported and context.trace_flags.sampled
        """Sampled, with an exporter to take it: the calls' and stages' times are noted."""
        self.attributes = attributes
        self.start = time.time_ns()
        self.events: list[tuple[str, int, int]] = []
        """``(stage, start, end)``, in ``time.time_ns()``"""
        self.calls: list[UpstreamCallTrace] = []
        self.written = False
        self.token: object = None
        self.context_token: object = None

    def stage(self, name: str, started: int) -> None:
        """Stage ``name`` begun at ``started`` (``time.time_ns()``) ends now."""
        if self.recording:
            self.events.append((name, started, time.time_ns()))


class UpstreamCallTrace:
    """One upstream call's span: its ids at once (for ``headers``), the rest when written."""

    __slots__ = (
        "batch",
        "context",
        "end",
        "error",
        "instance",
        "operation",
        "request",
        "start",
        "upstream",
    )

    def __init__(
        self,
        request: RequestTrace | None,
        context: SpanContext,
        upstream: str,
        instance: str,
        operation: str,
        batch: tuple[str, int] | None,
    ) -> None:
        self.request = request
        self.context = context
        self.upstream = upstream
        self.instance = instance
        self.operation = operation
        self.batch = batch
        self.start = time.time_ns()
        self.end: int | None = None
        self.error: str | None = None
        """The type of the error the call ended with (no traceback kept)."""

    def headers(self) -> dict[str, str]:
        """``traceparent`` (and ``tracestate``) naming this call's span as the parent."""
        return trace_headers(self.context)


class Tracing:
    """The gateway's sampler, id generator and span processor (its exporter)."""

    def __init__(self, settings: TracingSettings) -> None:
        self.settings = settings
        self.sampler = ParentBased(TraceIdRatioBased(settings.sampling_ratio))
        self.sample_all = settings.sampling_ratio >= 1.0
        self.ids = RandomIdGenerator()
        self.resource = Resource.create({"service.name": settings.service_name})
        self.scope = InstrumentationScope("switchyard")
        self.memory: MemorySpans | None = None
        self.processor: SpanProcessor | None = None
        if settings.exporter == "memory":
            self.processor = self.memory = MemorySpans(settings.memory_max_spans)
        else:
            exporter = _exporter(settings)
            if exporter is not None:
                # To the console at once; to a collector in batches, by a thread.
                self.processor = (
                    SimpleSpanProcessor(exporter)
                    if isinstance(exporter, ConsoleSpanExporter)
                    else BatchSpanProcessor(exporter)
                )
        self.accept_incoming = settings.accept_incoming

    def start_request(self, scope: Mapping[str, Any], attributes: dict[str, Any]) -> RequestTrace:
        """The request's trace, begun: its ids chosen and sampled; ``end_request`` writes it."""
        parent = _EMPTY
        if self.accept_incoming:
            carrier = {
                name.decode("latin-1"): value.decode("latin-1")
                for name, value in scope["headers"]
                if name in (b"traceparent", b"tracestate")
            }
            if carrier:
                parent = _PROPAGATOR.extract(carrier)
        remote = trace.get_current_span(parent).get_span_context() if parent else None
        if remote is not None and not remote.is_valid:
            remote = None
        request = RequestTrace(
            self._new_context(parent, remote, "graphql", SpanKind.SERVER, attributes),
            remote,
            attributes,
            exported=self.processor is not None,
        )
        request.context_token = otel_context.attach(
            trace.set_span_in_context(NonRecordingSpan(request.context), parent)
        )
        request.token = CURRENT_TRACE.set(request)
        return request

    def end_request(self, request: RequestTrace, attributes: dict[str, Any], failed: bool) -> None:
        """Writes the request's trace (see the module's docs)."""
        CURRENT_TRACE.reset(request.token)  # type: ignore[arg-type]
        otel_context.detach(request.context_token)  # type: ignore[arg-type]
        request.written = True
        processor = self.processor
        if processor is None or not request.recording:
            return
        for call in request.calls:
            processor.on_end(self._call_span(call, request.context))
        request.calls.clear()
        name = attributes.get("graphql.operation.name") or "anonymous"
        kind = attributes.get("graphql.operation.type")
        processor.on_end(
            ReadableSpan(
                name=f"{kind} {name}" if kind else "graphql",
                context=request.context,
                parent=request.remote_parent,
                resource=self.resource,
                attributes={**request.attributes, **attributes},
                events=[
                    Event(stage, {"duration_ms": round((ended - started) / 1e6, 3)}, started)
                    for stage, started, ended in request.events
                ],
                kind=SpanKind.SERVER,
                status=_ERROR if failed else _UNSET,
                start_time=request.start,
                end_time=time.time_ns(),
                instrumentation_scope=self.scope,
            )
        )

    def start_call(
        self, upstream: str, instance: str, operation: str, batch: tuple[str, int] | None
    ) -> UpstreamCallTrace:
        """One upstream call of the current request (outside any: a trace of its own)."""
        request = CURRENT_TRACE.get()
        if request is None:
            context = self._new_context(_EMPTY, None, upstream, SpanKind.CLIENT, None)
        else:
            parent = request.context
            context = SpanContext(
                parent.trace_id,
                self.ids.generate_span_id(),
                False,
                parent.trace_flags,
                parent.trace_state,
            )
        return UpstreamCallTrace(request, context, upstream, instance, operation, batch)

    def end_call(self, call: UpstreamCallTrace, error: BaseException | None) -> None:
        request = call.request
        if not (call.context.trace_flags.sampled if request is None else request.recording):
            return
        call.end = time.time_ns()
        call.error = None if error is None else type(error).__name__
        if request is not None and not request.written:
            request.calls.append(call)
        elif self.processor is not None:  # the request's trace is written, or there is none
            self.processor.on_end(
                self._call_span(call, None if request is None else request.context)
            )

    def _new_context(
        self,
        parent: otel_context.Context,
        remote: SpanContext | None,
        name: str,
        kind: SpanKind,
        attributes: dict[str, Any] | None,
    ) -> SpanContext:
        """A new span's ids under ``remote`` (a client's span, in ``parent``) or a new trace,
        sampled as the SDK's ``Tracer.start_span`` samples."""
        if remote is None:
            trace_id, random_id = self.ids.generate_trace_id(), self.ids.is_trace_id_random()
            if self.sample_all:  # the ratio sampler's answer for every trace id at 1.0
                flags = _SAMPLED | (_RANDOM_TRACE_ID if random_id else 0)
                return SpanContext(trace_id, self.ids.generate_span_id(), False, TraceFlags(flags))
        else:
            trace_id, random_id = remote.trace_id, remote.trace_flags.random_trace_id
        sampling = self.sampler.should_sample(parent, trace_id, name, kind, attributes)
        flags = _SAMPLED if sampling.decision is Decision.RECORD_AND_SAMPLE else 0
        if random_id:
            flags |= _RANDOM_TRACE_ID
        return SpanContext(
            trace_id, self.ids.generate_span_id(), False, TraceFlags(flags), sampling.trace_state
        )

    def _call_span(self, call: UpstreamCallTrace, parent: SpanContext | None) -> ReadableSpan:
        attributes: dict[str, str | int] = {
            "switchyard.upstream": call.upstream,
            "switchyard.instance": call.instance,
        }
        if call.batch is not None:
            attributes["switchyard.batch.loader"] = call.batch[0]
            attributes["switchyard.batch.size"] = call.batch[1]
        error = call.error
        return ReadableSpan(
            name=f"{call.upstream} {call.operation}",
            context=call.context,
            parent=parent,
            resource=self.resource,
            attributes=attributes,
            kind=SpanKind.CLIENT,
            status=_UNSET if error is None else Status(StatusCode.ERROR, error),
            start_time=call.start,
            end_time=call.end,
            instrumentation_scope=self.scope,
        )

    async def aclose(self) -> None:
        # Flushes what is queued for export: a thread, so a slow collector holds no request.
        if self.processor is not None:
            await asyncio.to_thread(self.processor.shutdown)

    def finished(self) -> list[ReadableSpan]:
        """The spans kept so far, oldest first, with the in-memory exporter (tests, demos)."""
        return [] if self.memory is None else self.memory.spans()


def trace_headers(context: SpanContext) -> dict[str, str]:
    """``traceparent`` (and ``tracestate``) naming ``context`` as the parent of what it calls."""
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
