"""``CostMeasurement``: what one operation was estimated at and cost, on its request context."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError

from switchyard.cost.report import CostReport

COST_ATTRIBUTE = "cost"
"""Where ``CostAnalysis`` leaves its ``CostMeasurement`` on the request context."""


@dataclass(slots=True)
class CostMeasurement:
    """What ``CostAnalysis`` leaves on the request context (``context.cost``)."""

    estimate: CostReport
    maximum: int
    actual: int | None = None
    """Set after execution, the larger of ``measured`` and ``work``; None when refused."""
    measured: int | None = None
    """What the response shows: its fields and list items, as the estimate counts them."""
    work: int = 0
    """What the request made upstreams do: one point per call, one per item received."""
    enforced: bool = True
    """Whether refusals apply (``enforce``) or are only reported (``measure``)."""
    refusal: GraphQLError | None = None
    """In ``measure`` mode, the error ``enforce`` would have refused the operation with."""

    @property
    def requested(self) -> int:
        return self.estimate.cost

    @property
    def exceeds_maximum(self) -> bool:
        return self.estimate.cost > self.maximum

    @property
    def unused(self) -> int:
        """Points of the estimate the operation did not use: what a refund may give back.

        Never more than the estimate minus the work done, whatever the response shows;
        nothing before the operation was measured.
        """
        return 0 if self.actual is None else max(0, self.requested - self.actual)

    def settle(self, measured: int, work: int) -> None:
        """Record the response's cost and the work done; the actual cost is the larger."""
        self.measured = measured
        self.work = work
        self.actual = max(measured, work)


def measurement_of(context: Any) -> CostMeasurement | None:
    """The ``CostMeasurement`` ``CostAnalysis`` left on ``context``, if any."""
    if isinstance(context, Mapping):
        found = context.get(COST_ATTRIBUTE)
    else:
        found = getattr(context, COST_ATTRIBUTE, None)
    return found if isinstance(found, CostMeasurement) else None
