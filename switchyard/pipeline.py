"""The request pipeline: every stage a GraphQL request passes through, in order, assembled here.

    stage         unit                              decides
    ------------  --------------------------------  -------------------------------------------
    http          RequestIdMiddleware,              the request id; 413/431 for a body or
                  CORSMiddleware ([cors]),          headers over their limits; CORS preflights
                  HttpLimitsMiddleware,             and headers; 400 for a request a browser
                  CsrfMiddleware ([csrf])           sends without a preflight (CSRF)
    authenticate  AuthenticationMiddleware          who is calling; 401 for bad credentials
    persisted     PersistedDocuments.resolve        the document a hash names (trusted documents,
                                                    APQ); whether it may run at all
    parse         CachedDocuments.on_parse          the document, parsed once per text, within
                                                    the byte and token limits
    limits        OperationLimits.check,            whether its shape is within the limits,
                  IntrospectionPolicy               before validation; who may introspect
    validate      CachedDocuments.on_validate       whether it fits the schema (cached)
    cost          CostAnalysis                      what it costs; refuse above max_cost
    budget        BudgetStage.charge                whether the caller's budget admits it
    execute       graphql-core over the graph       the data, fanned out through loaders
    present       present_errors                    what clients see of each error, how many
    respond       respond                           the status, headers, extensions; the
                                                    response's size
                  HttpCache                         GET: Cache-Control, ETag, 304
                  CompressionMiddleware             gzip, br, zstd (an http unit, outermost)
    settle        BudgetStage.settle                the refund of points left unused

The first two are ASGI middleware (outermost first), ``parse`` to ``settle``
run as Strawberry extensions around execution (``budget`` and ``settle`` are
the cost stage's hooks, so an operation the cost stage refused never reaches
them), ``present`` and ``respond`` run as the view shapes the response. A
disabled feature contributes no unit, so it costs nothing. A later stage is
one more entry in ``assemble``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import orjson
from graphql import GraphQLError
from starlette.middleware import Middleware
from strawberry.extensions import SchemaExtension
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from switchyard.auth.backend import Authenticator
from switchyard.auth.middleware import AuthenticationMiddleware
from switchyard.compression import CompressionMiddleware
from switchyard.context import RequestContext
from switchyard.cors import cors_unit
from switchyard.cost import CostAnalysis, CostMeasurement, CostReport
from switchyard.csrf import csrf_unit
from switchyard.deadline import OperationDeadline
from switchyard.documents import CachedDocuments
from switchyard.errors import present_error, response_status
from switchyard.http_limits import HttpLimitsMiddleware
from switchyard.introspection import IntrospectionPolicy
from switchyard.limits import LimitSettings, limit_error
from switchyard.overload import in_flight_limit
from switchyard.persisted import PersistedDocuments
from switchyard.rate_limit import CostRateLimiter, cost_breakdown, cost_extension
from switchyard.request_id import RequestIdMiddleware

if TYPE_CHECKING:
    from switchyard.app import Gateway

logger = logging.getLogger("switchyard.request")

ExtensionFactory = Callable[[], SchemaExtension]


class Stage(StrEnum):
    """The stages, in the order a request meets them; logs name them the same way."""

    HTTP = "http"
    AUTHENTICATE = "authenticate"
    PERSISTED = "persisted"
    PARSE = "parse"
    LIMITS = "limits"
    VALIDATE = "validate"
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
    persisted: PersistedDocuments | None = None
    """Trusted documents and APQ: the view resolves a named document before executing it."""


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

    csrf = csrf_unit(
        config.csrf, production=config.server.production, graphql_path=config.server.graphql_path
    )
    cors = cors_unit(
        config.cors, api_key_header=config.auth.api_key_header, csrf_headers=config.csrf.headers()
    )
    compression = config.compression  # outermost: it compresses every answer
    http(
        Stage.HTTP,
        *([Middleware(CompressionMiddleware, settings=compression)] if compression.enabled else []),
        Middleware(RequestIdMiddleware),
        *([cors] if cors else []),  # before the in-flight limit: preflights are not counted
        *gateway.telemetry.middleware(),  # metrics, traces, the access log
        *in_flight_limit(config.server.max_in_flight, config.server.overload_retry_after),
        Middleware(HttpLimitsMiddleware, settings=config.limits),
        *([csrf] if csrf else []),
    )
    http(
        Stage.AUTHENTICATE,
        Middleware(
            AuthenticationMiddleware,
            authenticator=Authenticator.from_settings(config.auth),
            graphql_path=config.server.graphql_path,
        ),
    )
    cost_stage = config.cost.mode != "off"
    operation.extend(gateway.telemetry.operation_units(cost_stage=cost_stage))  # names, spans
    persisted = PersistedDocuments.from_settings(
        config.persisted_documents, config.apq, config.source_dir
    )
    if persisted is not None:
        stages.append(Stage.PERSISTED)
    # One unit parses, checks the limits and validates: the verdicts live with the document.
    documents = CachedDocuments.factory(
        gateway.documents, config.limits, hide_suggestions=config.server.production
    )
    around_execution(Stage.PARSE, documents)
    stages.append(Stage.LIMITS)
    if config.server.production:
        scope = config.server.introspection_scope
        operation.append(lambda: IntrospectionPolicy(scope))
    stages.append(Stage.VALIDATE)
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
    operation.extend(gateway.telemetry.after_cost_units(cost_stage=cost_stage))
    operation.extend(OperationDeadline.units(config.server))  # the operation's own deadline
    stages.extend([Stage.BUDGET, Stage.EXECUTE, Stage.PRESENT, Stage.RESPOND, Stage.SETTLE])
    return Pipeline(middleware=middleware, operation=operation, stages=stages, persisted=persisted)


def present_errors(
    context: RequestContext, result: ExecutionResult, *, limits: LimitSettings, production: bool
) -> None:
    """``present``: every error masked the same way, whichever stage raised it; at most
    ``max_errors`` of them, then one saying how many more there were."""
    errors = result.errors
    if not errors:
        return
    debug = context.debug is not None
    cap = limits.max_errors
    shown = errors if not cap or len(errors) <= cap else errors[:cap]
    presented = [
        present_error(e, context.request_id, debug=debug, hide_suggestions=production)
        for e in shown
    ]
    if len(shown) < len(errors):
        left_out = len(errors) - len(shown)
        message = f"{left_out} more errors were left out."
        presented.append(limit_error("max_errors", cap, len(errors), message))
    result.errors = presented
    if context.telemetry is not None:
        context.telemetry.answered_errors(presented)
    _log_client_errors(context, presented)


def _log_client_errors(context: RequestContext, errors: list[GraphQLError]) -> None:
    """One line per answer with errors: a client's mistakes are not the gateway's errors."""
    codes = Counter(str((e.extensions or {}).get("code")) for e in errors)
    logger.info(
        "answered with errors: %s",
        ", ".join(f"{code} x{count}" for code, count in codes.most_common()),
        extra={"request_id": context.request_id, "stage": Stage.PRESENT.value},
    )


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
    if context.response_headers is not None:  # [response_headers] rules
        context.response_headers.apply(context.response.headers, failed=bool(result.errors))
    context.response.status_code = response_status(
        result.errors or [], has_data=result.data is not None
    )


def encode_within_limit(context: RequestContext, body: GraphQLHTTPResponse, maximum: int) -> bytes:
    """``respond``, last: the answer's bytes, encoded once; one over ``max_response_bytes``
    becomes one error instead."""
    encoded = orjson.dumps(body)
    if not maximum or len(encoded) <= maximum:
        return encoded
    message = f"The answer would have {len(encoded)} bytes; the limit is {maximum}."
    refusal = limit_error("max_response_bytes", maximum, len(encoded), message)
    body["data"] = None
    body["errors"] = [present_error(refusal, context.request_id).formatted]
    return orjson.dumps(body)
