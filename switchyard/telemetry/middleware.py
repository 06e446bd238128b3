"""HTTP edge: time each GraphQL request, trace it, and tell the metrics and the access log.

Placed right after ``RequestIdMiddleware``, so it sees every answer to the GraphQL
path, refusals at the edge included (overload, 413/431, 401): their error codes are
read from their small bodies, the others' from ``present_errors``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from switchyard.telemetry.record import RequestTelemetry

if TYPE_CHECKING:
    from switchyard.telemetry.gateway import Telemetry

_GRAPHQL_METHODS = frozenset({"GET", "POST"})


class TelemetryMiddleware:
    def __init__(self, app: ASGIApp, *, telemetry: Telemetry, graphql_path: str) -> None:
        self.app = app
        self.graphql_path = graphql_path
        self.metrics = telemetry.metrics
        self.tracing = telemetry.tracing
        self.access_log = telemetry.access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != self.graphql_path
            or scope["method"] not in _GRAPHQL_METHODS  # CORS preflights are no request
        ):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        metrics = self.metrics
        record = RequestTelemetry(started, metrics)
        state = scope.setdefault("state", {})
        state["telemetry"] = record
        status = 500
        body: list[bytes] | None = None

        async def observed_send(message: Message) -> None:
            nonlocal status, body
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                if status >= 400 and record.error_codes is None:
                    body = []  # answered at the edge: its codes are in its body
            elif kind == "http.response.body" and body is not None:
                body.append(message.get("body", b""))
            await send(message)

        traced = None
        if self.tracing is not None:
            traced = self.tracing.start_request(
                scope, {"http.request.method": scope["method"], "url.path": scope["path"]}
            )
            record.trace = traced
        if metrics is not None:
            metrics.in_flight.inc()
        try:
            await self.app(scope, receive, observed_send)
        finally:
            seconds = time.perf_counter() - started
            if metrics is not None:
                metrics.in_flight.dec()
            if body is not None:
                _read_codes(record, b"".join(body))
            request_id = state.get("request_id", "-")
            trace_id = None
            if traced is not None:
                trace_id = f"{traced.context.trace_id:032x}"
                self.tracing.end_request(  # type: ignore[union-attr]
                    traced, _span_attributes(record, status, request_id), status >= 500
                )
            if metrics is not None:
                metrics.request_finished(record, status, seconds)
            if self.access_log is not None:
                caller = (
                    record.context.caller if record.context is not None else state.get("caller")
                )
                self.access_log.write(
                    record,
                    request_id=request_id,
                    client_id=caller.client_id if caller is not None else "-",
                    status=status,
                    seconds=seconds,
                    trace_id=trace_id,
                )
            record.release()


def _read_codes(record: RequestTelemetry, body: bytes) -> None:
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError:
        return
    if isinstance(decoded, dict):
        record.answered_body(decoded)


def _span_attributes(record: RequestTelemetry, status: int, request_id: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "http.response.status_code": status,
        "switchyard.request_id": request_id,
        "switchyard.upstream_calls": record.upstream_calls,
    }
    if record.operation_name is not None:
        attributes["graphql.operation.name"] = record.operation_name
    if record.operation_type is not None:
        attributes["graphql.operation.type"] = record.operation_type
    if record.error_codes:
        attributes["switchyard.error_codes"] = list(record.error_codes)
    context = record.context
    if context is not None:
        attributes["switchyard.client_id"] = context.caller.client_id
        if context.cost is not None:
            attributes["switchyard.cost.estimated"] = context.cost.requested
            if context.cost.actual is not None:
                attributes["switchyard.cost.actual"] = context.cost.actual
    return attributes
