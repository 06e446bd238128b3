"""What resolvers need from the per-request context; the gateway's RequestContext provides it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from upstreams.call import CallScope
from upstreams.clients import DemoClients

if TYPE_CHECKING:
    from resolvers.loaders import Loaders

AuthMethod = Literal["anonymous", "jwt", "api_key"]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling, decided once at the HTTP edge.

    ``client_id`` keys budgets and logs; ``subject`` is the end user a JWT names;
    ``admin`` says the caller holds the configured admin scope (reads anyone's data).
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


class GraphContext(Protocol):
    """The part of the request context that resolvers and permissions read."""

    @property
    def caller(self) -> Caller: ...

    @property
    def loaders(self) -> Loaders: ...

    @property
    def clients(self) -> DemoClients: ...

    @property
    def scope(self) -> CallScope: ...
