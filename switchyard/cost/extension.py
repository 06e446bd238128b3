"""``CostAnalysis``: the Strawberry extension around the execution of an operation.

It estimates before any resolver runs, rejects above ``max_cost`` in enforce
mode, and measures after; ``EstimateHook`` and ``ActualHook`` are its callbacks.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from switchyard.cost.cache import EstimateCache
from switchyard.cost.errors import CostError, CostLimitExceeded
from switchyard.cost.measurement import COST_ATTRIBUTE, CostMeasurement
from switchyard.cost.model import CostModel
from switchyard.cost.report import CostReport
from switchyard.cost.settings import CostSettings
from switchyard.cost.walk import _operation, actual_cost, estimate_cost

logger = logging.getLogger("switchyard.cost")


EstimateHook = Callable[[Any, CostReport], Awaitable[None]]
"""Called with the request context before execution; raising rejects the operation."""
ActualHook = Callable[[Any, CostMeasurement], Awaitable[None]]
"""Called with the request context after execution (refunds); errors are logged, not raised."""


class CostAnalysis(SchemaExtension):
    """Estimate before any resolver runs, reject above ``max_cost`` (enforce), measure after.

    Per request, so pass a factory::

        settings = CostSettings(mode="enforce", max_cost=1000)
        schema = build_schema(extensions=[lambda: CostAnalysis(settings, on_estimate=charge)])

    A rejection is a GraphQL error (``COST_LIMIT_EXCEEDED`` with
    ``estimatedCost`` and ``maximumCost``, ``BAD_USER_INPUT`` for slicing
    arguments, or whatever ``on_estimate`` raised) and nothing is executed.
    ``on_estimate`` runs in both modes (in enforce mode only for estimates
    within ``max_cost``), ``on_actual`` after every executed operation. Both hooks
    get ``info.context``, which also gets the ``CostMeasurement`` as its
    ``cost`` attribute (or key). Async execution (``schema.execute``) only.
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
        try:
            if self.cache is not None:
                estimate = self.cache.estimate(
                    model, graphql_schema, document, variables, operation_name, strict=enforce
                )
            else:
                estimate = estimate_cost(
                    model, graphql_schema, document, variables, operation_name, strict=enforce
                )
            measurement = CostMeasurement(estimate, self.settings.max_cost)
            _attach(context, measurement)
            if enforce and measurement.exceeds_maximum:
                operation = _operation(document, operation_name)
                raise CostLimitExceeded(estimate.cost, self.settings.max_cost, nodes=[operation])
            if self.on_estimate is not None:
                await self.on_estimate(context, estimate)
        except Exception as error:
            execution_context.result = GraphQLExecutionResult(
                data=None, errors=[_as_graphql_error(error)]
            )
            yield
            return
        yield
        data = getattr(execution_context.result, "data", None)
        if self.cache is not None:
            measurement.actual = self.cache.actual_cost(
                model, graphql_schema, document, variables, operation_name, data
            )
        else:
            measurement.actual = actual_cost(
                model, graphql_schema, document, variables, operation_name, data
            )
        if self.on_actual is not None:
            try:
                await self.on_actual(context, measurement)
            except Exception:
                logger.exception("on_actual failed", extra={"stage": "operation"})


def _as_graphql_error(error: Exception) -> GraphQLError:
    if isinstance(error, CostError):
        return error.as_graphql_error()
    if isinstance(error, GraphQLError):
        return error
    # The gateway presents it: a GraphError keeps its code, anything else is masked.
    return GraphQLError(str(error), original_error=error)


def _attach(context: Any, measurement: CostMeasurement) -> None:
    if isinstance(context, MutableMapping):
        context[COST_ATTRIBUTE] = measurement
    elif context is not None:
        # A context that cannot hold it still gets the hooks.
        with contextlib.suppress(AttributeError):
            setattr(context, COST_ATTRIBUTE, measurement)
