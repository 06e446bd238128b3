"""HTTP upstreams: httpx's request and response types over a pooled transport per instance.

``HttpTransport`` sends any method with a JSON or form body and maps statuses
to the upstream error hierarchy; ``decode`` turns a 2xx answer into what the
client gets. ``RestTransport`` decodes JSON; a graph adds other formats by
overriding ``decode`` (the demo's XML ``shipping`` client does).

Each call builds one ``httpx.Request`` and hands it straight to an
``httpx.AsyncBaseTransport``: no ``AsyncClient`` in between, so no cookie jar,
no redirect or auth machinery, no URL merging. The URL of a path (and of a
path with the same query) is parsed once and kept. Under httpx the transport is,
by ``[upstreams.NAME] http_transport``, aiohttp's pool (``httpx-aiohttp``, the
default: its pool costs the same at any concurrency) or httpx's own (httpcore,
whose pool scans every connection on every request, encode/httpx#3215).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import aiohttp
import httpx
import orjson
from httpx_aiohttp import AiohttpTransport

from switchyard.upstream.call import CallScope, RestRequest, UpstreamRequest
from switchyard.upstream.errors import (
    RETRYABLE_STATUSES,
    UpstreamNotFound,
    UpstreamProtocolError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
    parse_retry_after,
)
from switchyard.upstream.settings import UpstreamSettings
from switchyard.upstream.transport import Transport, call_timeout

ERROR_DETAIL_CHARS = 200
"""How much of an error answer's body goes into the log line."""
URL_CACHE_SIZE = 1024
"""Parsed URLs kept per instance; the oldest goes first when it is full."""
USER_AGENT = "switchyard"


def create_transport(settings: UpstreamSettings) -> httpx.AsyncBaseTransport:
    """The connection pool one instance of an HTTP upstream uses for the app's lifetime.

    The aiohttp session is made on the first call, inside the serving event loop.
    """
    if settings.http_transport == "httpcore":
        return httpx.AsyncHTTPTransport(
            limits=httpx.Limits(
                max_connections=settings.max_connections,
                max_keepalive_connections=settings.max_keepalive_connections,
                keepalive_expiry=settings.keepalive_expiry,
            ),
            trust_env=False,
        )

    # httpx's verification (certifi's roots) for HTTPS upstreams, whichever pool is under it.
    ssl_context = httpx.create_ssl_context(trust_env=False)

    def session() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=settings.max_connections,
            keepalive_timeout=settings.keepalive_expiry,
            ssl=ssl_context,
        )
        return aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False
        )

    return AiohttpTransport(client=session, trust_env=False)


