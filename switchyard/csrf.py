"""CSRF prevention as Apollo Router does it: refuse what a browser sends without a preflight.

A page on any site can make a browser send a GET, or a POST whose ``Content-Type`` is
``text/plain``, ``application/x-www-form-urlencoded`` or ``multipart/form-data``, with the
user's cookies and without asking the gateway first (a "simple request"). Such a GraphQL
request is refused (400 ``BAD_REQUEST``) unless it carries a header a simple request
cannot: ``apollo-require-preflight``, ``x-apollo-operation-name`` or one configured in
``required_headers``. A request with any other ``Content-Type`` (``application/json``)
was preflighted by the browser, so CORS already decided it.

    [csrf]
    enabled = true                      # default: on in production mode, off in development
    required_headers = ["x-requested-with"]   # added to Apollo's two

Probes and the GraphiQL page are not GraphQL requests (``routing.executes_graphql``).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from pydantic import BaseModel, ConfigDict, Field
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from switchyard.errors import BadRequest, error_response
from switchyard.routing import executes_graphql

APOLLO_HEADERS = ("x-apollo-operation-name", "apollo-require-preflight")
SIMPLE_CONTENT_TYPES = frozenset(
    {b"application/x-www-form-urlencoded", b"multipart/form-data", b"text/plain"}
)
"""The request content types a browser sends without a preflight (the Fetch standard's)."""


class CsrfSettings(BaseModel):
    """The ``[csrf]`` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool | None = Field(
        None, description="refuse simple requests; default: on in production, off in development"
    )
    required_headers: list[str] = Field(
        default_factory=list,
        description="headers that admit a request, besides x-apollo-operation-name and "
        "apollo-require-preflight",
    )

    def headers(self) -> tuple[str, ...]:
        """Every header that admits a request, lower-case."""
        return tuple(dict.fromkeys(h.lower() for h in (*APOLLO_HEADERS, *self.required_headers)))


class CsrfMiddleware:
    """Refuses a GraphQL request a browser could have sent without a preflight."""

    def __init__(self, app: ASGIApp, *, graphql_path: str, headers: tuple[str, ...]) -> None:
        self.app = app
        self.graphql_path = graphql_path
        self.headers = frozenset(h.encode("latin-1") for h in headers)
        self.message = (
            "This request has been blocked as a possible Cross-Site Request Forgery (CSRF). "
            "Send a Content-Type other than application/x-www-form-urlencoded, "
            "multipart/form-data and text/plain (application/json), or one of these headers: "
            + ", ".join(headers)
            + "."
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != self.graphql_path
            or self._preflighted(scope)
        ):
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        parameters = _query_parameters(scope) if method == "GET" else ()
        if method not in ("GET", "POST") or not executes_graphql(method, parameters):
            await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id", "-")
        await error_response(BadRequest(self.message), request_id)(scope, receive, send)

    def _preflighted(self, scope: Scope) -> bool:
        """Whether the browser must have asked first: a non-simple content type or header."""
        for name, value in scope["headers"]:
            if name in self.headers:
                return True
            if name == b"content-type":
                essence = value.split(b";", 1)[0].strip().lower()
                if essence not in SIMPLE_CONTENT_TYPES:
                    return True
        return False


def csrf_unit(settings: CsrfSettings, *, production: bool, graphql_path: str) -> Middleware | None:
    """The http-stage unit, or None when CSRF prevention is off."""
    enabled = production if settings.enabled is None else settings.enabled
    if not enabled:
        return None
    return Middleware(CsrfMiddleware, graphql_path=graphql_path, headers=settings.headers())


def _query_parameters(scope: Scope) -> set[str]:
    return {name for name, _ in parse_qsl(scope.get("query_string", b"").decode("latin-1"))}
