"""The ASGI application: a graph served through the request pipeline, health probes and the IDE.

    graph = load_graph("schema:graph")
    app = create_app(load_config("switchyard.toml"), graph)
    # uvicorn.run(app)

The stages a request goes through are assembled in ``switchyard.pipeline``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import strawberry
from cross_web import HTTPException
from graphql import GraphQLError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.exceptions import MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from switchyard import ide, media
from switchyard.budgets import Budgets
from switchyard.budgets.keys import bucket_key
from switchyard.cache_control import REQUEST_DATA_STATE, HttpCache
from switchyard.caller import ANONYMOUS, Caller
from switchyard.config import GatewayConfig
from switchyard.context import RequestContext
from switchyard.cost import CostModel, EstimateCache
from switchyard.deadline import Deadline
from switchyard.debug import COST_HEADER, DEBUG_HEADER, DebugRecord
from switchyard.documents import DocumentCache
from switchyard.errors import BadRequest, NotFound, error_response
from switchyard.execution import ExecutionPath, PlanCache, PlannedExecutor
from switchyard.graph import Graph, GraphLoadError, load_graph
from switchyard.limits import exceeded, limit_error, nesting_depth
from switchyard.operation import OperationRunner
from switchyard.persisted import DOCUMENT_ID, refuse_unsupported
from switchyard.pipeline import assemble, encode_within_limit, present_errors, respond
from switchyard.routing import executes_graphql
from switchyard.telemetry.gateway import Telemetry
from switchyard.upstream.upstream import Upstreams

READINESS_TIMEOUT = 1.0
_JSON_PARAMS = frozenset({"variables", "extensions"})
IDE_ASSETS_PATH = "/graphiql/assets"
EXECUTION_HEADER = "x-switchyard-execution"
"""Which execution answered (planned or standard); sent when debug is on (development)."""


@dataclass
class Started:
    """What exists while the app's lifespan runs: the opened upstreams and budget store."""

    upstreams: Upstreams
    budgets: Budgets | None


