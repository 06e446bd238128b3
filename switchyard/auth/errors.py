"""The one error authentication raises; its reason is what the client is told.

Reasons are short, fixed phrases ("token expired", "bad signature") that go
into the 401 body and the ``WWW-Authenticate`` header. They never contain the
credential or anything taken from it.

``error`` is the RFC 6750 error code of the challenge: ``invalid_token`` (the
default) for a bearer token that was sent and failed, ``invalid_request`` for a
request that is malformed (two credentials), None when no bearer token was sent
(no credentials, another scheme, an unknown API key): the challenge then names
only the realm.
"""

from __future__ import annotations

from typing import Literal

BearerError = Literal["invalid_token", "invalid_request"]


class InvalidCredentials(Exception):
    """Credentials were sent (or required) and do not identify a caller."""

    def __init__(self, reason: str, *, error: BearerError | None = "invalid_token") -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error
