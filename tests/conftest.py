"""Shared fixtures: the demo platform on free loopback ports and gateways in front of it.

The services are real processes spoken to over real HTTP and gRPC; the gateway
runs in the test's event loop behind ``httpx.ASGITransport`` with its lifespan.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from schema import graph as demo_graph
from services.admin import AdminClient
from services.launcher import DemoPlatform, find_free_ports
from services.recording import RequestRecord
from services.registry import SERVICE_NAMES as DEMO_UPSTREAMS
from switchyard.app import Gateway, create_app
from switchyard.config import GatewayConfig, validate_config
from tests.redis_support import (  # noqa: F401 (fixtures)
    prefix,
    redis,
    redis_available,
    redis_server,
    store,
)

KINDS = {"catalog": "grpc", "inventory": "grpc", "shipping": "xml"}
PROJECT_CONFIG = Path(__file__).resolve().parent.parent / "switchyard.toml"
"""The repository's own config: the demo graph, its keys and upstreams."""


def unreachable_addresses() -> dict[str, list[str]]:
    """Every demo upstream at an address nothing listens on (port 9, discard)."""
    return {
        name: ["127.0.0.1:9" if KINDS.get(name) == "grpc" else "http://127.0.0.1:9"]
        for name in DEMO_UPSTREAMS
    }


SERVICE_KEY = "test-service-key-0123456789"
"""An API key with every scope: foundation tests query the whole graph with it."""
SERVICE_HEADERS = {"X-Api-Key": SERVICE_KEY}
SERVICE_SCOPES = ["admin", "orders:read", "users:read", "reviews:read", "products:read"]


@pytest.fixture(scope="session")
def platform() -> Iterator[DemoPlatform]:
    ports = dict(zip(DEMO_UPSTREAMS, find_free_ports(len(DEMO_UPSTREAMS)), strict=True))
    with DemoPlatform(ports={name: [port] for name, port in ports.items()}) as running:
        yield running


def gateway_settings(
    addresses: Mapping[str, list[str]], **sections: Mapping[str, Any]
) -> dict[str, Any]:
    """A config dict for a gateway over ``addresses``; ``sections`` merge into the defaults."""
    data: dict[str, Any] = {
        # Development mode: the tests read extensions.upstreams (debug) and introspect;
        # production mode is the subject of test_production.py.
        # gc_freeze off: the test process opens many gateways, each of which would freeze.
        "server": {
            "mode": "development",
            "debug": True,
            "request_timeout": 5.0,
            "gc_freeze": False,
        },
        # Cost extensions are the subject of test_rate_limit.py; elsewhere they would
        # only add extensions.cost to every body compared.
        "cost": {"mode": "off"},
        "auth": {
            "allow_anonymous": True,
            "api_keys": [
                {
                    "hash": "sha256:" + hashlib.sha256(SERVICE_KEY.encode()).hexdigest(),
                    "client_id": "test-service",
                    "scopes": SERVICE_SCOPES,
                    "tier": "service",
                }
            ],
        },
        "upstreams": {
            name: {
                "kind": KINDS.get(name, "rest"),
                "instances": list(instances),
                "timeout": 2.0,
            }
            for name, instances in addresses.items()
        },
    }
    for section, values in sections.items():
        if section == "upstreams":
            for name, overrides in values.items():
                data["upstreams"].setdefault(name, {}).update(overrides)
        else:
            data.setdefault(section, {}).update(values)
    return data


DEMO_GATEWAYS: list[Gateway] = []
"""Every gateway opened on the demo graph this session: their operations must be planned."""

FALLBACKS_ALLOWED = ("introspection field",)
"""Why a demo-graph operation may run on graphql-core's execution (the README says which)."""


@pytest.fixture(autouse=True)
def answered_by_the_plan() -> Iterator[None]:
    """Fails a test whose demo-graph operation was answered by the standard execution."""
    before = {id(gateway): gateway.fallbacks.copy() for gateway in DEMO_GATEWAYS}
    yield
    for gateway in DEMO_GATEWAYS:
        fell_back = gateway.fallbacks - before.get(id(gateway), Counter())
        unexpected = [r for r in fell_back if not r.startswith(FALLBACKS_ALLOWED)]
        if unexpected:
            pytest.fail(f"answered by the standard execution: {unexpected}")


@contextlib.asynccontextmanager
async def open_gateway(config: GatewayConfig) -> AsyncIterator[httpx.AsyncClient]:
    """A started gateway (lifespan run) and a client speaking to it in process."""
    app = create_app(config, demo_graph)
    DEMO_GATEWAYS.append(app.state.gateway)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


@pytest.fixture(scope="session")
def gateway_config(platform: DemoPlatform) -> GatewayConfig:
    return validate_config(gateway_settings(platform.addresses))


