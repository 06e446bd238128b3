"""Overload: the gateway serves at most ``max_in_flight`` requests at once and answers the
next with 503, ``Retry-After`` and ``OVERLOADED``; on SIGTERM it stops accepting and lets
the requests in flight finish within ``shutdown_grace``."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from schema import graph as demo_graph
from services.admin import set_faults_sync
from services.faults import FaultConfig
from services.launcher import DemoPlatform, find_free_ports
from switchyard.app import Gateway
from switchyard.config import validate_config
from switchyard.overload import InFlightLimit
from switchyard.pipeline import assemble
from tests.conftest import (
    Backends,
    gateway_settings,
    open_gateway,
    query,
    unreachable_addresses,
)

SLOW = FaultConfig(latency_ms=2_000)
"""Long enough that the requests waiting on it are still in flight when the test looks."""
HUNG = FaultConfig(latency_ms=60_000)
"""Longer than the grace period below."""
SLOW_QUERY = '{ user(id: "1") { name } }'
DEMO_ADMIN = {"X-Api-Key": "demo-admin-key-please-change"}
"""The demo config's admin API key (README "Try it")."""
PROJECT = Path(__file__).resolve().parent.parent
WAIT_ATTEMPTS = 400


def user_query(user_id: int) -> str:
    return f'{{ user(id: "{user_id}") {{ name }} }}'


def in_flight_limit_of(app: Starlette) -> InFlightLimit:
    """The app's in-flight limit (its middleware stack is built by its first request)."""
    layer: Any = app.middleware_stack
    while layer is not None:
        if isinstance(layer, InFlightLimit):
            return layer
        layer = getattr(layer, "app", None)
    raise AssertionError("no InFlightLimit in the middleware stack")


async def wait_for(condition: Any, what: str) -> None:
    for _ in range(WAIT_ATTEMPTS):
        if condition():
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"never happened: {what}")


def test_no_limit_adds_no_unit_and_a_limit_adds_one_after_the_request_id() -> None:
    def middleware(**server: object) -> list[object]:
        telemetry_off = {"metrics": {"enabled": False}, "access_log": {"enabled": False}}
        settings = gateway_settings(
            unreachable_addresses(), server=server, compression={"enabled": False}, **telemetry_off
        )
        return [m.cls for m in assemble(Gateway(validate_config(settings), demo_graph)).middleware]

    unlimited, limited = middleware(), middleware(max_in_flight=8)
    assert InFlightLimit not in unlimited
    assert limited == [unlimited[0], InFlightLimit, *unlimited[1:]]


async def test_the_ninth_concurrent_request_gets_503_with_retry_after(
    platform: DemoPlatform, backends: Backends
) -> None:
    settings = gateway_settings(
        platform.addresses,
        server={"max_in_flight": 8, "overload_retry_after": 2, "request_timeout": 30.0},
        upstreams={"accounts": {"timeout": 30.0}},
    )
    config = validate_config(settings)
    await backends.admin.set_faults(platform.endpoint("accounts"), SLOW)
    try:
        async with open_gateway(config) as client:
            assert (await client.get("/healthz")).status_code == 200  # builds the stack
            app = client._transport.app  # type: ignore[attr-defined]
            limit = in_flight_limit_of(app)
            slow = [asyncio.create_task(query(client, user_query(n))) for n in range(1, 9)]
            await wait_for(lambda: limit.in_flight == 8, "8 requests in flight")

            ninth = await query(client, user_query(9))
            health = await client.get("/healthz")
            ready = await client.get("/readyz")
            answers = await asyncio.gather(*slow)
            after = await query(client, '{ product(id: "1") { name } }')
    finally:
        await backends.admin.set_faults(platform.endpoint("accounts"), FaultConfig())

    assert ninth.status_code == 503
    assert ninth.headers["retry-after"] == "2"
    assert ninth.headers["content-type"] == "application/json"
    body = ninth.json()
    assert body == {
        "errors": [
            {
                "message": "The gateway is serving as many requests as it can; retry later.",
                "extensions": {
                    "code": "OVERLOADED",
                    "retryAfter": 2,
                    "requestId": ninth.headers["x-request-id"],
                },
            }
        ]
    }
    # Health probes are neither counted nor refused (readiness answers for itself: the
    # slow accounts service may make it "unavailable", never OVERLOADED).
    assert health.json() == {"status": "alive"}
    assert ready.json()["status"] in {"ready", "unavailable"}
    assert [a.status_code for a in answers] == [200] * 8
    assert all(a.json()["data"]["user"]["name"] for a in answers)
    assert after.status_code == 200 and "errors" not in after.json()
    assert (limit.in_flight, limit.refused) == (0, 1)
    # The refused request never reached a service: one call per admitted request.
    users = [r.query for r in await backends.records("accounts") if r.call == "GET /users"]
    assert sorted(users) == [f"ids={n}" for n in range(1, 9)]


# --- SIGTERM: `switchyard serve` as a process ---------------------------------------------


