"""A circuit breaker in front of one instance: stop calling what keeps failing.

::

    closed ──(failure_ratio of ≥ min_calls calls in the window failed)──> open
    open ──(open_for seconds)──> half_open: up to half_open_probes calls let through
    half_open ──(that many probes succeeded)──> closed     (the window starts afresh)
    half_open ──(a probe failed)──> open                  (for open_for again)

While open it answers ``UpstreamRefused`` (client code ``UPSTREAM_UNAVAILABLE``)
without a network call; the balancer skips an instance whose breaker is not
``available()``, so a refusal is only seen when every instance is out.

Failures are what says the instance is unwell: ``UpstreamUnavailable`` and
``UpstreamTimeout``. A 404, a rejected argument or a malformed answer came from a
working instance and counts as a success; a cancelled call counts as nothing.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from enum import StrEnum
from typing import Any

from switchyard.upstream.call import CallScope, UpstreamRequest
from switchyard.upstream.errors import (
    UpstreamError,
    UpstreamRefused,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from switchyard.upstream.settings import BreakerSettings
from switchyard.upstream.transport import Transport
from switchyard.upstream.window import Clock, SlidingWindow

logger = logging.getLogger("switchyard.upstream")


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


def is_failure(error: UpstreamError) -> bool:
    """Whether ``error`` says the instance is unwell (what a breaker counts)."""
    return isinstance(error, UpstreamUnavailable | UpstreamTimeout) and not isinstance(
        error, UpstreamRefused
    )


class CircuitBreaker(Transport):
    """Wraps one instance's transport; counters are kept for tests and metrics.

    ``transitions`` counts each change as ``"closed->open"`` and so on.
    """

    def __init__(
        self,
        inner: Transport,
        settings: BreakerSettings,
        *,
        name: str,
        instance: str = "",
        clock: Clock = time.monotonic,
    ) -> None:
        self.inner = inner
        self.settings = settings
        self.name = name
        self.instance = instance
        self._clock = clock
        self._window = SlidingWindow(settings.window, clock=clock)
        self._state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._probes = 0  # half open: probes in flight
        self._probe_successes = 0
        self._epoch = 0
        self.calls = 0
        self.failures = 0
        self.rejected = 0
        self.transitions: Counter[str] = Counter()

    @property
    def state(self) -> BreakerState:
        """The state now; an open breaker whose ``open_for`` has passed is half open."""
        if (
            self._state is BreakerState.OPEN
            and self._clock() - self._opened_at >= self.settings.open_for
        ):
            self._move(BreakerState.HALF_OPEN)
        return self._state

    def available(self) -> bool:
        """Whether a call would be let through now."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        return state is BreakerState.HALF_OPEN and self._probes < self.settings.half_open_probes

    async def handle(self, request: UpstreamRequest, scope: CallScope) -> Any:
        if not self.available():
            self.rejected += 1
            raise UpstreamRefused(self.name, request.operation, "circuit open")
        # A probe belongs to one half-open period (``_epoch``): once the state has moved
        # on, its answer is counted as any other call's.
        probe = self._epoch if self._state is BreakerState.HALF_OPEN else None
        if probe is not None:
            self._probes += 1
        self.calls += 1
        try:
            answer = await self.inner.handle(request, scope)
        except UpstreamError as exc:
            self._record(failed=is_failure(exc), probe=probe)
            raise
        except BaseException:
            if probe == self._epoch:
                self._probes -= 1
            raise
        self._record(failed=False, probe=probe)
        return answer

    def _record(self, *, failed: bool, probe: int | None) -> None:
        if failed:
            self.failures += 1
        if probe is not None and probe == self._epoch:
            self._probes -= 1
            if failed:
                self._open()
                return
            self._probe_successes += 1
            if self._probe_successes >= self.settings.half_open_probes:
                self._window.clear()
                self._move(BreakerState.CLOSED)
            return
        self._window.add(1, int(failed))
        if failed and self._state is BreakerState.CLOSED:
            calls, failures = self._window.totals()
            if calls >= self.settings.min_calls and failures >= self.settings.failure_ratio * calls:
                self._open()

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._move(BreakerState.OPEN)

    def _move(self, state: BreakerState) -> None:
        if state is not self._state:
            change = f"{self._state}->{state}"
            self.transitions[change] += 1
            self._state = state
            logger.log(
                logging.WARNING if state is BreakerState.OPEN else logging.INFO,
                "circuit of %s %s: %s",
                self.name,
                self.instance,
                change,
                extra={"upstream": self.name},
            )
        self._epoch += 1
        self._probes = 0
        self._probe_successes = 0

    def snapshot(self) -> dict[str, Any]:
        """The state and counters, for ``/readyz`` and tests."""
        calls, failures = self._window.totals()
        return {
            "state": self.state.value,
            "window": {"calls": calls, "failures": failures},
            "rejected": self.rejected,
        }

    async def check(self, timeout: float) -> bool:
        return await self.inner.check(timeout)

    async def aclose(self) -> None:
        await self.inner.aclose()
