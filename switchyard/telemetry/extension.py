"""The operation's name and type for metrics and the access log, and its stages for traces.

``OperationTelemetry`` runs first among the pipeline's units: once the operation is
over it writes its name and type on the request's ``RequestTelemetry``. With
tracing, ``TracedOperation`` also opens a child span around ``parse``, ``validate``
and what ``on_execute`` wraps: ``cost`` (the cost stage and the budget) until
``ExecuteMarker``, the unit placed right after the cost stage, opens ``execute``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from strawberry.extensions import SchemaExtension

from switchyard.telemetry.record import RequestTelemetry
from switchyard.telemetry.tracing import Tracing


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
    """``OperationTelemetry`` with a child span per stage (see the module's docs)."""

    def __init__(self, tracing: Tracing, *, cost_stage: bool) -> None:
        self.tracing = tracing
        self.cost_stage = cost_stage

    def on_parse(self) -> Iterator[None]:
        yield from self._spanned("parse")

    def on_validate(self) -> Iterator[None]:
        yield from self._spanned("validate")

    def _spanned(self, stage: str) -> Iterator[None]:
        span = self.tracing.stage(stage)
        try:
            yield
        finally:
            span.end()

    def on_execute(self) -> Iterator[None]:
        record = _record(self)
        span = self.tracing.stage("cost" if self.cost_stage else "execute")
        if record is not None:
            record.stage_span = span
        try:
            yield
        finally:
            if record is None or record.stage_span is span:
                span.end()  # the cost stage refused: execute never began


class ExecuteMarker(SchemaExtension):
    """Ends the ``cost`` span and opens ``execute``, right after the cost stage."""

    def __init__(self, tracing: Tracing) -> None:
        self.tracing = tracing

    def on_execute(self) -> Iterator[None]:
        record = _record(self)
        if record is None or self.execution_context.result is not None:
            yield  # refused by the cost stage: the cost span ends with TracedOperation's
            return
        cost: Any = record.stage_span
        if cost is not None:
            cost.end()
        record.stage_span = span = self.tracing.stage("execute")
        try:
            yield
        finally:
            span.end()
