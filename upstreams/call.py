"""What every upstream call carries: the request, its deadline, headers and an observer."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class CallObserver(Protocol):
    """Told about every finished call; the gateway uses it for its debug record and metrics."""

    def call_finished(
        self, upstream: str, operation: str, seconds: float, error: BaseException | None
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class CallScope:
    """Per-request settings shared by every call made on behalf of one client request.

    ``deadline`` is a ``time.monotonic()`` instant after which no call may run;
    ``headers`` are forwarded to the upstream (HTTP headers, or gRPC metadata).
    """

    deadline: float | None = None
    request_id: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    observer: CallObserver | None = None

    def remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), or None without one."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())


UNSCOPED = CallScope()


@dataclass(frozen=True, slots=True)
class RestRequest:
    """An HTTP GET against a REST upstream: the path and its query parameters."""

    path: str
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def operation(self) -> str:
        return f"GET {self.path}"


@dataclass(frozen=True, slots=True)
class GrpcRequest:
    """A unary gRPC call: the full method path and the request message."""

    method: str
    message: Any
    response_type: Any

    @property
    def operation(self) -> str:
        return self.method.rsplit("/", 1)[-1]


UpstreamRequest = RestRequest | GrpcRequest