class Gateway:
    """One graph served under one config: the pipeline, the schema with its stages, the state."""

    def __init__(self, config: GatewayConfig, graph: Graph) -> None:
        graph.check(config.upstreams)
        self.config = config
        self.graph = graph
        self.budgets_enabled = config.budgets.enabled and config.cost.mode != "off"
        self.estimate_cache = EstimateCache()
        self.documents = DocumentCache(config.server.document_cache_bytes)
        self.telemetry = Telemetry(config, lambda: self._started.upstreams if self._started else {})
        self.pipeline = assemble(self)
        self.plans = PlanCache()
        self.schema: strawberry.Schema = graph.schema_with(
            self.pipeline.operation,
            PlannedExecutor.using(self.plans) if config.server.execution == "planned" else None,
        )
        self.executions: Counter[ExecutionPath] = Counter()
        """Operations answered by each execution path, since start (read by tests and bench)."""
        self.fallbacks: Counter[str] = Counter()
        """Why operations fell back to the standard execution, since start."""
        self.cost_model = CostModel.from_strawberry(
            self.schema, default_list_size=config.cost.default_list_size
        )
        self.persisted = self.pipeline.persisted
        if self.persisted is not None and config.persisted_documents.only:
            self.persisted.prepare_logged(self)  # limits, validation, estimates: once, now
        self.http_cache = HttpCache.for_gateway(self) if config.http_cache.enabled else None
        self._started: Started | None = None

    @property
    def started(self) -> Started:
        if self._started is None:
            raise RuntimeError("the gateway is not started (lifespan did not run)")
        return self._started

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        # Channels and pools are made inside the serving event loop.
        kinds = self.telemetry.kinds(self.graph.all_kinds)  # observed by metrics and traces
        upstreams = Upstreams.from_settings(self.config.upstreams, kinds)
        upstreams.start()  # health checks
        budgets = Budgets.from_settings(self.config.budgets) if self.budgets_enabled else None
        self._started = Started(upstreams, budgets)
        await self.telemetry.start()
        if self.config.server.gc_freeze:
            freeze_startup_objects()
        if self.config.server.gc_threshold is not None:
            gc.set_threshold(*self.config.server.gc_threshold)
        try:
            yield
        finally:
            self._started = None
            await self.telemetry.aclose()
            await upstreams.aclose()
            if self.persisted is not None:
                await self.persisted.aclose()
            if budgets is not None:
                await budgets.aclose()

    def new_context(self, request: Request, response: Response) -> RequestContext:
        started = self.started
        state = request.scope.get("state", {})
        caller: Caller = state.get("caller", ANONYMOUS)
        server = self.config.server
        return RequestContext(
            request_id=state.get("request_id", "-"),
            caller=caller,
            # One bucket per client and tier, never a value a client chose (budgets.keys).
            client_key=bucket_key(
                caller,
                request.client.host if request.client else None,
                request.headers.getlist("x-forwarded-for"),
                self.config.budgets.trusted_proxies,
                bearer_token=state.get("bearer_token"),
                client_claim=self.config.auth.jwt.client_claim,
            )
            if self.budgets_enabled
            else caller.client_id,
            explain_cost=server.debug and request.headers.get(COST_HEADER, "").lower() == "explain",
            bearer_token=state.get("bearer_token"),
            deadline=Deadline.after(server.request_timeout),
            upstreams=started.upstreams,
            debug=DebugRecord()
            if server.debug and request.headers.get(DEBUG_HEADER) == "1"
            else None,
            response=response,
            response_headers=self.config.response_headers.collector(),
            telemetry=state.get("telemetry"),
        )

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Whether every required upstream (and a fail-closed budget store) answers now."""
        if self._started is None:
            return False, {"status": "starting"}
        started = self._started
        required = {n: u for n, u in started.upstreams.items() if u.settings.required}
        readiness = await Upstreams(required).readiness(READINESS_TIMEOUT)
        ready = all(readiness.values())
        body: dict[str, Any] = {"upstreams": readiness}
        if started.upstreams:  # breakers and health of each instance, by position
            body["detail"] = started.upstreams.state()
        if started.budgets is not None:
            budgets_ready = await started.budgets.ready()
            body["budgets"] = budgets_ready
            # Fail-open keeps serving without the budget store: report it, stay ready.
            ready = ready and (budgets_ready or self.config.budgets.failure_mode == "open")
        body["status"] = "ready" if ready else "unavailable"
        return ready, body


def freeze_startup_objects() -> None:
    """Keep the objects made at start-up (schema, plans' types, pools) out of every later
    garbage collection: the collector then scans what requests made, instead of the whole
    schema each time (large operation: 23 -> 17.5 ms CPU per request)."""
    gc.collect()
    gc.freeze()


class EncodedBody(dict[str, Any]):
    """A response body that carries its JSON bytes, so the answer is encoded only once."""

    def __init__(self, body: Mapping[str, Any], encoded: bytes) -> None:
        super().__init__(body)
        self.encoded = encoded


class GraphQLView(GraphQL[RequestContext, None]):
    """Strawberry's ASGI view with the gateway's context and its present and respond stages."""

    def __init__(self, gateway: Gateway) -> None:
        super().__init__(
            gateway.schema, graphql_ide="graphiql" if gateway.config.ide_enabled else None
        )
        self.gateway = gateway
        self.runner = OperationRunner(gateway.schema)
        self.limits = gateway.config.limits
        self.production = gateway.config.server.production
        self.graphql_path = gateway.config.server.graphql_path
        self.persisted = gateway.persisted
        self.http_cache = gateway.http_cache
        assets_dir = gateway.config.ide.assets_dir or ide.DEFAULT_ASSET_DIR
        asset_base = IDE_ASSETS_PATH if ide.assets_present(assets_dir) else None
        self._ide_page = ide.render_graphiql_page(
            graphql_path=self.graphql_path,
            asset_base=asset_base,
            initial_query=gateway.config.ide.initial_query,
            initial_headers=gateway.config.ide.initial_headers,
        )
        self._ide_headers = ide.page_security_headers(self._ide_page, from_cdn=asset_base is None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        request = Request(scope, receive)
        response: Response
        request_id = scope.get("state", {}).get("request_id", "-")
        content_type, accept = media.request_headers(scope)
        answer_media = scope.setdefault("state", {})[media.MEDIA_STATE] = media.negotiate(accept)
        try:
            if answer_media is None and executes_graphql(scope["method"], request.query_params):
                response = error_response(media.NOT_ACCEPTABLE, request_id)
            elif scope["method"] == "POST" and not media.supported_body(content_type):
                response = error_response(media.UNSUPPORTED_MEDIA_TYPE, request_id)
            elif _plain_json_post(scope["method"], accept):
                response = await self.answer_json_post(request)
            else:
                response = await self.run(request)
        except HTTPException as exc:
            # Strawberry answers these in plain text; clients get a GraphQL error body.
            response = _refusal(exc, request_id, answer_media)
        except GraphQLError as refusal:  # a limit checked while the body was decoded
            response = error_response(refusal, request_id)
            response.status_code = media.apply_status_rule(answer_media, {}, response.status_code)
        media.label(response, answer_media)
        if self.http_cache is not None and scope["method"] == "GET":
            response = self.http_cache.finish(request, response)  # ETag, 304, Vary
        await response(scope, receive, send)

    async def answer_json_post(self, request: Request) -> Response:
        """``run`` for the common request, a POST of one JSON operation answered in JSON:
        the same steps and checks, without the branches for GET, uploads, batches,
        streams and websockets (``_plain_json_post`` sends those to ``run``)."""
        sub_response = await self.get_sub_response(request)
        context = await self.get_context(request, response=sub_response)
        data = self.parse_json(await request.body())
        if isinstance(data, list):
            self._validate_batch_request(data, protocol="http")  # refuses: batching is off
            raise HTTPException(400, "Batching is not enabled")
        result = await self.execute_single(
            request=request,
            request_adapter=self.request_adapter_class(request),
            sub_response=sub_response,
            context=context,
            root_value=self.gateway.graph.root_value,
            request_data=_request_data(data),
        )
        body = await self.process_result(request, result)
        return self.create_response(response_data=body, sub_response=sub_response)

    async def execute_single(
        self,
        request: Request,
        request_adapter: Any,
        sub_response: Response,
        context: RequestContext,
        root_value: Any,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        persisted = self.persisted  # the persisted stage: the document a hash names
        if persisted is None:
            if request_data.query is None and request_data.extensions:
                refuse_unsupported(request_data.extensions)
        elif request_data.extensions or request_data.query is None or persisted.only:
            if request_data.query is None and not request_data.extensions:
                request_data = await _with_document_id(request, request_data)
            request_data = await persisted.resolve(request_data)
        if self.http_cache is not None and request.method == "GET":
            setattr(request.state, REQUEST_DATA_STATE, request_data)
        allowed = _ALLOWED_OPERATIONS[request.method == "GET"]
        try:
            return await self.runner.execute(
                request_data.query,
                request_data.variables,
                context,
                root_value,
                request_data.operation_name,
                allowed,
                request_data.extensions,
            )
        except CannotGetOperationTypeError as error:
            raise HTTPException(400, error.as_http_error_reason()) from error
        except InvalidOperationTypeError as error:
            raise HTTPException(400, error.as_http_error_reason(request.method)) from error
        except MissingQueryError as error:
            raise HTTPException(400, "No GraphQL query found in the request") from error

    def should_render_graphql_ide(self, request: Any) -> bool:
        return not executes_graphql(request.method, request.query_params) and any(
            accepted in request.headers.get("accept", "") for accepted in ("text/html", "*/*")
        )

    async def get_root_value(self, request: Any) -> Any:
        return self.gateway.graph.root_value

    async def get_context(self, request: Request, response: Response) -> RequestContext:  # type: ignore[override]
        context = self.gateway.new_context(request, response)
        request.state.graphql_context = context
        return context

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        return HTMLResponse(self._ide_page, headers=self._ide_headers)

    def encode_json(self, data: object) -> bytes:
        if isinstance(data, EncodedBody):
            return data.encoded
        return orjson.dumps(data)

    def parse_query_params(self, params: Any) -> dict[str, Any]:
        # `variables=null` in a GET is "no variables", as a JSON body's null member is.
        given = {k: v for k, v in dict(params).items() if not (k in _JSON_PARAMS and v == "null")}
        return super().parse_query_params(given)

    def decode_json(self, data: str | bytes) -> object:
        value = orjson.loads(data)  # orjson's error is a json.JSONDecodeError: a 400 upstream
        if not isinstance(value, dict | list):
            raise HTTPException(400, "The request must be a JSON object.")
        limit = self.limits.max_variable_depth
        # The body object holds the variables: one level more than they nest.
        depth = nesting_depth(value, limit + 1) - 1
        if exceeded(self.limits, "max_variable_depth", depth):
            message = f"Variables nest {depth} levels deep; the limit is {limit}."
            raise limit_error("max_variable_depth", limit, depth, message)
        return value

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        context: RequestContext = request.state.graphql_context
        present_errors(context, result, limits=self.limits, production=self.production)
        body = await super().process_result(request, result)
        respond(context, result, body)
        if self.http_cache is not None and request.method == "GET":
            self.http_cache.respond(context, request, result)
        context.response.status_code = media.apply_status_rule(
            request.scope["state"].get(media.MEDIA_STATE), body, context.response.status_code or 200
        )
        if context.execution is not None:
            self.gateway.executions[context.execution] += 1
            if context.execution_fallback is not None:
                self.gateway.fallbacks[context.execution_fallback] += 1
            if context.debug is not None or self.gateway.config.server.debug:
                context.response.headers[EXECUTION_HEADER] = context.execution.value
        encoded = encode_within_limit(context, body, self.limits.max_response_bytes)
        context.release()
        return EncodedBody(body, encoded)  # type: ignore[return-value]


_ALLOWED_OPERATIONS = {
    False: OperationType.from_http("POST"),
    True: OperationType.from_http("GET"),  # queries only: a mutation over GET is refused
}
_STREAMING_ACCEPT = (b"text/event-stream", b"multipart/mixed")


def _plain_json_post(method: str, accept: bytes) -> bool:
    """A POST (its body JSON: ``media.supported_body``) not asking for a streamed answer."""
    return method == "POST" and not any(s in accept for s in _STREAMING_ACCEPT)


def _refusal(exc: HTTPException, request_id: str, answer_media: media.Media | None) -> Response:
    """Strawberry's refusal as a GraphQL error body: 405 with ``Allow`` for a mutation
    over GET (or a method other than GET and POST), 404, else 400 (200 for an operation
    that cannot be determined, a GraphQL request error, in legacy JSON)."""
    cause = exc.__cause__
    over_get = (
        isinstance(cause, InvalidOperationTypeError)
        and cause.operation_type is OperationType.MUTATION
    )
    if exc.status_code == 405 or over_get:
        allow = "POST" if over_get else "GET, POST"
        refusal = media.MethodNotAllowed(exc.reason)
        return error_response(refusal, request_id, headers={"allow": allow})
    refused = NotFound if exc.status_code == 404 else BadRequest
    response = error_response(refused(exc.reason), request_id)
    if answer_media is media.Media.JSON and isinstance(cause, CannotGetOperationTypeError):
        response.status_code = 200
    return response


async def _with_document_id(request: Request, data: GraphQLRequestData) -> GraphQLRequestData:
    """``data`` with the request's top-level ``documentId`` in its extensions, if it has one."""
    found: Any = None
    if request.method == "GET":
        found = request.query_params.get(DOCUMENT_ID)
    else:
        with contextlib.suppress(orjson.JSONDecodeError):
            body = orjson.loads(await request.body())
            found = body.get(DOCUMENT_ID) if isinstance(body, dict) else None
    if found is None:
        return data
    return dataclasses.replace(data, extensions={DOCUMENT_ID: found})


def _request_data(data: Any) -> GraphQLRequestData:
    """Strawberry's checks of a JSON body's members (``parse_http_body``), with its messages."""
    query = data.get("query")
    if not isinstance(query, str | None):
        raise HTTPException(
            400, "The GraphQL operation's `query` must be a string or null, if provided."
        )
    variables = data.get("variables")
    if not isinstance(variables, dict | None):
        raise HTTPException(
            400, "The GraphQL operation's `variables` must be an object or null, if provided."
        )
    extensions = data.get("extensions")
    if not isinstance(extensions, dict | None):
        raise HTTPException(
            400, "The GraphQL operation's `extensions` must be an object or null, if provided."
        )
    return GraphQLRequestData(
        query=query,
        variables=variables,
        operation_name=data.get("operationName"),
        extensions=extensions,
        protocol="http",
    )


def create_app(config: GatewayConfig, graph: Graph | None = None) -> Starlette:
    """Build the gateway serving ``graph`` (else the config's ``[graph] module``) under ``config``.

    Upstreams open when the app's lifespan starts. Raises ``GraphLoadError``
    when the graph cannot be found or does not fit the config.
    """
    if graph is None:
        if config.graph.module is None:
            raise GraphLoadError(
                'no graph to serve: set [graph] module = "package.module:graph" or pass --graph'
            )
        graph = load_graph(config.graph.module, base_dir=config.source_dir)
    gateway = Gateway(config, graph)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> Response:
        ready, body = await gateway.readiness()
        return JSONResponse(body, 200 if ready else 503)

    routes: list[Route | Mount] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route(config.server.graphql_path, GraphQLView(gateway), methods=["GET", "POST"]),
        *gateway.telemetry.routes(),  # /metrics, unless on a port of its own
    ]
    assets_dir: Path = config.ide.assets_dir or ide.DEFAULT_ASSET_DIR
    if config.ide_enabled and ide.assets_present(assets_dir):
        routes.append(Mount(IDE_ASSETS_PATH, app=ide.ide_asset_app(assets_dir)))
    app = Starlette(
        routes=routes, middleware=gateway.pipeline.middleware, lifespan=gateway.lifespan
    )
    app.state.gateway = gateway
    return app
