"""Tokens for development, signed with the config's key marked ``dev = true``.

    token = mint_dev_token(config.auth.jwt, subject="42", scopes=["orders:read"], ttl=3600)

Only a key explicitly marked as a development key signs: a production config
(whose keys are not so marked) cannot be used to mint tokens.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import jwt

from switchyard.auth.settings import JwtSettings

DEFAULT_TTL = 3600


class NoDevKey(Exception):
    """The config has no key ``switchyard token`` may sign with; the message says why."""


def mint_dev_token(
    settings: JwtSettings,
    *,
    subject: str,
    scopes: Sequence[str] = (),
    ttl: int = DEFAULT_TTL,
    now: float | None = None,
) -> str:
    """A token for ``subject`` the gateway configured with ``settings`` accepts."""
    dev_keys = [key for key in settings.keys if key.dev]
    if not dev_keys:
        raise NoDevKey("no JWT key in this config is marked dev = true")
    key = dev_keys[0]
    if key.secret is None:
        raise NoDevKey("the dev key is a public key; only an HMAC secret can sign")
    issued = int(time.time() if now is None else now)
    claims: dict[str, object] = {"sub": subject, "iat": issued, "exp": issued + ttl}
    if scopes:
        claims["scope"] = " ".join(scopes)
    if settings.issuer is not None:
        claims["iss"] = settings.issuer
    if settings.audience is not None:
        claims["aud"] = settings.audience
    headers = {"kid": key.kid} if key.kid is not None else None
    return jwt.encode(
        claims, key.secret.get_secret_value(), algorithm=key.algorithms[0], headers=headers
    )
