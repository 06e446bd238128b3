"""The one error hierarchy every upstream call raises, whatever the wire.

httpx and grpc exceptions are translated here, at the boundary, so callers
never see a transport's own exception types::

    UpstreamError
    ├── UpstreamUnavailable      connection refused or reset, 5xx, gRPC UNAVAILABLE
    │   └── UpstreamRefused      not sent: circuit open, every instance ejected, bulkhead full
    ├── UpstreamTimeout          the call's deadline passed, gRPC DEADLINE_EXCEEDED
    ├── UpstreamNotFound         404, gRPC NOT_FOUND
    ├── UpstreamRejected         400/422, gRPC INVALID_ARGUMENT: the service refused the input
    └── UpstreamProtocolError    an answer that is not what the contract says

The message of an ``UpstreamError`` is for logs: it names the upstream and may
name its address. What a client sees is decided by the GraphQL layer.

``retryable`` marks a failure that sending the same idempotent request again may
cure (a refused or lost connection, 502/503/504, gRPC ``UNAVAILABLE``);
``retry_after`` is the upstream's own ``Retry-After`` in seconds, when it sent one.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({502, 503, 504})
"""HTTP statuses after which an idempotent request may be sent again."""


class UpstreamError(Exception):
    """A call to an upstream failed."""

    def __init__(
        self,
        upstream: str,
        operation: str,
        detail: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{upstream} {operation}: {detail}")
        self.upstream = upstream
        self.operation = operation
        self.detail = detail
        self.retryable = retryable
        self.retry_after = retry_after


class UpstreamUnavailable(UpstreamError):
    """The upstream could not be reached or answered with a server error."""


class UpstreamRefused(UpstreamUnavailable):
    """The gateway did not send the call: the instance's circuit is open, every instance
    is ejected, or the upstream's bulkhead is full. Never retried."""


class UpstreamTimeout(UpstreamError):
    """The upstream did not answer before the call's deadline."""


class UpstreamNotFound(UpstreamError):
    """The upstream says the requested resource does not exist."""


class UpstreamRejected(UpstreamError):
    """The upstream refused the request's parameters."""


class UpstreamProtocolError(UpstreamError):
    """The upstream answered something the contract does not allow."""


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay seconds or an HTTP date).

    >>> parse_retry_after("3"), parse_retry_after(None), parse_retry_after("soon")
    (3.0, None, None)
    >>> parse_retry_after("Thu, 01 Jan 1970 00:00:10 GMT", now=4.0)
    6.0
    """
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        at = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, at - (time.time() if now is None else now))
