"""What the telemetry of one request gathers on its way through the pipeline.

The HTTP edge (``TelemetryMiddleware``) makes a ``RequestTelemetry`` and puts it
in the ASGI scope's state; the request context carries it (``context.telemetry``);
``OperationTelemetry`` names the operation; ``present_errors`` gives the error
codes; every upstream call reports to it (it is a ``CallObserver``). At the end
the middleware hands it to the metrics and the access log.

``BATCH`` is how a loader's batch size reaches the call it makes: the edges set
it around their fetch, the metrics and the call's span read it.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

from graphql import GraphQLError

if TYPE_CHECKING:
    from switchyard.context import RequestContext
    from switchyard.telemetry.tracing import RequestTrace

BATCH: ContextVar[tuple[str, int] | None] = ContextVar("switchyard_batch", default=None)
"""``(loader name, keys)`` of the batch whose upstream call is being made, if any."""


class _Observer(Protocol):
    def call_finished(
        self, upstream: str, operation: str, seconds: float, error: BaseException | None
    ) -> None: ...


class BatchObserver(Protocol):
    def batch(self, loader: str, size: int) -> None: ...


class RequestTelemetry:
    """One request's telemetry record (see the module's docs)."""

    __slots__ = (
        "batches",
        "context",
        "error_codes",
        "limits",
        "operation_name",
        "operation_type",
        "stage",
        "start",
        "then",
        "trace",
        "upstream_calls",
        "upstream_errors",
    )

    def __init__(self, start: float, batches: BatchObserver | None = None) -> None:
        self.start = start
        self.batches = batches
        self.context: RequestContext | None = None
        self.operation_name: str | None = None
        self.operation_type: str | None = None
        self.error_codes: list[str] | None = None
        """The codes of the errors the answer carries, once known."""
        self.limits: list[str] = []
        """The names of the operation limits the answer's errors refused."""
        self.upstream_calls = 0
        self.upstream_errors = 0
        self.trace: RequestTrace | None = None
        """The request's trace, when it is traced."""
        self.stage: tuple[str, int] | None = None
        """The stage begun and when (``time.time_ns()``): ``cost``, then ``execute``."""
        self.then: _Observer | None = None

    def release(self) -> None:
        """Drops what the record refers to, once the request is told: the context refers
        back to it, and a cycle would leave the request's whole object graph (answers,
        loaders) to the garbage collector's oldest generation instead of freeing it at once.
        """
        self.context = None
        self.trace = None
        self.then = None

    def observing(self, then: _Observer | None) -> RequestTelemetry:
        """This record as the request's call observer, telling ``then`` too."""
        self.then = then
        return self

    def call_finished(
        self, upstream: str, operation: str, seconds: float, error: BaseException | None
    ) -> None:
        self.upstream_calls += 1
        if error is not None:
            self.upstream_errors += 1
        if self.batches is not None:
            batch = BATCH.get()
            if batch is not None:
                self.batches.batch(*batch)
        if self.then is not None:
            self.then.call_finished(upstream, operation, seconds, error)

    def answered_errors(self, errors: list[GraphQLError]) -> None:
        """The errors the client sees (``present_errors``)."""
        self.error_codes = codes = []
        for error in errors:
            extensions = error.extensions or {}
            codes.append(str(extensions.get("code")))
            limit = extensions.get("limit")
            if isinstance(limit, dict) and "name" in limit:
                self.limits.append(str(limit["name"]))

    def answered_body(self, body: dict[str, Any]) -> None:
        """The errors of an answer made at the edge (401, 413, a body that is not JSON)."""
        self.error_codes = codes = []
        for error in body.get("errors") or ():
            extensions = error.get("extensions") or {} if isinstance(error, dict) else {}
            codes.append(str(extensions.get("code")))
            limit = extensions.get("limit")
            if isinstance(limit, dict) and "name" in limit:
                self.limits.append(str(limit["name"]))
