"""The authentication backend: request headers in, the one ``Caller`` of the request out.

In the manner of Starlette's ``AuthenticationBackend``::

    authenticator = Authenticator.from_settings(config.auth)
    authentication = await authenticator.authenticate(Headers(scope=scope))
    # None: no credentials sent; InvalidCredentials: credentials sent and refused
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import Headers

from switchyard.auth.api_keys import ApiKeys
from switchyard.auth.errors import InvalidCredentials
from switchyard.auth.jwt import TokenVerifier
from switchyard.auth.settings import AuthSettings
from switchyard.caller import Caller

_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


@dataclass(frozen=True, slots=True)
class Authentication:
    """Who the caller is, and the bearer token that proved it (kept for forwarding)."""

    caller: Caller
    bearer_token: str | None = field(default=None, repr=False)


class Authenticator:
    """Checks the ``Authorization: Bearer`` token or the API key header; never both."""

    def __init__(
        self, settings: AuthSettings, verifier: TokenVerifier | None, api_keys: ApiKeys
    ) -> None:
        self.settings = settings
        self._verifier = verifier
        self._api_keys = api_keys
        self._api_key_header = settings.api_key_header.lower()
        self._max_token_bytes = settings.jwt.max_token_bytes

    @classmethod
    def from_settings(cls, settings: AuthSettings) -> Authenticator:
        verifier = TokenVerifier.from_settings(settings.jwt) if settings.jwt.enabled else None
        return cls(settings, verifier, ApiKeys(settings.api_keys))

    async def authenticate(self, headers: Headers) -> Authentication | None:
        """The caller the credentials prove; None when there are none."""
        authorizations = headers.getlist("authorization")
        api_keys = headers.getlist(self._api_key_header)
        if len(authorizations) + len(api_keys) > 1:
            raise InvalidCredentials("more than one credential", error="invalid_request")
        if authorizations:
            token = self._bearer_token(authorizations[0])
            return Authentication(await self._token_caller(token), bearer_token=token)
        if api_keys:
            return Authentication(self._api_key_caller(api_keys[0]))
        return None

    def _bearer_token(self, authorization: str) -> str:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise InvalidCredentials("unsupported authorization scheme", error=None)
        token = token.strip()
        if len(token) > self._max_token_bytes:
            raise InvalidCredentials("token too large")
        if not _COMPACT_JWS.fullmatch(token):
            raise InvalidCredentials("malformed bearer token")
        return token

    async def _token_caller(self, token: str) -> Caller:
        if self._verifier is None:
            raise InvalidCredentials("bearer tokens are not accepted")
        claims = await self._verifier.verify(token)
        subject = _string_claim(claims, "sub")
        client_id = _string_claim(claims, "client_id") or _string_claim(claims, "azp") or subject
        if client_id is None:
            raise InvalidCredentials("missing required claim")
        client_claim = self.settings.jwt.client_claim
        if client_claim is not None and _string_claim(claims, client_claim) is None:
            # It names the caller's budget (switchyard.budgets.keys): it must be there.
            raise InvalidCredentials("missing required claim")
        scopes = _scopes(claims)
        return Caller(
            client_id=client_id,
            subject=subject,
            scopes=scopes,
            tier=self.settings.jwt.tier,
            method="jwt",
            admin=self.settings.admin_scope in scopes,
        )

    def _api_key_caller(self, key: str) -> Caller:
        entry = self._api_keys.find(key.strip())
        if entry is None:
            raise InvalidCredentials("unknown API key", error=None)
        scopes = frozenset(entry.scopes)
        return Caller(
            client_id=entry.client_id,
            scopes=scopes,
            tier=entry.tier,
            method="api_key",
            admin=self.settings.admin_scope in scopes,
        )


def _string_claim(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidCredentials(f"invalid {name} claim")
    return value


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    """OAuth's space-separated ``scope``, else ``scp`` (a list, or a string like ``scope``)."""
    value = claims.get("scope", claims.get("scp"))
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return frozenset(_split_all(value))
    raise InvalidCredentials("invalid scope claim")


def _split_all(values: Iterable[str]) -> Iterable[str]:
    for value in values:
        yield from value.split()
