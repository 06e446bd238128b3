"""What every upstream call carries: the request, its deadline, headers and an observer."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from switchyard.deadline import Deadline


class CallObserver(Protocol):
    """Told about every finished call; the gateway uses it for its debug record and metrics."""

    def call_finished(
        self, upstream: str, operation: str, seconds: float, error: BaseException | None
    ) -> None: ...


SUBJECT_HEADER = "x-switchyard-subject"
SCOPES_HEADER = "x-switchyard-scopes"
CLIENT_ID_HEADER = "x-switchyard-client-id"
IDENTITY_HEADERS = (SUBJECT_HEADER, SCOPES_HEADER, CLIENT_ID_HEADER)
"""Headers (REST) or metadata keys (gRPC) naming the caller; only the gateway may set them."""


@dataclass(frozen=True, slots=True)
class ForwardedIdentity:
    """Who the gateway decided the caller is, in the form upstreams may be told it.

    Each upstream's settings choose what it gets::

        >>> ForwardedIdentity("web", "42", frozenset({"orders:read"})).headers(
        ...     bearer_token=False, identity=True)
        {'x-switchyard-client-id': 'web', 'x-switchyard-subject': '42', ...}
    """

    client_id: str
    subject: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    bearer_token: str | None = field(default=None, repr=False)

    def headers(self, *, bearer_token: bool, identity: bool) -> dict[str, str]:
        headers: dict[str, str] = {}
        if bearer_token and self.bearer_token is not None:
            headers["authorization"] = f"Bearer {self.bearer_token}"
        if identity:
            headers[CLIENT_ID_HEADER] = _header_safe(self.client_id)
            if self.subject is not None:
                headers[SUBJECT_HEADER] = _header_safe(self.subject)
            headers[SCOPES_HEADER] = _header_safe(" ".join(sorted(self.scopes)))
        return headers


def _header_safe(value: str) -> str:
    # Claims are arbitrary JSON strings; HTTP headers and gRPC metadata take printable ASCII.
    if value.isascii() and value.isprintable():
        return value
    return quote(value, safe="")


@dataclass(frozen=True, slots=True)
class CallScope:
    """Per-request settings shared by every call made on behalf of one client request.

    ``deadline`` is the request's, after which no call may run;
    ``headers`` are sent to every upstream (HTTP headers, or gRPC metadata);
    ``identity`` is the caller, which each upstream forwards as its settings say;
    ``on_response_headers`` is told the headers of every HTTP answer, error statuses
    included, as ``(upstream, headers)`` (the request's ``ResponseHeaders``, or a
    layer's capture: ``switchyard.upstream.headers``).
    """

    deadline: Deadline | None = None
    request_id: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    observer: CallObserver | None = None
    identity: ForwardedIdentity | None = None
    on_response_headers: Callable[[str, Mapping[str, str]], None] | None = None

    def remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), or None without one."""
        return None if self.deadline is None else self.deadline.remaining()

    def with_headers(self, headers: Mapping[str, str]) -> CallScope:
        """This scope sending ``headers`` too (built directly: ``dataclasses.replace``
        costs several times more, and it runs for every call).

        >>> CallScope(headers={"a": "1"}).with_headers({"b": "2"}).headers
        {'a': '1', 'b': '2'}
        """
        return CallScope(
            self.deadline,
            self.request_id,
            {**self.headers, **headers},
            self.observer,
            self.identity,
            self.on_response_headers,
        )


UNSCOPED = CallScope()


JsonBody = Any
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


@dataclass(frozen=True, slots=True)
class RestRequest:
    """An HTTP request against a REST upstream: any method, a JSON or form body.

    >>> RestRequest("/users", {"ids": "1,2"}).operation
    'GET /users'
    >>> RestRequest("/reviews", method="POST", json={"rating": 5}).idempotent
    False
    """

    path: str
    params: Mapping[str, str] = field(default_factory=dict)
    method: str = "GET"
    json: JsonBody = None
    form: Mapping[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def operation(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def idempotent(self) -> bool:
        """Whether sending it twice is safe (what a retry policy may rely on)."""
        return self.method in IDEMPOTENT_METHODS


@dataclass(frozen=True, slots=True)
class GrpcRequest:
    """A unary gRPC call: the full method path, the request message and per-call metadata."""

    method: str
    message: Any
    response_type: Any
    metadata: Mapping[str, str] = field(default_factory=dict)
    idempotent: bool = True

    @property
    def operation(self) -> str:
        return self.method.rsplit("/", 1)[-1]


class UpstreamRequest(Protocol):
    """What a transport takes: ``RestRequest``, ``GrpcRequest``, or a graph's own kind's request."""

    @property
    def operation(self) -> str:
        """A short name for logs and the debug record (``GET /users``, ``BatchGetStock``)."""
        ...

    @property
    def idempotent(self) -> bool: ...
