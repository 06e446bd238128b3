"""``CostMeasurement``: what one operation was estimated at and cost, on its request context."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from switchyard.cost.report import CostReport

COST_ATTRIBUTE = "cost"
"""Where ``CostAnalysis`` leaves its ``CostMeasurement`` on the request context."""


@dataclass(slots=True)
class CostMeasurement:
    """What ``CostAnalysis`` leaves on the request context (``context.cost``)."""

    estimate: CostReport
    maximum: int
    actual: int | None = None
    """Set after execution; stays None when the operation was rejected."""

    @property
    def requested(self) -> int:
        return self.estimate.cost

    @property
    def exceeds_maximum(self) -> bool:
        return self.estimate.cost > self.maximum


def measurement_of(context: Any) -> CostMeasurement | None:
    """The ``CostMeasurement`` ``CostAnalysis`` left on ``context``, if any."""
    if isinstance(context, Mapping):
        found = context.get(COST_ATTRIBUTE)
    else:
        found = getattr(context, COST_ATTRIBUTE, None)
    return found if isinstance(found, CostMeasurement) else None