class HttpTransport(Transport):
    """Requests against one instance (``base_url``) of an HTTP upstream."""

    accept = "*/*"
    """The ``Accept`` header of every request."""

    def __init__(
        self,
        name: str,
        base_url: str,
        transport: httpx.AsyncBaseTransport,
        *,
        timeout: float,
        connect_timeout: float | None = None,
        health_path: str | None = None,
        headers: Mapping[str, str] | None = None,
        min_call_time: float = 0.0,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._transport = transport
        self._timeout = timeout
        self._min_call_time = min_call_time
        self._connect_timeout = timeout if connect_timeout is None else connect_timeout
        self._health_path = health_path
        self._headers = {"accept": self.accept, "user-agent": USER_AGENT, **(headers or {})}
        self._urls: dict[str, httpx.URL] = {}

    @classmethod
    def for_instance(cls, name: str, address: str, settings: UpstreamSettings) -> HttpTransport:
        """The transport of one instance, with its own connection pool (a ``TransportFactory``)."""
        return cls(
            name,
            address,
            create_transport(settings),
            timeout=settings.timeout,
            connect_timeout=settings.connect_timeout,
            health_path=settings.health_path,
            headers=settings.static_headers(),
            min_call_time=settings.min_call_time,
        )

    def url(self, path: str, params: Mapping[str, str] | None = None) -> httpx.URL:
        """The parsed URL of ``path`` with ``params`` as its query, parsed once while kept."""
        target = self.base_url + path
        if params:
            target += ("&" if "?" in path else "?") + urlencode(params, safe=",")
        url = self._urls.get(target)
        if url is None:
            url = httpx.URL(target)
            if len(self._urls) >= URL_CACHE_SIZE:
                del self._urls[next(iter(self._urls))]
            self._urls[target] = url
        return url

    async def send(
        self,
        method: str,
        url: httpx.URL,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """One request through the pool; the answer's body is read and the connection released."""
        phases = {
            "connect": min(self._connect_timeout, timeout),
            "read": timeout,
            "write": timeout,
            "pool": timeout,
        }
        request = httpx.Request(
            method,
            url,
            headers=self._headers if headers is None else {**self._headers, **headers},
            content=content,
            extensions={"timeout": phases},
        )
        # The phase timeouts bound each step; asyncio.timeout bounds the whole call.
        async with asyncio.timeout(timeout):
            response = await self._transport.handle_async_request(request)
            response.request = request
            try:
                await response.aread()
            finally:
                await response.aclose()
        return response

    async def handle(self, request: UpstreamRequest, scope: CallScope) -> Any:
        if not isinstance(request, RestRequest):
            raise TypeError(f"{self.name} is an HTTP upstream, got {type(request).__name__}")
        operation = request.operation
        timeout = call_timeout(self._timeout, scope, self.name, operation, self._min_call_time)
        headers = {**scope.headers, **request.headers} if request.headers else scope.headers
        content: bytes | None = None
        if request.json is not None:
            content = orjson.dumps(request.json)
            headers = {**headers, "content-type": "application/json"}
        elif request.form is not None:
            content = urlencode(request.form).encode()
            headers = {**headers, "content-type": "application/x-www-form-urlencoded"}
        try:
            response = await self.send(
                request.method,
                self.url(request.path, request.params),
                timeout,
                headers,
                content,
            )
        except (TimeoutError, httpx.TimeoutException) as exc:
            if _lost_connection(exc):
                raise UpstreamUnavailable(
                    self.name,
                    operation,
                    f"connection to {self.base_url} lost: {exc}",
                    retryable=True,
                ) from exc
            raise UpstreamTimeout(
                self.name, operation, f"no answer from {self.base_url} in {timeout:.3f}s"
            ) from exc
        except httpx.InvalidURL as exc:  # not an HTTPError: a URL httpx refuses to send
            raise UpstreamRejected(self.name, operation, f"invalid URL: {exc}") from exc
        except (httpx.HTTPError, aiohttp.ClientError, OSError) as exc:
            raise UpstreamUnavailable(
                self.name,
                operation,
                f"{type(exc).__name__} from {self.base_url}: {exc}",
                retryable=True,
            ) from exc
        if scope.on_response_headers is not None:
            scope.on_response_headers(self.name, response.headers)
        status = response.status_code
        if status == 404:
            raise UpstreamNotFound(self.name, operation, "404 not found")
        if status in (400, 409, 422):
            detail = response.text[:ERROR_DETAIL_CHARS]
            raise UpstreamRejected(self.name, operation, f"{status}: {detail}")
        if status >= 500:
            raise UpstreamUnavailable(
                self.name,
                operation,
                f"{status} from {self.base_url}",
                retryable=status in RETRYABLE_STATUSES,
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
        if not 200 <= status < 300:
            raise UpstreamProtocolError(self.name, operation, f"unexpected status {status}")
        return self.decode(operation, response)

    def decode(self, operation: str, response: httpx.Response) -> Any:
        """The answer of a 2xx response; raise ``UpstreamProtocolError`` when it is malformed."""
        return response.content

    async def check(self, timeout: float) -> bool:
        try:
            response = await self.send("GET", self.url(self._health_path or "/"), timeout)
        except (TimeoutError, httpx.HTTPError, aiohttp.ClientError, OSError):
            return False
        if self._health_path is None:
            return response.status_code < 500
        return 200 <= response.status_code < 300

    async def aclose(self) -> None:
        await self._transport.aclose()


def _lost_connection(exc: BaseException) -> bool:
    """Whether a "timeout" is a connection the upstream closed: httpx-aiohttp maps aiohttp's
    ``ServerDisconnectedError`` (and other non-timeout connection errors) to ``ConnectTimeout``."""
    cause = exc.__cause__
    return isinstance(cause, aiohttp.ClientError) and not isinstance(cause, TimeoutError)


class RestTransport(HttpTransport):
    """JSON over HTTP."""

    accept = "application/json"

    def decode(self, operation: str, response: httpx.Response) -> Any:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise UpstreamProtocolError(self.name, operation, "answer is not JSON") from exc
