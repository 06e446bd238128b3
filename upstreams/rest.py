"""REST upstreams over one pooled ``httpx.AsyncClient`` per upstream."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson

from upstreams.call import CallScope, RestRequest, UpstreamRequest
from upstreams.errors import (
    UpstreamNotFound,
    UpstreamProtocolError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from upstreams.settings import UpstreamSettings
from upstreams.transport import Transport, call_timeout


def create_client(settings: UpstreamSettings) -> httpx.AsyncClient:
    """The pooled client one REST upstream uses for the app's lifetime."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout),
        limits=httpx.Limits(
            max_connections=settings.max_connections,
            max_keepalive_connections=settings.max_keepalive_connections,
        ),
        headers={"accept": "application/json"},
        follow_redirects=False,
        trust_env=False,
    )


class RestTransport(Transport):
    """GET requests against one instance (``base_url``) of a REST upstream."""

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

    async def handle(self, request: UpstreamRequest, scope: CallScope) -> Any:
        if not isinstance(request, RestRequest):
            raise TypeError(f"{self.name} is a REST upstream, got {type(request).__name__}")
        operation = request.operation
        timeout = call_timeout(self._timeout, scope, self.name, operation)
        url = self.base_url + request.path
        try:
            # httpx timeouts bound each phase; asyncio.timeout bounds the whole call.
            async with asyncio.timeout(timeout):
                response = await self._client.get(
                    url, params=request.params, headers=scope.headers, timeout=timeout
                )
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise UpstreamTimeout(
                self.name, operation, f"no answer from {self.base_url} in {timeout:.3f}s"
            ) from exc
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(
                self.name, operation, f"{type(exc).__name__} from {self.base_url}: {exc}"
            ) from exc
        return self._decode(operation, response)

    def _decode(self, operation: str, response: httpx.Response) -> Any:
        status = response.status_code
        if status == 404:
            raise UpstreamNotFound(self.name, operation, "404 not found")
        if status in (400, 422):
            raise UpstreamRejected(self.name, operation, f"{status}: {response.text[:200]}")
        if status >= 500:
            raise UpstreamUnavailable(self.name, operation, f"{status} from {self.base_url}")
        if status != 200:
            raise UpstreamProtocolError(self.name, operation, f"unexpected status {status}")
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise UpstreamProtocolError(self.name, operation, "answer is not JSON") from exc

    async def check(self, timeout: float) -> bool:
        path = self._health_path or "/"
        try:
            response = await self._client.get(self.base_url + path, timeout=timeout)
        except httpx.HTTPError:
            return False
        if self._health_path is None:
            return response.status_code < 500
        return 200 <= response.status_code < 300
