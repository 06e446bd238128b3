"""The operation's name and type for metrics and the access log, and its stages for traces.

``OperationTelemetry`` runs first among the pipeline's units: once the operation is
over it writes its name and type on the request's ``RequestTelemetry``. With
tracing, ``TracedOperation`` also times ``parse``, ``validate`` and what ``on_execute``
wraps, each an event on the operation's span (``RequestTrace.stage``): ``cost`` (the
cost stage and the budget) until ``ExecuteMarker``, the unit placed right after the
cost stage, begins ``execute``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from switchyard.telemetry.record import RequestTelemetry


def _record(extension: SchemaExtension) -> RequestTelemetry | None:
    found = getattr(extension.execution_context.context, "telemetry", None)
    return found if isinstance(found, RequestTelemetry) else None


class OperationTelemetry(SchemaExtension):
    """Names the operation on the request's telemetry record."""

    def on_operation(self) -> Iterator[None]:
        yield
        record = _record(self)
        if record is None:
            return
        execution = self.execution_context
        try:
            record.operation_name = execution.operation_name
            if execution.graphql_document is not None:
                record.operation_type = execution.operation_type.value
        except Exception:  # an operationName the document lacks: a validation error
            record.operation_type = None


class TracedOperation(OperationTelemetry):
    """``OperationTelemetry`` with an event per stage on the operation's span (see the
    module's docs): its name, its start as the event's time, ``duration_ms``."""

    def __init__(self, *, cost_stage: bool) -> None:
        self.first_stage = "cost" if cost_stage else "execute"

    def on_parse(self) -> Iterator[None]:
        yield from self._stage("parse")

    def on_validate(self) -> Iterator[None]:
        yield from self._stage("validate")

    def _stage(self, name: str) -> Iterator[None]:
        started = time.time_ns()
        try:
            yield
        finally:
            _stage_event(_record(self), name, started)

    def on_execute(self) -> Iterator[None]:
        record = _record(self)
        if record is not None:
            record.stage = (self.first_stage, time.time_ns())
        try:
            yield
        finally:
            if record is not None and record.stage is not None:
                _stage_event(record, *record.stage)  # execute, or cost when it refused


class ExecuteMarker(SchemaExtension):
    """Ends the ``cost`` stage and begins ``execute``, right after the cost stage."""

    def on_execute(self) -> Iterator[None]:
        record = _record(self)
        if record is not None and record.stage is not None and not self.execution_context.result:
            _stage_event(record, *record.stage)
            record.stage = ("execute", time.time_ns())
        yield


def _stage_event(record: RequestTelemetry | None, name: str, started: int) -> None:
    if record is not None and record.trace is not None:
        record.trace.stage(name, started)
