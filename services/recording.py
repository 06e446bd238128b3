"""A bounded in-memory log of the requests a service served, read by tests
through the admin interface (see ``services.admin``).

A record, in its JSON form::

    {"service": "accounts", "call": "GET /users", "query": "ids=1,2",
     "start": 1718000000.12, "end": 1718000000.13, "headers": {"user-agent": "..."}}
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

DEFAULT_MAX_RECORDS = 100_000


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One served request.

    ``call`` is ``"<METHOD> <route template>"`` for REST (``"GET /users/{id}"``) and the
    method name for gRPC (``"BatchGetProducts"``). ``query`` is the decoded query string
    for REST, with path parameters first (``"id=42"``), and ``name=value`` pairs joined by
    ``&`` for the set fields of a gRPC request (``"ids=1,2"``). ``start`` is taken before
    any injected latency, ``end`` after the handler finished (``time.time()`` seconds).
    ``headers`` maps lowercased header / metadata names to values (repeats joined by
    ``", "``), without pseudo headers and binary metadata: ``x-request-id`` and the W3C
    trace context (``traceparent``, ``tracestate``) the gateway sent, REST and gRPC alike.
    """

    service: str
    call: str
    query: str
    start: float
    end: float
    headers: dict[str, str]

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RequestRecord:
        return cls(
            service=str(data["service"]),
            call=str(data["call"]),
            query=str(data["query"]),
            start=float(data["start"]),
            end=float(data["end"]),
            headers={str(k): str(v) for k, v in dict(data["headers"]).items()},
        )


class RequestRecorder:
    """Keeps the last ``max_records`` records of one service."""

    def __init__(self, service: str, max_records: int = DEFAULT_MAX_RECORDS) -> None:
        self.service = service
        self._records: deque[RequestRecord] = deque(maxlen=max_records)

    def record(
        self, call: str, query: str, start: float, end: float, headers: dict[str, str]
    ) -> None:
        self._records.append(RequestRecord(self.service, call, query, start, end, headers))

    def records(self) -> list[RequestRecord]:
        return list(self._records)

    def clear(self) -> None:
        self._records.clear()


def merge_headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Lowercase names, join repeats, drop pseudo (``:path``) and binary (``-bin``) entries."""
    headers: dict[str, str] = {}
    for raw_name, value in pairs:
        name = raw_name.lower()
        if name.startswith(":") or name.endswith("-bin"):
            continue
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers
