"""The one error authentication raises; its reason is what the client is told.

Reasons are short, fixed phrases ("token expired", "bad signature") that go
into the 401 body and the ``WWW-Authenticate`` header. They never contain the
credential or anything taken from it.
"""

from __future__ import annotations


class InvalidCredentials(Exception):
    """Credentials were sent (or required) and do not identify a caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
