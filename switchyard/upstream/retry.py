"""Retries of idempotent calls, on tenacity, bounded by the deadline and a budget.

A call is retried when all of these hold:

- it is safe to send twice: a REST ``GET``/``HEAD``/``OPTIONS``, a gRPC call marked
  ``idempotent`` (the default), or any call of an upstream marked ``idempotent = true``;
- it failed in a way another try may cure (``UpstreamError.retryable``): a refused or
  lost connection, 502/503/504, gRPC ``UNAVAILABLE``. Timeouts are not retried (the
  time is spent), nor refusals of the gateway's own (open circuit, full bulkhead);
- fewer than ``attempts`` calls were made;
- the wait fits in what is left of the request's deadline. The wait is drawn with full
  jitter, uniform from 0 to ``backoff * 2**(retry - 1)`` (at most ``max_backoff``), and
  is at least the upstream's ``Retry-After`` (gRPC: ``grpc-retry-pushback-ms``);
- the upstream's retry budget has a token (``RetryBudget``): retries stay under
  ``budget`` (10%) of the calls over the last ``budget_window`` seconds, plus
  ``min_per_second`` so a quiet upstream can still retry, whatever the outage.

Each attempt goes through the bulkhead and the balancer again, which prefers an
instance this call has not tried yet.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_random_exponential

from switchyard.upstream.balancing import TRIED
from switchyard.upstream.call import CallScope, RestRequest, UpstreamRequest
from switchyard.upstream.errors import UpstreamError
from switchyard.upstream.settings import RetrySettings
from switchyard.upstream.transport import Transport
from switchyard.upstream.window import Clock, SlidingWindow

Sleep = Callable[[float], Awaitable[None]]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_EPSILON = 1e-9


class RetryBudget:
    """Tokens for retries, as Finagle's and Envoy's retry budgets: each call deposits
    ``ratio`` of a token, each retry takes one; ``min_per_second * window`` tokens are
    always there. Deposits and withdrawals older than ``window`` seconds no longer count.

    >>> budget = RetryBudget(0.1, min_per_second=0, window=10, clock=lambda: 0.0)
    >>> for _ in range(25):
    ...     budget.deposit()
    >>> [budget.try_withdraw() for _ in range(3)]
    [True, True, False]
    """

    def __init__(
        self, ratio: float, *, min_per_second: float, window: float, clock: Clock = time.monotonic
    ) -> None:
        self.ratio = ratio
        self.reserve = min_per_second * window
        self._window = SlidingWindow(window, clock=clock)

    def deposit(self) -> None:
        self._window.add(1, 0)

    def balance(self) -> float:
        calls, retries = self._window.totals()
        return self.reserve + self.ratio * calls - retries

    def try_withdraw(self) -> bool:
        if self.balance() < 1 - _EPSILON:
            return False
        self._window.add(0, 1)
        return True


def retryable_error(error: BaseException) -> bool:
    return isinstance(error, UpstreamError) and error.retryable


class Retrying(Transport):
    """Retries what ``inner`` failed, within the rules above; counters for tests and metrics.

    ``calls`` counts calls (first attempts), ``retries`` the attempts after them;
    ``stopped`` why retrying stopped early: ``attempts``, ``deadline``, ``budget``.
    """

    def __init__(
        self,
        inner: Transport,
        settings: RetrySettings,
        *,
        name: str,
        idempotent_upstream: bool = False,
        timeout: float,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.inner = inner
        self.settings = settings
        self.name = name
        self.idempotent_upstream = idempotent_upstream
        self.timeout = timeout
        self.budget = RetryBudget(
            settings.budget,
            min_per_second=settings.min_per_second,
            window=settings.budget_window,
            clock=clock,
        )
        self._backoff = wait_random_exponential(
            multiplier=settings.backoff, max=settings.max_backoff
        )
        self._sleep = sleep
        self.calls = 0
        self.retries = 0
        self.stopped: dict[str, int] = {"attempts": 0, "deadline": 0, "budget": 0}

    def may_retry(self, request: UpstreamRequest) -> bool:
        """Whether ``request`` is safe to send twice."""
        if self.idempotent_upstream:
            return True
        if isinstance(request, RestRequest):
            return request.method in SAFE_METHODS
        return request.idempotent

    async def handle(self, request: UpstreamRequest, scope: CallScope) -> Any:
        self.calls += 1
        self.budget.deposit()
        if not self.may_retry(request):
            return await self.inner.handle(request, scope)
        tried = TRIED.set(set())
        try:
            # The first attempt is made here, without tenacity's machinery: most succeed.
            try:
                return await self.inner.handle(request, scope)
            except UpstreamError as exc:
                if not exc.retryable:
                    raise
                first = exc
            return await self._retry(first, request, scope)
        finally:
            TRIED.reset(tried)

    async def _retry(self, first: UpstreamError, request: UpstreamRequest, scope: CallScope) -> Any:
        failed = [first]

        async def attempt() -> Any:
            if failed:  # tenacity's attempt 1 is the one already made
                raise failed.pop()
            return await self.inner.handle(request, scope)

        def stop(state: RetryCallState) -> bool:
            return self._stop(state, scope)

        retrying = AsyncRetrying(
            retry=retry_if_exception(retryable_error),
            wait=self._wait,
            stop=stop,
            sleep=self._sleep,
            reraise=True,
        )
        return await retrying(attempt)

    def _wait(self, state: RetryCallState) -> float:
        drawn = self._backoff(state)
        error = state.outcome.exception() if state.outcome is not None else None
        after = error.retry_after if isinstance(error, UpstreamError) else None
        return drawn if after is None else max(drawn, after)

    def _stop(self, state: RetryCallState, scope: CallScope) -> bool:
        """Whether to give up; called after the wait is drawn, last before sleeping,
        so a token is taken from the budget only for a retry that will be made."""
        if state.attempt_number >= self.settings.attempts:
            reason = "attempts"
        elif state.upcoming_sleep >= _time_left(scope, self.timeout):
            reason = "deadline"
        elif not self.budget.try_withdraw():
            reason = "budget"
        else:
            self.retries += 1
            return False
        self.stopped[reason] += 1
        return True

    def snapshot(self) -> dict[str, Any]:
        return {"calls": self.calls, "retries": self.retries, "budget": self.budget.balance()}

    async def check(self, timeout: float) -> bool:
        return await self.inner.check(timeout)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _time_left(scope: CallScope, timeout: float) -> float:
    """What is left of the request's deadline, or one call's ``timeout`` without one."""
    remaining = scope.remaining()
    return timeout if remaining is None else remaining
