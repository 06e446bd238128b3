"""Counts over the last few seconds, for the circuit breaker and the retry budget.

>>> now = [0.0]
>>> window = SlidingWindow(10.0, clock=lambda: now[0])
>>> window.add(1, 0); now[0] = 5.0; window.add(1, 1)
>>> window.totals()
(2, 1)
>>> now[0] = 10.5; window.totals()   # the first second has left the window
(1, 1)
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

Clock = Callable[[], float]
"""Seconds from an arbitrary start (``time.monotonic``); tests pass a fake one."""

DEFAULT_BUCKETS = 10


class SlidingWindow:
    """Two counters summed over the last ``seconds``, kept in ``buckets`` slots of time.

    A slot leaves the window whole, so the window is ``seconds`` long to within one slot.
    """

    __slots__ = ("_clock", "_slots", "_width", "buckets")

    def __init__(
        self, seconds: float, *, clock: Clock = time.monotonic, buckets: int = DEFAULT_BUCKETS
    ) -> None:
        self.buckets = buckets
        self._width = seconds / buckets
        self._clock = clock
        # [slot number, first counter, second counter], oldest first
        self._slots: deque[list[int]] = deque()

    def add(self, first: int, second: int) -> None:
        slot = int(self._clock() / self._width)
        slots = self._slots
        if slots and slots[-1][0] == slot:
            last = slots[-1]
            last[1] += first
            last[2] += second
        else:
            slots.append([slot, first, second])
            self._expire(slot)

    def totals(self) -> tuple[int, int]:
        """Both counters over the window."""
        self._expire(int(self._clock() / self._width))
        first = second = 0
        for _, a, b in self._slots:
            first += a
            second += b
        return first, second

    def clear(self) -> None:
        self._slots.clear()

    def _expire(self, slot: int) -> None:
        oldest = slot - self.buckets
        slots = self._slots
        while slots and slots[0][0] <= oldest:
            slots.popleft()
