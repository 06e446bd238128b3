"""The access log: one line per GraphQL request, on the ``switchyard.access`` logger.

JSON in production (one object a line, for a log pipeline)::

    {"time": "2026-11-30T14:03:01.123Z", "request_id": "4bf9...", "client_id": "demo-admin",
     "operation": "Orders", "type": "query", "status": 200, "duration_ms": 12.4,
     "estimated_cost": 53, "actual_cost": 41, "upstream_calls": 7, "upstream_errors": 0,
     "errors": []}

and a readable line in development::

    14:03:01.123 4bf9... demo-admin query Orders 200 12.4ms cost 53/41 upstreams 7 errors -

Lines are INFO records of ``switchyard.access``; ``switchyard serve`` writes them to
standard error as they are, whatever ``[server] log_level`` (``configure_logging``),
so ``[access_log] enabled`` is their one switch. Nothing secret is in a line: the
client is named by its id, never by its key or token.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from switchyard.telemetry.record import RequestTelemetry
from switchyard.telemetry.settings import AccessLogSettings

ACCESS_LOGGER = "switchyard.access"


class AccessLog:
    def __init__(self, settings: AccessLogSettings, *, production: bool) -> None:
        self.json = settings.format == "json" or (settings.format == "auto" and production)
        self.logger = logging.getLogger(ACCESS_LOGGER)

    def write(
        self,
        record: RequestTelemetry,
        *,
        request_id: str,
        client_id: str,
        status: int,
        seconds: float,
        trace_id: str | None = None,
    ) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        context = record.context
        estimated = actual = None
        if context is not None and context.cost is not None:
            estimated = context.cost.requested
            actual = context.cost.actual
        now = datetime.now(UTC)
        codes = record.error_codes or []
        if self.json:
            entry: dict[str, Any] = {
                "time": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "request_id": request_id,
                "client_id": client_id,
                "operation": record.operation_name,
                "type": record.operation_type,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "estimated_cost": estimated,
                "actual_cost": actual,
                "upstream_calls": record.upstream_calls,
                "upstream_errors": record.upstream_errors,
                "errors": codes,
            }
            if trace_id is not None:
                entry["trace_id"] = trace_id
            line = orjson.dumps(entry).decode()
        else:
            cost = "-" if estimated is None else f"{estimated}/{'-' if actual is None else actual}"
            line = (
                f"{now:%H:%M:%S}.{now.microsecond // 1000:03d} {request_id} {client_id} "
                f"{record.operation_type or '-'} {record.operation_name or '-'} {status} "
                f"{seconds * 1000:.1f}ms cost {cost} upstreams {record.upstream_calls} "
                f"errors {','.join(codes) or '-'}"
            )
            if trace_id is not None:
                line += f" trace {trace_id}"
        self.logger.info(line, extra={"request_id": request_id, "access": True})
