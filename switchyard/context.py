"""The one context each GraphQL request carries through every stage."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property

from graphql import GraphQLError
from starlette.responses import Response

from resolvers.context import Caller
from resolvers.loaders import Loaders
from switchyard.cost import CostMeasurement
from switchyard.debug import DebugRecord
from switchyard.rate_limit import BudgetCharge
from upstreams.call import CallScope, ForwardedIdentity
from upstreams.clients import DemoClients

ANONYMOUS = Caller(client_id="anonymous")


@dataclass(slots=True, frozen=True)
class Deadline:
    """A ``time.monotonic()`` instant shared by every upstream call of one request."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return max(0.0, self.at - time.monotonic())


@dataclass
class RequestContext:
    """Caller, deadline, loaders and debug record of one request (``info.context``)."""

    request_id: str
    caller: Caller
    deadline: Deadline
    clients: DemoClients
    response: Response
    debug: DebugRecord | None = None
    extensions: dict[str, object] = field(default_factory=dict)
    bearer_token: str | None = field(default=None, repr=False)
    field_errors: list[GraphQLError] = field(default_factory=list)
    """Errors of fields answered with a stand-in value (see ``schema.authorization``)."""
    client_key: str = "anonymous"
    """Whose budget this request is charged to (``switchyard.budgets.client_key``)."""
    cost: CostMeasurement | None = None
    budget: BudgetCharge | None = None
    explain_cost: bool = False

    @cached_property
    def scope(self) -> CallScope:
        caller = self.caller
        identity = None
        if caller.authenticated:
            identity = ForwardedIdentity(
                client_id=caller.client_id,
                subject=caller.subject,
                scopes=caller.scopes,
                bearer_token=self.bearer_token,
            )
        return CallScope(
            deadline=self.deadline.at,
            request_id=self.request_id,
            headers={"x-request-id": self.request_id},
            observer=self.debug,
            identity=identity,
        )

    @cached_property
    def loaders(self) -> Loaders:
        # Created on first use, inside the running event loop, for this request only.
        return Loaders(self.clients, self.scope)
