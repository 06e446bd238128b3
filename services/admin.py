"""A client for the demo services' admin interface, for tests and benchmarks.

    async with AdminClient() as admin:
        endpoint = ServiceEndpoint("rest", "http://127.0.0.1:7001")
        await admin.reset(endpoint)
        ...
        records = await admin.requests(endpoint)
        await admin.set_faults(endpoint, FaultConfig(error_rate=1.0))
        shipping = ServiceEndpoint("rest", "http://127.0.0.1:7006")
        await admin.set_hostile(shipping, "external-entity", "/tmp/canary.txt")

REST services expose ``GET``/``DELETE /__admin/requests``, ``PUT /__admin/faults`` and
``PUT /__admin/headers`` (headers added to every answer; the shipping service
``PUT /__admin/hostile`` too);
gRPC services the generic JSON-over-bytes service ``switchyard.admin.Admin``
(``Requests``, ``Reset``, ``SetFaults``). ``DemoPlatform.endpoints(name)`` gives the
endpoints of a running platform.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, NamedTuple, Self, TypeVar

import grpc
import grpc.aio
import httpx
import orjson

from services.faults import FaultConfig
from services.grpc_server import ADMIN_SERVICE
from services.recording import RequestRecord
from services.registry import ServiceKind

DEFAULT_ADMIN_TIMEOUT_S = 5.0
_T = TypeVar("_T")


class ServiceEndpoint(NamedTuple):
    """Where one service instance listens: ``("rest", "http://127.0.0.1:7001")`` or
    ``("grpc", "127.0.0.1:7004")``."""

    kind: ServiceKind
    address: str


class AdminError(Exception):
    """The admin call failed; the message names the endpoint and the cause."""


class AdminClient:
    """Reads and resets request records and sets injected faults on any demo service.

    Reuses one HTTP client and one gRPC channel per address; close it with ``aclose()``
    or use it as an async context manager.
    """

    def __init__(self, *, timeout: float = DEFAULT_ADMIN_TIMEOUT_S) -> None:
        self._timeout = timeout
        self._http = httpx.AsyncClient(timeout=timeout)
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
        for channel in self._channels.values():
            await channel.close(None)
        self._channels.clear()

    async def requests(self, service: ServiceEndpoint) -> list[RequestRecord]:
        """The requests the service recorded since its start or last reset, oldest first."""
        if service.kind == "rest":
            body = await self._http_call(service, "GET", "/__admin/requests")
        else:
            body = await self._grpc_call(service, "Requests", {})
        return [RequestRecord.from_json(record) for record in body["requests"]]

    async def reset(self, service: ServiceEndpoint) -> None:
        """Forget the recorded requests."""
        if service.kind == "rest":
            await self._http_call(service, "DELETE", "/__admin/requests")
        else:
            await self._grpc_call(service, "Reset", {})

    async def set_faults(self, service: ServiceEndpoint, faults: FaultConfig) -> None:
        """Replace the injected faults; ``FaultConfig()`` turns them off."""
        if service.kind == "rest":
            await self._http_call(service, "PUT", "/__admin/faults", faults.to_json())
        else:
            await self._grpc_call(service, "SetFaults", faults.to_json())

    async def set_response_headers(
        self, endpoint: ServiceEndpoint, headers: dict[str, str]
    ) -> None:
        """Add ``headers`` to every answer of a REST service from now on (``{}``: none).

        Replaces the previous set; resetting the records keeps it.
        """
        if endpoint.kind != "rest":
            raise AdminError(f"{endpoint.address} is a gRPC service, without response headers")
        await self._http_call(endpoint, "PUT", "/__admin/headers", headers)

    async def set_hostile(
        self, endpoint: ServiceEndpoint, mode: str, entity_target: str | None = None
    ) -> None:
        """Make every answer of the shipping service an XML attack, until ``"off"``.

        ``mode`` is ``"billion-laughs"``, ``"external-entity"`` (whose entity names the
        absolute path ``entity_target``) or ``"off"``. Resetting the records keeps it.
        """
        if endpoint.kind != "rest":
            raise AdminError(f"{endpoint.address} is a gRPC service, without hostile modes")
        body: dict[str, str] = {"mode": mode}
        if entity_target is not None:
            body["entityTarget"] = entity_target
        await self._http_call(endpoint, "PUT", "/__admin/hostile", body)

    async def _http_call(
        self, service: ServiceEndpoint, method: str, path: str, body: object = None
    ) -> dict[str, Any]:
        content = None if body is None else orjson.dumps(body)
        try:
            response = await self._http.request(method, service.address + path, content=content)
        except httpx.HTTPError as exc:
            raise AdminError(f"{method} {service.address}{path} failed: {exc!r}") from exc
        if response.status_code != 200:
            raise AdminError(
                f"{method} {service.address}{path} answered {response.status_code}: {response.text}"
            )
        result: dict[str, Any] = orjson.loads(response.content)
        return result

    async def _grpc_call(
        self, service: ServiceEndpoint, method: str, body: object
    ) -> dict[str, Any]:
        channel = self._channels.get(service.address)
        if channel is None:
            channel = self._channels[service.address] = grpc.aio.insecure_channel(service.address)
        call = channel.unary_unary(f"/{ADMIN_SERVICE}/{method}", None, None)
        try:
            answer = await call(orjson.dumps(body), timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise AdminError(
                f"{ADMIN_SERVICE}/{method} on {service.address} failed: "
                f"{exc.code().name} {exc.details()}"
            ) from exc
        result: dict[str, Any] = orjson.loads(answer)
        return result


def requests_sync(service: ServiceEndpoint) -> list[RequestRecord]:
    """``AdminClient.requests`` for synchronous code (not inside a running event loop)."""
    return asyncio.run(_once(lambda admin: admin.requests(service)))


def reset_sync(service: ServiceEndpoint) -> None:
    """``AdminClient.reset`` for synchronous code."""
    asyncio.run(_once(lambda admin: admin.reset(service)))


def set_faults_sync(service: ServiceEndpoint, faults: FaultConfig) -> None:
    """``AdminClient.set_faults`` for synchronous code."""
    asyncio.run(_once(lambda admin: admin.set_faults(service, faults)))


async def _once(action: Callable[[AdminClient], Awaitable[_T]]) -> _T:
    async with AdminClient() as admin:
        return await action(admin)