def serve_process(
    platform: DemoPlatform,
    port: int,
    environment: Mapping[str, str] | None = None,
    **server: object,
) -> subprocess.Popen[bytes]:
    """`switchyard serve` over the platform (the repository's config, upstreams overridden;
    ``environment``: more ``SWITCHYARD_*`` overrides)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
    env |= environment or {}
    for name, addresses in platform.addresses.items():
        env[f"SWITCHYARD_UPSTREAMS__{name.upper()}__INSTANCES"] = str(addresses).replace("'", '"')
        env[f"SWITCHYARD_UPSTREAMS__{name.upper()}__TIMEOUT"] = "60"
    for key, value in {"request_timeout": 60, **server}.items():
        env[f"SWITCHYARD_SERVER__{key.upper()}"] = str(value)
    command = [sys.executable, "-m", "switchyard.cli", "serve", "--dev", "--port", str(port)]
    return subprocess.Popen(
        [*command, "--config", str(PROJECT / "switchyard.toml")],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_until_serving(url: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(WAIT_ATTEMPTS):
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        threading.Event().wait(0.05)
    raise AssertionError("the gateway never answered /healthz")


def refuses_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return False
    except OSError:
        return True


class SlowRequest(threading.Thread):
    """A request admitted by the gateway: resent while the gateway refuses it as overloaded
    (the probe that checks it is in flight may have taken the one place first)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.response: httpx.Response | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with httpx.Client(timeout=120) as client:
                while True:
                    response = client.post(
                        f"{self.url}/graphql", json={"query": SLOW_QUERY}, headers=DEMO_ADMIN
                    )
                    if response.status_code != 503:
                        self.response = response
                        return
        except BaseException as exc:
            self.error = exc


def wait_until_in_flight(url: str, slow: SlowRequest) -> None:
    """With max_in_flight = 1, a probe refused as OVERLOADED means the slow one is in flight."""
    with httpx.Client() as client:
        for _ in range(WAIT_ATTEMPTS):
            assert slow.is_alive(), "the slow request finished before the test looked"
            probe = client.post(f"{url}/graphql", json={"query": "{ __typename }"})
            if probe.status_code == 503:
                return
            threading.Event().wait(0.02)
    raise AssertionError("the slow request never was in flight")


@dataclass
class Terminated:
    """A gateway process sent SIGTERM while a slow request was in flight."""

    slow: SlowRequest
    returncode: int
    stderr: str


def sigterm_during_a_slow_request(
    platform: DemoPlatform, faults: FaultConfig, grace: float, *, until_refusing: bool
) -> Terminated:
    """Serve, make accounts slow, send a request, SIGTERM once it is in flight, wait for
    the exit; ``until_refusing``: first wait until new connections are refused."""
    (port,) = find_free_ports(1)
    url = f"http://127.0.0.1:{port}"
    process = serve_process(platform, port, max_in_flight=1, shutdown_grace=grace)
    accounts = platform.endpoint("accounts")
    try:
        wait_until_serving(url, process)
        set_faults_sync(accounts, faults)
        slow = SlowRequest(url)
        slow.start()
        wait_until_in_flight(url, slow)
        process.send_signal(signal.SIGTERM)
        if until_refusing:
            for _ in range(WAIT_ATTEMPTS):
                if refuses_connections(port):
                    break
                threading.Event().wait(0.01)
            else:
                raise AssertionError("still accepting connections after SIGTERM")
        returncode = process.wait(timeout=120)
        slow.join(timeout=120)
    finally:
        set_faults_sync(accounts, FaultConfig())
        if process.poll() is None:
            process.kill()
            process.wait()
    stderr = process.stderr.read().decode() if process.stderr else ""
    return Terminated(slow, returncode, stderr)


def test_sigterm_lets_the_request_in_flight_finish_then_exits(platform: DemoPlatform) -> None:
    # New connections are refused at once, while the slow request is still being served.
    ended = sigterm_during_a_slow_request(platform, SLOW, 60, until_refusing=True)
    assert ended.returncode == 0
    assert ended.slow.error is None, ended.slow.error
    assert ended.slow.response is not None
    assert ended.slow.response.status_code == 200
    assert ended.slow.response.json()["data"]["user"]["name"]
    # The lifespan's shutdown ran after the request finished: it closes the upstreams.
    stderr = ended.stderr
    assert "Waiting for connections to close" in stderr
    assert stderr.index("Waiting for connections to close") < stderr.index(
        "Application shutdown complete"
    )


def test_a_request_still_running_when_the_grace_period_ends_is_cancelled(
    platform: DemoPlatform,
) -> None:
    ended = sigterm_during_a_slow_request(platform, HUNG, 0.5, until_refusing=False)
    assert ended.returncode == 0
    assert "timeout graceful shutdown exceeded" in ended.stderr
    assert "Application shutdown complete" in ended.stderr
    # The client saw its connection end without an answer (or a 5xx), never data.
    slow = ended.slow
    assert slow.error is not None or (
        slow.response is not None and slow.response.status_code >= 500
    )
