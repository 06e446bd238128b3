"""The table of demo services: kind, default port and implementing module.

``"rest"`` covers every service over HTTP with the JSON admin routes (``/__admin/...``),
the XML ``shipping`` service included.

Modules are imported lazily, so the launcher does not pay for Starlette or grpc.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ServiceKind = Literal["rest", "grpc"]


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str
    kind: ServiceKind
    default_port: int
    module: str
    # The gRPC service name that the health check reports on; None for REST.
    grpc_service: str | None = None


SERVICES: dict[str, ServiceSpec] = {
    spec.name: spec
    for spec in (
        ServiceSpec("accounts", "rest", 7001, "services.accounts"),
        ServiceSpec("orders", "rest", 7002, "services.orders"),
        ServiceSpec("reviews", "rest", 7003, "services.reviews"),
        ServiceSpec("catalog", "grpc", 7004, "services.catalog", "demo.catalog.v1.Catalog"),
        ServiceSpec("inventory", "grpc", 7005, "services.inventory", "demo.inventory.v1.Inventory"),
        ServiceSpec("shipping", "rest", 7006, "services.shipping"),
    )
}
SERVICE_NAMES = tuple(SERVICES)


def get_spec(name: str) -> ServiceSpec:
    try:
        return SERVICES[name]
    except KeyError:
        raise ValueError(
            f"unknown service {name!r}; expected one of {', '.join(SERVICE_NAMES)}"
        ) from None
