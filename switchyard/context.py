"""The one context each GraphQL request carries through every stage (``info.context``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from starlette.responses import Response

from switchyard.caller import ANONYMOUS, Caller
from switchyard.cost import CostMeasurement, WorkMeter
from switchyard.deadline import Deadline
from switchyard.debug import DebugRecord
from switchyard.edges import LoaderCache, upstream_of
from switchyard.execution import ExecutionPath
from switchyard.rate_limit import BudgetCharge
from switchyard.service import Service
from switchyard.telemetry.record import RequestTelemetry
from switchyard.upstream.call import CallScope, ForwardedIdentity
from switchyard.upstream.headers import ResponseHeaders
from switchyard.upstream.upstream import Upstream


@dataclass
class RequestContext:
    """Caller, deadline, upstreams, loaders and debug record of one request.

    ``upstream(SERVICE)`` is the opened upstream a resolver calls;
    ``loaders`` holds the request's dataloaders (``switchyard.edges``);
    ``work`` counts every upstream call and the items of the pages received
    (edges count theirs; a resolver that calls a service for a list adds its
    items with ``work.received(n)``): the least the request is charged.
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
    work: WorkMeter = field(default_factory=WorkMeter)
    """Upstream calls made and items received: the floor of the actual cost."""
    execution: ExecutionPath | None = None
    """Which execution answered the operation (set as it starts)."""
    execution_fallback: str | None = None
    """Why the planned execution did not answer it (introspection, ...)."""
    response_headers: ResponseHeaders | None = None
    """The upstream answers' headers, by ``[response_headers]`` (None: no rule is on)."""
    telemetry: RequestTelemetry | None = None
    """What metrics, traces and the access log gather (None: all three are off)."""

    def __post_init__(self) -> None:
        if self.telemetry is not None:
            self.telemetry.context = self

    @cached_property
    def scope(self) -> CallScope:
        # Every call is counted (work), then shown in the debug record when there is one.
        telemetry = self.telemetry
        self.work.then = self.debug if telemetry is None else telemetry.observing(self.debug)
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
            observer=self.work,
            identity=identity,
            on_response_headers=self.response_headers,
        )

    def upstream(self, service: Service) -> Upstream:
        return upstream_of(self.upstreams, service)

    @cached_property
    def loaders(self) -> LoaderCache:
        # Created on first use, inside the running event loop, for this request only.
        return LoaderCache(self.upstreams, self.scope, work=self.work)

    def release(self) -> None:
        """Drop the loaders once the answer is made. graphql-core's executor refers to
        itself and to this context, so the request's objects are freed only by the
        garbage collector; without the loaders that is a few dozen objects instead of
        every record the upstreams answered (about 2,900 for the large benchmark query).
        """
        self.__dict__.pop("loaders", None)
