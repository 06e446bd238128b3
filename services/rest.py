"""What the HTTP services share: JSON answers, parameter parsing, the observing
middleware (recording and fault injection) and the admin routes.

    app = build_rest_app("accounts", routes, faults=FaultConfig(error_rate=0.1))

A service that does not speak JSON passes its own ``render_error`` (the admin routes
always answer JSON) and may add admin routes of its own with ``admin``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import unquote

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.faults import INJECTED_FAILURE_MESSAGE, FaultConfig, FaultInjector
from services.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, InvalidCursor, Window, paginate
from services.recording import RequestRecorder, merge_headers

MAX_BATCH_IDS = 500
ADMIN_PREFIX = "/__admin/"

ErrorRenderer = Callable[[int, str], Response]
"""Answers an error: ``(status, message) -> Response``, like ``error_response``."""


class RestError(Exception):
    """Answered as ``{"error": message}`` with the given status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def json_response(data: object, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def error_response(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


def not_found() -> RestError:
    return RestError(404, "not found")


def parse_ids(request: Request, name: str) -> list[str]:
    """The comma-separated ids of parameter ``name``, deduplicated in order, at most 500."""
    raw = [part.strip() for part in request.query_params[name].split(",")]
    ids = list(dict.fromkeys(part for part in raw if part))
    if len(ids) > MAX_BATCH_IDS:
        raise RestError(400, f"at most {MAX_BATCH_IDS} ids per batch, got {len(ids)}")
    return ids


def parse_first(request: Request, default: int = DEFAULT_PAGE_SIZE) -> int:
    raw = request.query_params.get("first")
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) > MAX_PAGE_SIZE:
        raise RestError(400, f"first must be an integer from 0 to {MAX_PAGE_SIZE}")
    return int(raw)


def page_window(request: Request, total: int, default_first: int = DEFAULT_PAGE_SIZE) -> Window:
    """The page that ``first`` and ``after`` select from ``total`` items."""
    first = parse_first(request, default_first)
    try:
        return paginate(total, first, request.query_params.get("after"))
    except InvalidCursor as exc:
        raise RestError(400, str(exc)) from None


def page_body(key: str, items: Sequence[object], window: Window) -> dict[str, Any]:
    return {key: items, "pageInfo": window.page_info(), "totalCount": window.total}


def reject_combined(request: Request, batch_param: str, others: Sequence[str]) -> None:
    for other in others:
        if other in request.query_params:
            raise RestError(400, f"{batch_param} cannot be combined with {other}")


class ObservingMiddleware:
    """Records every non-admin request and applies the injected faults to it; adds the
    headers set through ``PUT /__admin/headers`` to every non-admin answer (a test's way
    to make a service send ``Cache-Control`` or ``Retry-After``).

    The call label is resolved against the routes up front, because an injected failure
    answers before routing: ``"GET /users/{id}"`` with query ``"id=42"``.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Sequence[BaseRoute],
        recorder: RequestRecorder,
        faults: FaultInjector,
        render_error: ErrorRenderer = error_response,
        response_headers: dict[str, str] | None = None,
    ) -> None:
        self.app = app
        self.response_headers = {} if response_headers is None else response_headers
        self.routes = routes
        self.recorder = recorder
        self.faults = faults
        self.render_error = render_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        start = time.time()
        if self.response_headers:
            send = self._with_headers(send, list(self.response_headers.items()))
        try:
            if await self.faults.apply():
                response = self.render_error(503, INJECTED_FAILURE_MESSAGE)
                await response(scope, receive, send)
            else:
                await self.app(scope, receive, send)
        finally:
            call, query = self._describe(scope)
            headers = merge_headers(
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]
            )
            self.recorder.record(call, query, start, time.time(), headers)

    @staticmethod
    def _with_headers(send: Send, added: list[tuple[str, str]]) -> Send:
        encoded = [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in added
        ]
        names = {name for name, _ in encoded}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(n, v) for n, v in message.get("headers", []) if n.lower() not in names]
                message = {**message, "headers": [*kept, *encoded]}
            await send(message)

        return sending

    def _describe(self, scope: Scope) -> tuple[str, str]:
        template, params = scope["path"], {}
        for route in self.routes:
            match, child_scope = route.matches(scope)
            if match == Match.FULL and isinstance(route, Route):
                template, params = route.path, child_scope.get("path_params", {})
                break
        query = unquote(scope.get("query_string", b"").decode("latin-1"))
        parts = [f"{name}={value}" for name, value in params.items()]
        if query:
            parts.append(query)
        return f"{scope['method']} {template}", "&".join(parts)


def admin_routes(
    recorder: RequestRecorder,
    faults: FaultInjector,
    response_headers: dict[str, str] | None = None,
) -> list[BaseRoute]:
    """``/__admin/health``; ``/__admin/requests`` (GET, DELETE); ``/__admin/faults`` (GET, PUT);
    ``/__admin/headers`` (GET, PUT ``{"name": "value"}``: added to every answer) when
    ``response_headers`` (the middleware's) is given."""

    async def health(request: Request) -> Response:
        return json_response({"status": "SERVING"})

    async def requests(request: Request) -> Response:
        if request.method == "DELETE":
            recorder.clear()
            return json_response({"requests": []})
        return json_response({"requests": [r.to_json() for r in recorder.records()]})

    async def fault_config(request: Request) -> Response:
        if request.method == "PUT":
            try:
                faults.configure(FaultConfig.from_json(orjson.loads(await request.body())))
            except (ValueError, TypeError) as exc:
                raise RestError(400, str(exc)) from None
        return json_response(faults.config.to_json())

    async def header_config(request: Request) -> Response:
        assert response_headers is not None
        if request.method == "PUT":
            body = orjson.loads(await request.body())
            if not isinstance(body, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in body.items()
            ):
                raise RestError(400, "headers must be a JSON object of strings")
            response_headers.clear()
            response_headers.update(body)
        return json_response(response_headers)

    routes: list[BaseRoute] = [
        Route(f"{ADMIN_PREFIX}health", health),
        Route(f"{ADMIN_PREFIX}requests", requests, methods=["GET", "DELETE"]),
        Route(f"{ADMIN_PREFIX}faults", fault_config, methods=["GET", "PUT"]),
    ]
    if response_headers is not None:
        routes.append(Route(f"{ADMIN_PREFIX}headers", header_config, methods=["GET", "PUT"]))
    return routes


def _error_handlers(
    render_error: ErrorRenderer,
) -> dict[type[Exception], Callable[[Request, Exception], Awaitable[Response]]]:
    def render(request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith(ADMIN_PREFIX):
            return error_response(status, message)
        return render_error(status, message)

    async def rest_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RestError)
        return render(request, exc.status, exc.message)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = "not found" if exc.status_code == 404 else exc.detail
        return render(request, exc.status_code, message)

    return {RestError: rest_error, HTTPException: http_error}


def build_rest_app(
    service: str,
    routes: Sequence[BaseRoute],
    *,
    faults: FaultConfig | None = None,
    recorder: RequestRecorder | None = None,
    admin: Sequence[BaseRoute] = (),
    render_error: ErrorRenderer = error_response,
) -> Starlette:
    """A Starlette app serving ``routes`` plus the admin routes (the shared ones and
    ``admin``), with recording and faults; errors outside the admin routes are answered
    by ``render_error``."""
    recorder = recorder or RequestRecorder(service)
    injector = FaultInjector(faults)
    response_headers: dict[str, str] = {}
    all_routes = [*admin_routes(recorder, injector, response_headers), *admin, *routes]
    return Starlette(
        routes=all_routes,
        middleware=[
            Middleware(
                ObservingMiddleware,
                routes=routes,
                recorder=recorder,
                faults=injector,
                render_error=render_error,
                response_headers=response_headers,
            )
        ],
        exception_handlers=_error_handlers(render_error),
    )
