"""The one deadline of a request, shared by every upstream call made for it.

The deadline is made with the request's context (``[server] request_timeout``)
and moved once the operation is known: ``[server.operation_timeouts]`` gives an
operation, by name, a timeout of its own, capped by ``max_request_timeout``
(``OperationDeadline``). Every call reads the same object, through
``CallScope.remaining``, so the move reaches calls already planned.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strawberry.extensions import SchemaExtension

if TYPE_CHECKING:
    from switchyard.config import ServerSettings


@dataclass(slots=True, eq=False)
class Deadline:
    """A ``time.monotonic()`` instant; ``remaining()`` is the only place time left is computed.

    ``start`` is when the request began: ``set_timeout`` counts from it.

    >>> Deadline.after(10.0).remaining() > 9.0
    True
    >>> Deadline(at=0.0).remaining()
    0.0
    >>> deadline = Deadline.after(10.0)
    >>> deadline.set_timeout(0.0)
    >>> deadline.remaining()
    0.0
    """

    at: float
    start: float | None = None

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        now = time.monotonic()
        return cls(now + seconds, now)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.at - time.monotonic())

    def set_timeout(self, seconds: float) -> None:
        """Move the deadline to ``seconds`` after the request began (now, without a start)."""
        self.at = (time.monotonic() if self.start is None else self.start) + seconds


def operation_timeouts(timeouts: Mapping[str, float], maximum: float | None) -> dict[str, float]:
    """Each operation's timeout, capped by ``maximum``.

    >>> operation_timeouts({"Checkout": 30.0, "Search": 0.5}, 20.0)
    {'Checkout': 20.0, 'Search': 0.5}
    """
    if maximum is None:
        return dict(timeouts)
    return {name: min(seconds, maximum) for name, seconds in timeouts.items()}


class OperationDeadline(SchemaExtension):
    """Before execution, moves the request's deadline to its operation's own timeout, if any.

    Added to the pipeline only when ``[server.operation_timeouts]`` names an operation.
    """

    def __init__(self, timeouts: Mapping[str, float]) -> None:
        self._timeouts = timeouts

    @classmethod
    def units(cls, server: ServerSettings) -> list[Callable[[], SchemaExtension]]:
        """The stage's unit for ``server``'s settings: none without operation timeouts."""
        if not server.operation_timeouts:
            return []
        timeouts = operation_timeouts(server.operation_timeouts, server.max_request_timeout)
        return [lambda: cls(timeouts)]

    def on_execute(self) -> Iterator[None]:
        execution = self.execution_context
        name = execution.operation_name
        if name is not None:
            seconds = self._timeouts.get(name)
            deadline: Any = getattr(execution.context, "deadline", None)
            if seconds is not None and isinstance(deadline, Deadline):
                deadline.set_timeout(seconds)
        yield
