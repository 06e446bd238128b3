"""Who is calling: decided once at the HTTP edge, read by every later stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

AuthMethod = Literal["anonymous", "jwt", "api_key"]


@dataclass(frozen=True, slots=True)
class Caller:
    """The identity of one request.

    ``client_id`` keys budgets and logs; ``subject`` is the end user a JWT names;
    ``admin`` says the caller holds the configured admin scope (reads anyone's data).

    >>> Caller(client_id="web", subject="42", method="jwt").authenticated
    True
    >>> ANONYMOUS.authenticated
    False
    """

    client_id: str
    subject: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    tier: str = "anonymous"
    method: AuthMethod = "anonymous"
    admin: bool = False

    @property
    def authenticated(self) -> bool:
        return self.method != "anonymous"


ANONYMOUS = Caller(client_id="anonymous")
