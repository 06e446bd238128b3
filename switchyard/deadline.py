"""The one deadline of a request, shared by every upstream call made for it."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class Deadline:
    """A ``time.monotonic()`` instant; ``remaining()`` is the only place time left is computed.

    >>> Deadline.after(10.0).remaining() > 9.0
    True
    >>> Deadline(at=0.0).remaining()
    0.0
    """

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.at - time.monotonic())
