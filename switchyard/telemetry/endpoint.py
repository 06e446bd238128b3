"""``/metrics``: on the gateway's port (a Starlette route), or on a port of its own.

With ``[metrics] token`` set, a scrape needs ``Authorization: Bearer <token>``
(compared in constant time); without it, anyone who reaches the port may read.
The separate port is served by a minimal HTTP/1.1 responder in the gateway's event
loop, bound with ``SO_REUSEPORT`` so every worker of ``serve --workers N`` binds it
(in multiprocess mode each answers for all of them).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from switchyard.telemetry.metrics import CONTENT_TYPE, GatewayMetrics
from switchyard.telemetry.settings import MetricsSettings

logger = logging.getLogger("switchyard.metrics")
_MAX_HEAD_BYTES = 16 * 1024
_READ_TIMEOUT = 5.0


def authorized(settings: MetricsSettings, authorization: str | None) -> bool:
    """Whether a scrape may read: no token configured, or the right bearer token.

    >>> s = MetricsSettings(token="0123456789abcdef")
    >>> authorized(s, "Bearer 0123456789abcdef"), authorized(s, "Bearer nope"), authorized(s, None)
    (True, False, False)
    """
    if settings.token is None:
        return True
    if authorization is None or not authorization.startswith("Bearer "):
        return False
    return hmac.compare_digest(authorization[7:].encode(), settings.token.encode())


def metrics_endpoint(metrics: GatewayMetrics) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint of ``/metrics`` on the gateway's port."""
    settings = metrics.settings

    async def endpoint(request: Request) -> Response:
        if not authorized(settings, request.headers.get("authorization")):
            return Response(
                "a bearer token is required\n",
                status_code=401,
                headers={"www-authenticate": "Bearer"},
                media_type="text/plain",
            )
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    return endpoint


class MetricsServer:
    """``/metrics`` alone on ``host:port`` (``[metrics] port``)."""

    def __init__(self, metrics: GatewayMetrics, host: str, port: int) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, reuse_port=True, limit=_MAX_HEAD_BYTES
        )
        if self.port == 0:
            self.port = self._server.sockets[0].getsockname()[1]

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_TIMEOUT)
            lines = head.decode("latin-1").split("\r\n")
            method, _, rest = lines[0].partition(" ")
            path = rest.partition(" ")[0].partition("?")[0]
            authorization = None
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "authorization":
                    authorization = value.strip()
            settings = self.metrics.settings
            if method != "GET" or path != settings.path:
                status, body, kind = "404 Not Found", b"not found\n", "text/plain"
            elif not authorized(settings, authorization):
                status, body, kind = (
                    "401 Unauthorized",
                    b"a bearer token is required\n",
                    "text/plain",
                )
            else:
                status, body, kind = "200 OK", self.metrics.exposition(), CONTENT_TYPE
            writer.write(
                f"HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {len(body)}\r\n"
                "connection: close\r\n\r\n".encode("latin-1")
                + body
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass
        finally:
            writer.close()
