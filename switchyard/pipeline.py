"""The request pipeline: every stage a GraphQL request passes through, in order, assembled here.

    stage            unit                                   decides
    ---------------  -------------------------------------  ---------------------------------------
    http             RequestIdMiddleware, BodyLimitMiddleware  the request id; 413 for a large body
    authenticate     AuthenticationMiddleware               who is calling; 401 for bad credentials
    parse            ParserCache                            the document (parsed once per text)
    validate         ValidationCache                        whether it fits the schema
    limits           OperationLimits                        whether it is too deep or too aliased
    cost             CostAnalysis                           what it costs; refuse above max_cost
    budget           BudgetStage.charge                     whether the caller's budget admits it
    execute          graphql-core over the graph            the data, fanned out through loaders
    present          present_errors                         what clients see of each error
    respond          respond                                the status, headers and extensions
    settle           BudgetStage.settle                     the refund of points left unused

The first two are ASGI middleware (outermost first), ``parse`` to ``settle``
run as Strawberry extensions around execution (``budget`` and ``settle`` are
the cost stage's hooks, so an operation the cost stage refused never reaches
them), ``present`` and ``respond`` run as the view shapes the response. A
disabled feature contributes no unit, so it costs nothing. A later stage is
one more entry in ``assemble``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from starlette.middleware import Middleware
from strawberry.extensions import ParserCache, SchemaExtension, ValidationCache
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from switchyard.auth.backend import Authenticator
from switchyard.auth.middleware import AuthenticationMiddleware
from switchyard.body_limit import BodyLimitMiddleware
from switchyard.context import RequestContext
from switchyard.cost import CostAnalysis, CostMeasurement, CostReport
from switchyard.errors import present_error, response_status
from switchyard.limits import OperationLimits
from switchyard.rate_limit import CostRateLimiter, cost_breakdown, cost_extension
from switchyard.request_id import RequestIdMiddleware

if TYPE_CHECKING:
    from switchyard.app import Gateway

DOCUMENT_CACHE_SIZE = 512
"""Distinct operation texts whose parsed and validated documents are kept."""

ExtensionFactory = Callable[[], SchemaExtension]


class Stage(StrEnum):
    """The stages, in the order a request meets them; logs name them the same way."""

    HTTP = "http"
    AUTHENTICATE = "authenticate"
    PARSE = "parse"
    VALIDATE = "validate"
    LIMITS = "limits"
    COST = "cost"
    BUDGET = "budget"
    EXECUTE = "execute"
    PRESENT = "present"
    RESPOND = "respond"
    SETTLE = "settle"


@dataclass(frozen=True)
class Pipeline:
    """The assembled units: ASGI middleware, then Strawberry extensions around execution."""

    middleware: list[Middleware]
    operation: list[ExtensionFactory]
    stages: list[Stage]


class BudgetStage:
    """``budget`` and ``settle``: charge the estimate before execution, refund the rest after."""

    def __init__(self, gateway: Gateway) -> None:
        self._gateway = gateway

    def _limiter(self) -> CostRateLimiter:
        budgets = self._gateway.started.budgets
        if budgets is None:
            raise RuntimeError("budgets are enabled but no store was opened")
        return CostRateLimiter(budgets)

    async def charge(self, context: RequestContext, estimate: CostReport) -> None:
        await self._limiter().charge(context, estimate)

    async def settle(self, context: RequestContext, measurement: CostMeasurement) -> None:
        await self._limiter().refund(context, measurement)


def assemble(gateway: Gateway) -> Pipeline:
    """Every stage of ``gateway``'s requests, in order; disabled features add nothing."""
    config = gateway.config
    stages: list[Stage] = []
    middleware: list[Middleware] = []
    operation: list[ExtensionFactory] = []

    def http(stage: Stage, *units: Middleware) -> None:
        stages.append(stage)
        middleware.extend(units)

    def around_execution(stage: Stage, unit: ExtensionFactory | None) -> None:
        stages.append(stage)
        if unit is not None:
            operation.append(unit)

    http(
        Stage.HTTP,
        Middleware(RequestIdMiddleware),
        Middleware(BodyLimitMiddleware, max_body_bytes=config.server.max_body_bytes),
    )
    http(
        Stage.AUTHENTICATE,
        Middleware(
            AuthenticationMiddleware,
            authenticator=Authenticator.from_settings(config.auth),
            graphql_path=config.server.graphql_path,
        ),
    )
    around_execution(Stage.PARSE, lambda: ParserCache(maxsize=DOCUMENT_CACHE_SIZE))
    around_execution(Stage.VALIDATE, lambda: ValidationCache(maxsize=DOCUMENT_CACHE_SIZE))
    around_execution(Stage.LIMITS, OperationLimits.factory(config.limits))
    budget = BudgetStage(gateway) if gateway.budgets_enabled else None
    cost_settings = config.cost
    around_execution(
        Stage.COST,
        None
        if cost_settings.mode == "off"
        else lambda: CostAnalysis(
            cost_settings,
            model=gateway.cost_model,
            on_estimate=budget.charge if budget else None,
            on_actual=budget.settle if budget else None,
            cache=gateway.estimate_cache,
        ),
    )
    stages.extend([Stage.BUDGET, Stage.EXECUTE, Stage.PRESENT, Stage.RESPOND, Stage.SETTLE])
    return Pipeline(middleware=middleware, operation=operation, stages=stages)


def present_errors(context: RequestContext, result: ExecutionResult) -> None:
    """``present``: every error masked the same way, whichever stage raised it."""
    if result.errors:
        debug = context.debug is not None
        result.errors = [present_error(e, context.request_id, debug=debug) for e in result.errors]


def respond(context: RequestContext, result: ExecutionResult, body: GraphQLHTTPResponse) -> None:
    """``respond``: the HTTP status by the one rule, budget headers, the gateway's extensions."""
    extensions: dict[str, Any] = dict(context.extensions)
    if context.debug is not None:
        extensions["upstreams"] = context.debug.as_extension()
    cost = cost_extension(context.cost, context.budget)
    if cost is not None:
        extensions["cost"] = cost
    if context.explain_cost and context.cost is not None:
        extensions["costBreakdown"] = cost_breakdown(context.cost)
    if extensions:
        body["extensions"] = {**(body.get("extensions") or {}), **extensions}
    if context.budget is not None:
        context.response.headers.update(context.budget.headers())
    context.response.status_code = response_status(
        result.errors or [], has_data=result.data is not None
    )