@pytest.fixture(scope="session")
async def gateway(gateway_config: GatewayConfig) -> AsyncIterator[httpx.AsyncClient]:
    async with open_gateway(gateway_config) as client:
        yield client


class Backends:
    """What the demo services observed: their request records, reset between tests."""

    def __init__(self, platform: DemoPlatform, admin: AdminClient) -> None:
        self.platform = platform
        self.admin = admin
        self.since = 0.0

    async def reset(self) -> None:
        # A request an earlier test abandoned (a gateway timeout) is recorded when the
        # service finishes it, possibly after this reset: only later starts count.
        self.since = time.time()
        for name in DEMO_UPSTREAMS:
            for endpoint in self.platform.endpoints(name):
                await self.admin.reset(endpoint)

    async def records(self, name: str) -> list[RequestRecord]:
        records: list[RequestRecord] = []
        for endpoint in self.platform.endpoints(name):
            records.extend(await self.admin.requests(endpoint))
        return sorted((r for r in records if r.start >= self.since), key=lambda r: r.start)

    async def call_counts(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for name in DEMO_UPSTREAMS:
            counts[name] = len(await self.records(name))
        return {name: count for name, count in counts.items() if count}


@pytest.fixture
async def backends(platform: DemoPlatform) -> AsyncIterator[Backends]:
    async with AdminClient() as admin:
        observed = Backends(platform, admin)
        await observed.reset()
        yield observed


async def query(
    client: httpx.AsyncClient,
    document: str,
    variables: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = SERVICE_HEADERS,
) -> httpx.Response:
    """POST a GraphQL request, by default as the all-scopes test service."""
    payload: dict[str, Any] = {"query": document}
    if variables is not None:
        payload["variables"] = dict(variables)
    return await client.post("/graphql", json=payload, headers=headers)


# --- Secrets are never logged -----------------------------------------------------------
# Every log record of the session (the access log's line of each request included) is
# kept, and at the end searched for the demo's keys, the test keys and every token the
# tests minted (joserfc's jwt.encode, PyJWT's, switchyard's dev tokens).

DEMO_SECRETS = (
    "demo-key-please-change",
    "demo-admin-key-please-change",
    "switchyard-demo-dev-signing-key-not-for-production",
    SERVICE_KEY,
)
MINTED: list[str] = []
LOGGED: list[str] = []


class _EverythingLogged(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        try:
            LOGGED.append(f"{self.format(record)} {record.__dict__!r}")
        except Exception:  # a record that cannot be formatted is logged by no handler either
            LOGGED.append(repr(record.__dict__))


EVERYTHING_LOGGED = _EverythingLogged()
_TAPPED = ("", "switchyard", "switchyard.access")


def _tap_logging() -> None:
    """The handler on the root, ``switchyard`` (which the CLI's ``configure_logging`` stops
    propagating) and the access log, whose INFO lines stay out of caplog's way."""
    for name in _TAPPED:
        logger = logging.getLogger(name)
        if EVERYTHING_LOGGED not in logger.handlers:
            logger.addHandler(EVERYTHING_LOGGED)
    access = logging.getLogger("switchyard.access")
    access.setLevel(logging.INFO)
    access.propagate = False


def _keep_minted(module: Any, name: str) -> None:
    mint = getattr(module, name)

    def minting(*args: Any, **kwargs: Any) -> Any:
        token = mint(*args, **kwargs)
        MINTED.append(token.decode() if isinstance(token, bytes) else str(token))
        return token

    setattr(module, name, minting)


def pytest_configure(config: pytest.Config) -> None:
    import joserfc.jwt
    import jwt as pyjwt

    import switchyard.auth.dev_tokens

    _keep_minted(joserfc.jwt, "encode")
    _keep_minted(pyjwt, "encode")
    _keep_minted(switchyard.auth.dev_tokens, "mint_dev_token")
    _tap_logging()


@pytest.fixture(autouse=True)
def _logging_tapped() -> None:
    _tap_logging()  # again: a test may have run configure_logging


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    secrets = {s for s in (*DEMO_SECRETS, *MINTED) if len(s) >= 8}
    leaks = sorted({s[:12] + "..." for line in LOGGED for s in secrets if s in line})
    if leaks:
        session.config.stash[_LEAKS] = leaks
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_LEAKS = pytest.StashKey[list[str]]()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    leaks = config.stash.get(_LEAKS, [])
    terminalreporter.write_line(
        f"secrets check: {len(LOGGED)} log records searched for "
        f"{len(DEMO_SECRETS)} keys and {len(MINTED)} minted tokens"
    )
    if leaks:
        terminalreporter.write_line(f"SECRETS LOGGED: {', '.join(leaks)}", red=True)
