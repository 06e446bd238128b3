"""The ASGI application: HTTP edge middleware, the GraphQL view, health probes and the IDE.

The whole stack is assembled here, in one visible place::

    app = create_app(load_config("switchyard.toml"))
    # uvicorn.run(app)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import strawberry
from cross_web import HTTPException
from graphql import GraphQLError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from resolvers.context import Caller
from schema import build_schema
from schema.authorization import AuthorizationErrors
from switchyard import ide
from switchyard.auth.backend import Authenticator
from switchyard.auth.middleware import AuthenticationMiddleware
from switchyard.budgets import Budgets, client_key
from switchyard.config import GatewayConfig
from switchyard.context import ANONYMOUS, Deadline, RequestContext
from switchyard.cost import CostAnalysis, CostModel, EstimateCache
from switchyard.debug import COST_HEADER, DEBUG_HEADER, DebugRecord
from switchyard.errors import REQUEST_ERROR_CODES, present_error
from switchyard.rate_limit import CostRateLimiter, cost_breakdown, cost_extension
from switchyard.request_id import RequestIdMiddleware
from upstreams.clients import DemoClients
from upstreams.upstream import Upstreams

READINESS_TIMEOUT = 1.0
DOCUMENT_CACHE_SIZE = 512
"""Distinct operation texts whose parsed and validated documents are kept."""
IDE_ASSETS_PATH = "/graphiql/assets"


@dataclass
class Gateway:
    """What lives for the app's lifetime: config, schema, and the upstreams opened at start-up."""

    config: GatewayConfig
    schema: strawberry.Schema = field(init=False)
    upstreams: Upstreams | None = None
    clients: DemoClients | None = None
    budgets: Budgets | None = None
    cost_model: CostModel = field(init=False)
    estimate_cache: EstimateCache = field(default_factory=EstimateCache)

    def __post_init__(self) -> None:
        self.schema = build_schema(
            extensions=[
                AuthorizationErrors,
                lambda: ParserCache(maxsize=DOCUMENT_CACHE_SIZE),
                lambda: ValidationCache(maxsize=DOCUMENT_CACHE_SIZE),
                self._cost_analysis,
            ]
        )
        self.cost_model = CostModel.from_strawberry(
            self.schema, default_list_size=self.config.cost.default_list_size
        )

    def _cost_analysis(self) -> CostAnalysis:
        limiter = CostRateLimiter(self.budgets) if self.budgets is not None else None
        return CostAnalysis(
            self.config.cost,
            model=self.cost_model,
            on_estimate=limiter.charge if limiter else None,
            on_actual=limiter.refund if limiter else None,
            cache=self.estimate_cache,
        )

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        # Channels and pools are made inside the serving event loop.
        self.upstreams = Upstreams.from_settings(self.config.upstreams)
        self.clients = DemoClients.from_upstreams(self.upstreams)
        if self.config.budgets.enabled:
            self.budgets = Budgets.from_settings(self.config.budgets)
        try:
            yield
        finally:
            await self.upstreams.aclose()
            if self.budgets is not None:
                await self.budgets.aclose()
            self.upstreams = self.clients = self.budgets = None

    def new_context(self, request: Request, response: Response) -> RequestContext:
        if self.clients is None:
            raise RuntimeError("the gateway is not started (lifespan did not run)")
        state = request.scope.get("state", {})
        debug_requested = request.headers.get(DEBUG_HEADER) == "1"
        caller: Caller = state.get("caller", ANONYMOUS)
        budgets = self.config.budgets
        return RequestContext(
            request_id=state.get("request_id", "-"),
            caller=caller,
            client_key=client_key(
                caller.client_id if caller.authenticated else None,
                request.client.host if request.client else None,
                request.headers.get("x-forwarded-for"),
                budgets.trusted_proxies,
            )
            if budgets.enabled
            else caller.client_id,
            explain_cost=self.config.server.debug
            and request.headers.get(COST_HEADER, "").lower() == "explain",
            bearer_token=state.get("bearer_token"),
            deadline=Deadline.after(self.config.server.request_timeout),
            clients=self.clients,
            debug=DebugRecord() if debug_requested and self.config.server.debug else None,
            response=response,
        )


