"""HTTP edge: decide who is calling before anything else runs, or answer 401.

    Middleware(AuthenticationMiddleware, authenticator=authenticator, graphql_path="/graphql")

Only requests that execute GraphQL (POST, or GET with a ``query``) are
authenticated; probes, the GraphiQL page and its assets are not. The caller
lands in ``scope["state"]["caller"]``, the proven bearer token in
``scope["state"]["bearer_token"]``. Identity headers a client sent
(``x-switchyard-subject``...) are removed from every request: only the gateway
derives them, for upstreams.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

import orjson
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from switchyard.auth.backend import Authenticator
from switchyard.auth.errors import InvalidCredentials
from upstreams.call import IDENTITY_HEADERS

UNAUTHENTICATED = "UNAUTHENTICATED"
_STRIPPED = frozenset(name.encode() for name in IDENTITY_HEADERS)


class AuthenticationMiddleware:
    """Puts the request's ``Caller`` into the scope; refuses bad or missing credentials."""

    def __init__(self, app: ASGIApp, *, authenticator: Authenticator, graphql_path: str) -> None:
        self.app = app
        self.authenticator = authenticator
        self.graphql_path = graphql_path
        self.allow_anonymous = authenticator.settings.allow_anonymous

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope["headers"] = [(n, v) for n, v in scope["headers"] if n.lower() not in _STRIPPED]
        if not self._executes_graphql(scope):
            await self.app(scope, receive, send)
            return
        try:
            authentication = await self.authenticator.authenticate(Headers(scope=scope))
            if authentication is None and not self.allow_anonymous:
                raise InvalidCredentials("missing credentials")
        except InvalidCredentials as exc:
            await _unauthorized(exc.reason, send)
            return
        if authentication is not None:
            state = scope.setdefault("state", {})
            state["caller"] = authentication.caller
            state["bearer_token"] = authentication.bearer_token
        await self.app(scope, receive, send)

    def _executes_graphql(self, scope: Scope) -> bool:
        if scope["path"] != self.graphql_path:
            return False
        if scope["method"] != "GET":
            return True
        query_string = scope.get("query_string", b"").decode("latin-1")
        return any(name == "query" for name, _ in parse_qsl(query_string))


async def _unauthorized(reason: str, send: Send) -> None:
    body = orjson.dumps(
        {
            "errors": [
                {
                    "message": f"Authentication failed: {reason}.",
                    "extensions": {"code": UNAUTHENTICATED},
                }
            ]
        }
    )
    challenge = f'Bearer error="invalid_token", error_description="{reason}"'
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", challenge.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
