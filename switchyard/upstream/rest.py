"""HTTP upstreams over one pooled ``httpx.AsyncClient`` per upstream.

``HttpTransport`` sends any method with a JSON or form body and maps statuses
to the upstream error hierarchy; ``decode`` turns a 2xx answer into what the
client gets. ``RestTransport`` decodes JSON; a graph adds other formats by
overriding ``decode`` (the demo's XML ``shipping`` client does).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from switchyard.upstream.call import CallScope, RestRequest, UpstreamRequest
from switchyard.upstream.errors import (
    UpstreamNotFound,
    UpstreamProtocolError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from switchyard.upstream.settings import UpstreamSettings
from switchyard.upstream.transport import Transport, call_timeout

ERROR_DETAIL_CHARS = 200
"""How much of an error answer's body goes into the log line."""


def create_client(settings: UpstreamSettings, *, accept: str) -> httpx.AsyncClient:
    """The pooled client one HTTP upstream uses for the app's lifetime."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout),
        limits=httpx.Limits(
            max_connections=settings.max_connections,
            max_keepalive_connections=settings.max_keepalive_connections,
        ),
        headers={"accept": accept, **settings.static_headers()},
        follow_redirects=False,
        trust_env=False,
    )


class HttpTransport(Transport):
    """Requests against one instance (``base_url``) of an HTTP upstream."""

    accept = "*/*"
    """The ``Accept`` header of every request."""

    def __init__(
        self,
        name: str,
        base_url: str,
        client: httpx.AsyncClient,
        *,
        timeout: float,
        health_path: str | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self._client = client
        self._timeout = timeout
        self._health_path = health_path

    @classmethod
    def for_instance(cls, name: str, address: str, settings: UpstreamSettings) -> HttpTransport:
        """The transport of one instance, with its own connection pool (a ``TransportFactory``)."""
        client = create_client(settings, accept=cls.accept)
        return cls(
            name, address, client, timeout=settings.timeout, health_path=settings.health_path
        )

    async def handle(self, request: UpstreamRequest, scope: CallScope) -> Any:
        if not isinstance(request, RestRequest):
            raise TypeError(f"{self.name} is an HTTP upstream, got {type(request).__name__}")
        operation = request.operation
        timeout = call_timeout(self._timeout, scope, self.name, operation)
        headers: Mapping[str, str] = scope.headers
        if request.headers or request.json is not None:
            headers = {**headers, **request.headers}
            if request.json is not None:
                headers["content-type"] = "application/json"
        try:
            # httpx timeouts bound each phase; asyncio.timeout bounds the whole call.
            async with asyncio.timeout(timeout):
                response = await self._client.request(
                    request.method,
                    self.base_url + request.path,
                    params=request.params,
                    headers=headers,
                    content=None if request.json is None else orjson.dumps(request.json),
                    data=request.form,
                    timeout=timeout,
                )
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise UpstreamTimeout(
                self.name, operation, f"no answer from {self.base_url} in {timeout:.3f}s"
            ) from exc
        except httpx.InvalidURL as exc:  # not an HTTPError: a URL httpx refuses to send
            raise UpstreamRejected(self.name, operation, f"invalid URL: {exc}") from exc
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(
                self.name, operation, f"{type(exc).__name__} from {self.base_url}: {exc}"
            ) from exc
        status = response.status_code
        if status == 404:
            raise UpstreamNotFound(self.name, operation, "404 not found")
        if status in (400, 409, 422):
            detail = response.text[:ERROR_DETAIL_CHARS]
            raise UpstreamRejected(self.name, operation, f"{status}: {detail}")
        if status >= 500:
            raise UpstreamUnavailable(self.name, operation, f"{status} from {self.base_url}")
        if not 200 <= status < 300:
            raise UpstreamProtocolError(self.name, operation, f"unexpected status {status}")
        return self.decode(operation, response)

    def decode(self, operation: str, response: httpx.Response) -> Any:
        """The answer of a 2xx response; raise ``UpstreamProtocolError`` when it is malformed."""
        return response.content

    async def check(self, timeout: float) -> bool:
        path = self._health_path or "/"
        try:
            response = await self._client.get(self.base_url + path, timeout=timeout)
        except httpx.HTTPError:
            return False
        if self._health_path is None:
            return response.status_code < 500
        return 200 <= response.status_code < 300

    async def aclose(self) -> None:
        await self._client.aclose()


class RestTransport(HttpTransport):
    """JSON over HTTP."""

    accept = "application/json"

    def decode(self, operation: str, response: httpx.Response) -> Any:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise UpstreamProtocolError(self.name, operation, "answer is not JSON") from exc
