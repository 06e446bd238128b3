"""Bearer token verification with pyjwt: keys from config or a JWKS, each with its algorithms.

    verifier = TokenVerifier.from_settings(settings.jwt)
    claims = await verifier.verify(token)      # raises InvalidCredentials("token expired")

The token's header only chooses among configured keys: its ``alg`` must be in
the chosen key's allow-list (so ``none``, or HS256 against an RSA key, never
verifies), and its ``kid`` must name a configured or published key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt

from switchyard.auth.errors import InvalidCredentials
from switchyard.auth.jwks import JwksClient
from switchyard.auth.settings import JwtSettings

REQUIRED_CLAIMS = ("exp",)

# Most specific first (several subclass InvalidTokenError).
_REASONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "token expired"),
    (jwt.ImmatureSignatureError, "token not yet valid"),
    (jwt.InvalidIssuedAtError, "invalid iat claim"),
    (jwt.InvalidIssuerError, "wrong issuer"),
    (jwt.InvalidAudienceError, "wrong audience"),
    (jwt.MissingRequiredClaimError, "missing required claim"),
    (jwt.InvalidSignatureError, "bad signature"),
    (jwt.InvalidAlgorithmError, "algorithm not allowed"),
    (jwt.InvalidKeyError, "unusable key"),
    (jwt.DecodeError, "malformed token"),
)


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A configured key: what pyjwt verifies with, and the algorithms it may verify."""

    kid: str | None
    key: Any
    algorithms: frozenset[str]


class TokenVerifier:
    """Verifies compact JWS tokens against static keys and, optionally, a JWKS."""

    def __init__(
        self,
        settings: JwtSettings,
        keys: Sequence[VerificationKey],
        jwks: JwksClient | None = None,
    ) -> None:
        self.settings = settings
        self._keys = list(keys)
        self._jwks = jwks
        self._algorithms = frozenset(a for k in keys for a in k.algorithms) | frozenset(
            jwks.settings.algorithms if jwks is not None else ()
        )
        self._options: dict[str, Any] = {
            "require": list(REQUIRED_CLAIMS),
            "verify_aud": settings.audience is not None,
            "verify_iss": settings.issuer is not None,
            "enforce_minimum_key_length": True,
        }

    @classmethod
    def from_settings(cls, settings: JwtSettings) -> TokenVerifier:
        keys = [
            VerificationKey(
                kid=key.kid,
                key=key.secret.get_secret_value().encode()
                if key.secret is not None
                else key.load_public_key(),
                algorithms=frozenset(key.algorithms),
            )
            for key in settings.keys
        ]
        jwks = JwksClient(settings.jwks) if settings.jwks is not None else None
        return cls(settings, keys, jwks)

    async def verify(self, token: str) -> dict[str, Any]:
        """The claims, once the signature and ``exp``, ``nbf``, ``iat``, ``iss``, ``aud`` hold."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise InvalidCredentials("malformed token") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if not isinstance(algorithm, str) or algorithm not in self._algorithms:
            raise InvalidCredentials("algorithm not allowed")
        if kid is not None and not isinstance(kid, str):
            raise InvalidCredentials("malformed token")
        candidates = await self._candidates(kid, algorithm)
        for index, (key, algorithms) in enumerate(candidates):
            try:
                claims: dict[str, Any] = jwt.decode(
                    token,
                    key,
                    algorithms=algorithms,
                    audience=self.settings.audience,
                    issuer=self.settings.issuer,
                    leeway=self.settings.leeway,
                    options=self._options,  # type: ignore[arg-type]
                )
            except jwt.InvalidSignatureError:
                if index + 1 < len(candidates):
                    continue  # a kid-less token may match a later key
                raise InvalidCredentials("bad signature") from None
            except jwt.PyJWTError as exc:
                raise InvalidCredentials(_reason(exc)) from None
            return claims
        raise InvalidCredentials("algorithm not allowed")

    async def _candidates(self, kid: str | None, algorithm: str) -> list[tuple[Any, list[str]]]:
        """Keys to try, each with the algorithm it may verify this token with."""
        if kid is None:
            unnamed = [(k.key, [algorithm]) for k in self._keys if algorithm in k.algorithms]
            if unnamed or self._jwks is None:
                return unnamed
            published_keys = await self._jwks.keys_without_kid(algorithm)
            if not self._jwks.loaded:
                raise InvalidCredentials("signing keys unavailable")
            return [(key, [key.algorithm_name]) for key in published_keys]
        named = [k for k in self._keys if k.kid == kid]
        if not named and self._jwks is not None:
            published = await self._jwks.key(kid)
            if published is not None:
                return [(published, [published.algorithm_name])]
            if not self._jwks.loaded:
                raise InvalidCredentials("signing keys unavailable")
        if not named:
            # A configured key without a kid accepts tokens whatever kid they carry.
            named = [k for k in self._keys if k.kid is None]
        if not named:
            raise InvalidCredentials("unknown key id")
        return [(k.key, [algorithm]) for k in named if algorithm in k.algorithms]


def _reason(exc: jwt.PyJWTError) -> str:
    for error_type, reason in _REASONS:
        if isinstance(exc, error_type):
            return reason
    return "invalid token"
