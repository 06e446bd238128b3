"""HTTP edge: decide who is calling before anything else runs, or answer 401.

    Middleware(AuthenticationMiddleware, authenticator=authenticator, graphql_path="/graphql")

Only requests that execute GraphQL (``switchyard.routing.executes_graphql``)
are authenticated; probes, the GraphiQL page and its assets are not. The caller
lands in ``scope["state"]["caller"]``, the proven bearer token in
``scope["state"]["bearer_token"]``. Identity headers a client sent
(``x-switchyard-subject``...) are removed from every request: only the gateway
derives them, for upstreams.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from switchyard.auth.backend import Authenticator
from switchyard.auth.errors import InvalidCredentials
from switchyard.errors import Unauthenticated, error_response
from switchyard.routing import executes_graphql
from switchyard.upstream.call import IDENTITY_HEADERS

_STRIPPED = frozenset(name.encode() for name in IDENTITY_HEADERS)


class AuthenticationMiddleware:
    """Puts the request's ``Caller`` into the scope; refuses bad or missing credentials."""

    def __init__(self, app: ASGIApp, *, authenticator: Authenticator, graphql_path: str) -> None:
        self.app = app
        self.authenticator = authenticator
        self.graphql_path = graphql_path
        self.allow_anonymous = authenticator.settings.allow_anonymous
        self._realm = f'Bearer realm="{authenticator.settings.realm}"'

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        if any(name.lower() in _STRIPPED for name, _ in headers):
            scope["headers"] = [(n, v) for n, v in headers if n.lower() not in _STRIPPED]
        method = scope["method"]
        # Only a GET's query string can change the answer (routing.executes_graphql).
        parameters = _query_parameters(scope) if method == "GET" else ()
        if scope["path"] != self.graphql_path or not executes_graphql(method, parameters):
            await self.app(scope, receive, send)
            return
        try:
            authentication = await self.authenticator.authenticate(Headers(scope=scope))
            if authentication is None and not self.allow_anonymous:
                raise InvalidCredentials("missing credentials", error=None)
        except InvalidCredentials as exc:
            challenge = self._challenge(exc)
            response = error_response(
                Unauthenticated(f"Authentication failed: {exc.reason}."),
                scope.get("state", {}).get("request_id", "-"),
                headers={"www-authenticate": challenge},
            )
            await response(scope, receive, send)
            return
        if authentication is not None:
            state = scope.setdefault("state", {})
            state["caller"] = authentication.caller
            state["bearer_token"] = authentication.bearer_token
        await self.app(scope, receive, send)

    def _challenge(self, refusal: InvalidCredentials) -> str:
        """RFC 6750's challenge: the realm, and an error code only for a bearer token that
        was sent and failed (or a malformed request); nothing about API keys."""
        if refusal.error is None:
            return self._realm
        return f'{self._realm}, error="{refusal.error}", error_description="{refusal.reason}"'


def _query_parameters(scope: Scope) -> set[str]:
    return {name for name, _ in parse_qsl(scope.get("query_string", b"").decode("latin-1"))}