class GraphQLView(GraphQL[RequestContext, None]):
    """Strawberry's ASGI view with the gateway's context, result extensions and error bodies."""

    def __init__(self, gateway: Gateway) -> None:
        super().__init__(
            gateway.schema, graphql_ide="graphiql" if gateway.config.ide.enabled else None
        )
        self.gateway = gateway
        assets_dir = gateway.config.ide.assets_dir or ide.DEFAULT_ASSET_DIR
        self._ide_page = ide.render_graphiql_page(
            graphql_path=gateway.config.server.graphql_path,
            asset_base=IDE_ASSETS_PATH if ide.assets_present(assets_dir) else None,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        response: Response
        try:
            response = await self.run(request)
        except HTTPException as exc:
            # Strawberry answers these in plain text; clients get a GraphQL error body.
            response = request_error(exc.status_code, exc.reason, "BAD_REQUEST")
        await response(scope, receive, send)

    async def get_context(self, request: Request, response: Response) -> RequestContext:  # type: ignore[override]
        context = self.gateway.new_context(request, response)
        request.state.graphql_context = context
        return context

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        return HTMLResponse(self._ide_page)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        context: RequestContext = request.state.graphql_context
        if result.errors:
            # Presented here, at the client boundary, so errors raised by any stage
            # (parsing, validation, extensions, resolvers) are all masked the same way.
            debug = context.debug is not None
            result.errors = [
                present_error(e, context.request_id, debug=debug) for e in result.errors
            ]
        body = await super().process_result(request, result)
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
        if context.budget is not None and context.budget.refused:
            context.response.status_code = 429
        elif result.data is None and result.errors and _all_request_errors(result.errors):
            context.response.status_code = 400
        return body


def _all_request_errors(errors: list[GraphQLError]) -> bool:
    """Errors raised before execution (no path): the request itself was bad."""
    return all(
        not e.path and (e.extensions or {}).get("code") in REQUEST_ERROR_CODES for e in errors
    )


def request_error(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]}, status)


def create_app(config: GatewayConfig) -> Starlette:
    """Build the gateway for ``config``; upstreams open when the app's lifespan starts."""
    gateway = Gateway(config)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> Response:
        if gateway.upstreams is None:
            return JSONResponse({"status": "starting"}, 503)
        required = {n: u for n, u in gateway.upstreams.items() if u.settings.required}
        readiness = await Upstreams(required).readiness(READINESS_TIMEOUT)
        ready = all(readiness.values())
        body: dict[str, Any] = {"upstreams": readiness}
        if gateway.budgets is not None:
            budgets_ready = await gateway.budgets.ready()
            body["budgets"] = budgets_ready
            # Fail-open keeps serving without the budget store: report it, stay ready.
            ready = ready and (budgets_ready or config.budgets.failure_mode == "open")
        body["status"] = "ready" if ready else "unavailable"
        return JSONResponse(body, 200 if ready else 503)

    routes: list[Route | Mount] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route(config.server.graphql_path, GraphQLView(gateway), methods=["GET", "POST"]),
    ]
    assets_dir: Path = config.ide.assets_dir or ide.DEFAULT_ASSET_DIR
    if config.ide.enabled and ide.assets_present(assets_dir):
        routes.append(Mount(IDE_ASSETS_PATH, app=ide.ide_asset_app(assets_dir)))
    middleware = [
        Middleware(RequestIdMiddleware),
        Middleware(
            AuthenticationMiddleware,
            authenticator=Authenticator.from_settings(config.auth),
            graphql_path=config.server.graphql_path,
        ),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=gateway.lifespan)
    app.state.gateway = gateway
    return app
