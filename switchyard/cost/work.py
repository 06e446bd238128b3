"""``WorkMeter``: the work one request made upstreams do, the floor of its actual cost.

The response tells how much data came back, but not how much work it took: a
call that failed leaves a null, and a null that propagates erases what was
fetched below it. So the runtime counts as it goes, one meter per request::

    work = WorkMeter()
    scope = CallScope(observer=work)  # every Upstream.call is counted, failed ones too
    work.received(25)                 # items of the pages upstreams answered
    work.points                       # calls + items

``CostAnalysis`` reads the meter from the request context (its ``work``
attribute, or key) and never measures an operation at less than its points.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

WORK_ATTRIBUTE = "work"
"""Where ``CostAnalysis`` finds the request's meter on its context."""


class _Observer(Protocol):
    def call_finished(
        self, upstream: str, operation: str, seconds: float, error: BaseException | None
    ) -> None: ...


@dataclass(slots=True)
class WorkMeter:
    """Upstream calls made and items received by one request; a ``CallObserver``.

    ``then`` is told about every call too (the request's debug record).

    >>> work = WorkMeter()
    >>> work.call_finished("reviews", "GET /reviews", 0.01, None)
    >>> work.received(3)
    >>> (work.calls, work.items, work.points)
    (1, 3, 4)
    """

    calls: int = 0
    """Upstream calls made, whatever their outcome."""
    items: int = 0
    """Items of the lists (pages) upstreams answered."""
    then: _Observer | None = None

    def call_finished(
        self, upstream: str, operation: str, seconds: float, error: BaseException | None
    ) -> None:
        self.calls += 1
        if self.then is not None:
            self.then.call_finished(upstream, operation, seconds, error)

    def received(self, items: int) -> None:
        """Count ``items`` list items an upstream answered (a page's items)."""
        if items > 0:
            self.items += items

    @property
    def points(self) -> int:
        """What the work costs at least: one point per call and one per item."""
        return self.calls + self.items


def work_of(context: Any) -> WorkMeter | None:
    """The ``WorkMeter`` on a request context, if it has one."""
    if isinstance(context, Mapping):
        found = context.get(WORK_ATTRIBUTE)
    else:
        found = getattr(context, WORK_ATTRIBUTE, None)
    return found if isinstance(found, WorkMeter) else None
