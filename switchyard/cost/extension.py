"""``CostAnalysis``: the Strawberry extension around the execution of an operation.

It estimates before any resolver runs, refuses (``enforce``) or reports what
it would have refused (``measure``), and measures after; ``EstimateHook`` and
``ActualHook`` are its callbacks.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from graphql import DocumentNode, GraphQLError, GraphQLSchema
from graphql import ExecutionResult as GraphQLExecutionResult
from strawberry.extensions import SchemaExtension

from switchyard.cost.cache import EstimateCache
from switchyard.cost.errors import CostError, CostLimitExceeded, SlicingArgumentError
from switchyard.cost.measurement import COST_ATTRIBUTE, CostMeasurement
from switchyard.cost.model import CostModel
from switchyard.cost.report import CostReport
from switchyard.cost.settings import CostSettings
from switchyard.cost.walk import _operation, actual_cost, estimate_cost
from switchyard.cost.work import work_of
from switchyard.errors import GraphError

logger = logging.getLogger("switchyard.cost")


EstimateHook = Callable[[Any, CostReport], Awaitable[None]]
"""Called with the request context before execution; raising refuses the operation."""
ActualHook = Callable[[Any, CostMeasurement], Awaitable[None]]
"""Called with the request context after execution (refunds); errors are logged, not raised."""


class CostAnalysis(SchemaExtension):
    """Estimate before any resolver runs, refuse (enforce) or report (measure), measure after.

    Per request, so pass a factory::

        settings = CostSettings(mode="enforce", max_cost=1000)
        schema = build_schema(extensions=[lambda: CostAnalysis(settings, on_estimate=charge)])

    A refusal is a GraphQL error (``COST_LIMIT_EXCEEDED`` with ``estimatedCost``
    and ``maximumCost``, ``BAD_USER_INPUT`` for slicing arguments, or whatever
    ``on_estimate`` raised) and nothing is executed. ``on_estimate`` runs for
    estimates within ``max_cost``, ``on_actual`` after every executed operation.
    Both hooks get ``info.context``, which also gets the ``CostMeasurement`` as
    its ``cost`` attribute (or key), before ``on_estimate`` runs.

    ``measure`` takes the same decisions and applies none: the operation runs,
    ``CostMeasurement.refusal`` holds the error enforce would have answered,
    and one info line is logged.

    The actual cost is what the response shows, but never less than the work
    the request did: the ``points`` of the ``WorkMeter`` the context carries
    as its ``work`` attribute (or key), if any (``switchyard.cost.work``).
    Async execution (``schema.execute``) only.
    """

    def __init__(
        self,
        settings: CostSettings,
        *,
        model: CostModel | None = None,
        on_estimate: EstimateHook | None = None,
        on_actual: ActualHook | None = None,
        cache: EstimateCache | None = None,
    ) -> None:
        self.settings = settings
        self.model = model
        self.cache = cache
        self.on_estimate = on_estimate
        self.on_actual = on_actual

    async def on_execute(self) -> AsyncIterator[None]:
        execution_context = self.execution_context
        document = execution_context.graphql_document
        if self.settings.mode == "off" or document is None or execution_context.result:
            yield
            return
        schema = execution_context.schema
        model = self.model or CostModel.from_strawberry(
            schema, default_list_size=self.settings.default_list_size
        )
        graphql_schema = schema._schema
        context = execution_context.context
        variables = execution_context.variables
        operation_name = execution_context.operation_name
        enforce = self.settings.mode == "enforce"
        measurement = None
        refusal: Exception | None = None
        try:
            try:
                estimate = self._estimate(
                    model, graphql_schema, document, variables, operation_name, strict=True
                )
            except SlicingArgumentError as error:
                if enforce:
                    raise
                refusal = error
                estimate = self._estimate(
                    model, graphql_schema, document, variables, operation_name, strict=False
                )
            measurement = CostMeasurement(estimate, self.settings.max_cost, enforced=enforce)
            _attach(context, measurement)
            if refusal is None and measurement.exceeds_maximum:
                operation = _operation(document, operation_name)
                maximum = self.settings.max_cost
                refusal = CostLimitExceeded(estimate.cost, maximum, nodes=[operation])
            if refusal is None and self.on_estimate is not None:
                try:
                    await self.on_estimate(context, estimate)
                except Exception as error:
                    refusal = error
            if refusal is not None:
                if enforce:
                    raise refusal
                if isinstance(refusal, CostError | GraphQLError | GraphError):
                    measurement.refusal = _as_graphql_error(refusal)
                    _log_would_refuse(context, measurement)
                else:  # a broken hook is not a decision: nothing to tell the client
                    logger.error(
                        "on_estimate failed in measure mode",
                        exc_info=refusal,
                        extra={"stage": "cost"},
                    )
        except Exception as error:
            execution_context.result = GraphQLExecutionResult(
                data=None, errors=[_as_graphql_error(error)]
            )
            yield
            return
        yield
        data = getattr(execution_context.result, "data", None)
        if self.cache is not None:
            measured = self.cache.actual_cost(
                model, graphql_schema, document, variables, operation_name, data
            )
        else:
            measured = actual_cost(model, graphql_schema, document, variables, operation_name, data)
        work = work_of(context)
        measurement.settle(measured, work.points if work is not None else 0)
        if self.on_actual is not None:
            try:
                await self.on_actual(context, measurement)
            except Exception:
                logger.exception("on_actual failed", extra={"stage": "operation"})

    def _estimate(
        self,
        model: CostModel,
        schema: GraphQLSchema,
        document: DocumentNode,
        variables: dict[str, Any] | None,
        operation_name: str | None,
        *,
        strict: bool,
    ) -> CostReport:
        if self.cache is not None:
            return self.cache.estimate(
                model, schema, document, variables, operation_name, strict=strict
            )
        return estimate_cost(model, schema, document, variables, operation_name, strict=strict)


def _as_graphql_error(error: Exception) -> GraphQLError:
    if isinstance(error, CostError):
        return error.as_graphql_error()
    if isinstance(error, GraphQLError):
        return error
    # The gateway presents it: a GraphError keeps its code, anything else is masked.
    return GraphQLError(str(error), original_error=error)


def _log_would_refuse(context: Any, measurement: CostMeasurement) -> None:
    refusal = measurement.refusal
    if refusal is None:
        return
    original = refusal.original_error
    code = getattr(original, "code", None) or (refusal.extensions or {}).get("code")
    message = getattr(original, "message", None) or refusal.message
    extra = {"stage": "cost"}
    request_id = _request_id(context)
    if request_id is not None:
        extra["request_id"] = request_id
    logger.info(
        "measure mode: enforce would have refused this operation (%s): %s",
        code or "error",
        message,
        extra=extra,
    )


def _request_id(context: Any) -> str | None:
    if isinstance(context, MutableMapping):
        value = context.get("request_id")
    else:
        value = getattr(context, "request_id", None)
    return value if isinstance(value, str) else None


def _attach(context: Any, measurement: CostMeasurement) -> None:
    if isinstance(context, MutableMapping):
        context[COST_ATTRIBUTE] = measurement
    elif context is not None:
        # A context that cannot hold it still gets the hooks.
        with contextlib.suppress(AttributeError):
            setattr(context, COST_ATTRIBUTE, measurement)
