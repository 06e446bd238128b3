"""The one context each GraphQL request carries through every stage (``info.context``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from starlette.responses import Response

from switchyard.caller import ANONYMOUS, Caller
from switchyard.cost import CostMeasurement
from switchyard.deadline import Deadline
from switchyard.debug import DebugRecord
from switchyard.edges import LoaderCache, upstream_of
from switchyard.rate_limit import BudgetCharge
from switchyard.service import Service
from switchyard.upstream.call import CallScope, ForwardedIdentity
from switchyard.upstream.upstream import Upstream


@dataclass
class RequestContext:
    """Caller, deadline, upstreams, loaders and debug record of one request.

    ``upstream(SERVICE)`` is the opened upstream a resolver calls;
    ``loaders`` holds the request's dataloaders (``switchyard.edges``).
    """

    request_id: str
    deadline: Deadline
    upstreams: Mapping[str, Upstream]
    response: Response
    caller: Caller = ANONYMOUS
    debug: DebugRecord | None = None
    extensions: dict[str, object] = field(default_factory=dict)
    bearer_token: str | None = field(default=None, repr=False)
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
            deadline=self.deadline,
            request_id=self.request_id,
            headers={"x-request-id": self.request_id},
            observer=self.debug,
            identity=identity,
        )

    def upstream(self, service: Service) -> Upstream:
        return upstream_of(self.upstreams, service)

    @cached_property
    def loaders(self) -> LoaderCache:
        # Created on first use, inside the running event loop, for this request only.
        return LoaderCache(self.upstreams, self.scope)
