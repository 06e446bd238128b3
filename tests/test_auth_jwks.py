"""Keys from a JWKS: fetched without blocking, rotated, and kept when the endpoint misbehaves.

A real HTTP server on a free loopback port serves the key set; each test says
what it answers (a key set, garbage, nothing for a while) and counts fetches.
Tokens are minted with joserfc.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey, OctKey, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.launcher import find_free_ports
from switchyard.auth.errors import InvalidCredentials
from switchyard.auth.jwks import JwksClient
from switchyard.auth.jwt import TokenVerifier
from switchyard.auth.settings import JwksSettings, JwtSettings
from switchyard.config import validate_config
from tests.conftest import gateway_settings, open_gateway, unreachable_addresses

OLD = RSAKey.generate_key(2048, parameters={"kid": "2024"})
NEW = ECKey.generate_key("P-256", parameters={"kid": "2025"})
UNPUBLISHED = RSAKey.generate_key(2048, parameters={"kid": "2026"})
SECRET_B64 = b"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"


@dataclass
class JwksServer:
    """What the test JWKS endpoint answers next, and how often it was asked."""

    url: str
    body: bytes = b'{"keys": []}'
    status: int = 200
    delay: float = 0.0
    fetches: int = 0

    def publish(self, *keys: Any) -> None:
        document = {"keys": [key.as_dict(private=False) for key in keys]}
        self.body = httpx.Response(200, json=document).content
        self.status = 200

    def answer_garbage(self, body: bytes, status: int = 200) -> None:
        self.body, self.status = body, status


@contextlib.asynccontextmanager
async def running_jwks_server() -> AsyncIterator[JwksServer]:
    """A JWKS endpoint on a free loopback port, served in this event loop."""
    (port,) = find_free_ports(1)
    state = JwksServer(url=f"http://127.0.0.1:{port}/jwks.json")

    async def jwks(request: Request) -> Response:
        state.fetches += 1
        if state.delay:
            await asyncio.sleep(state.delay)
        return Response(state.body, state.status, media_type="application/json")

    app = Starlette(routes=[Route("/jwks.json", jwks)])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    for _ in range(500):  # uvicorn offers a flag, not an event, for "listening"
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        yield state
    finally:
        server.should_exit = True
        await task


@pytest.fixture(scope="module")
async def jwks_server() -> AsyncIterator[JwksServer]:
    async with running_jwks_server() as server:
        yield server


@pytest.fixture
def jwks(jwks_server: JwksServer) -> JwksServer:
    jwks_server.publish(OLD)
    jwks_server.delay = 0.0
    jwks_server.fetches = 0
    return jwks_server


def verifier(url: str, *, cooldown: float = 0.0, timeout: float = 0.3) -> TokenVerifier:
    settings = JwtSettings(
        jwks=JwksSettings(
            url=url, algorithms=["RS256", "ES256"], cooldown=cooldown, timeout=timeout
        )
    )
    return TokenVerifier.from_settings(settings)


def mint(key: Any, alg: str = "RS256", **claims: Any) -> str:
    values = {"sub": "42", "exp": int(time.time()) + 300, **claims}
    return str(jose_jwt.encode({"alg": alg, "kid": key.kid}, values, key, algorithms=[alg]))


async def reason_for(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(InvalidCredentials) as refused:
        await verifier.verify(token)
    return refused.value.reason


async def test_a_token_signed_with_a_published_key_is_accepted(jwks: JwksServer) -> None:
    claims = await verifier(jwks.url).verify(mint(OLD))
    assert claims["sub"] == "42"


async def test_rotation_picks_up_the_new_kid_and_keeps_the_old_until_it_is_removed(
    jwks: JwksServer,
) -> None:
    tokens = verifier(jwks.url)
    assert (await tokens.verify(mint(OLD)))["sub"] == "42"

    jwks.publish(OLD, NEW)
    assert (await tokens.verify(mint(NEW, "ES256")))["sub"] == "42"
    assert (await tokens.verify(mint(OLD)))["sub"] == "42"
    assert jwks.fetches == 2

    jwks.publish(NEW)
    # The old kid is still held until something makes the gateway refetch.
    assert (await tokens.verify(mint(OLD)))["sub"] == "42"
    assert await reason_for(tokens, mint(UNPUBLISHED)) == "unknown key id"
    assert await reason_for(tokens, mint(OLD)) == "unknown key id"
    assert (await tokens.verify(mint(NEW, "ES256")))["sub"] == "42"


async def test_unknown_kids_refetch_at_most_once_per_cooldown(jwks: JwksServer) -> None:
    now = [1000.0]
    settings = JwksSettings(url=jwks.url, cooldown=60)
    client = JwksClient(settings, clock=lambda: now[0])
    tokens = TokenVerifier(JwtSettings(jwks=settings), [], client)
    await tokens.verify(mint(OLD))
    for _ in range(5):
        assert await reason_for(tokens, mint(UNPUBLISHED)) == "unknown key id"
    assert jwks.fetches == 1

    now[0] += 61
    for _ in range(5):
        assert await reason_for(tokens, mint(UNPUBLISHED)) == "unknown key id"
    assert jwks.fetches == 2


async def test_keys_older_than_max_age_are_refetched(jwks: JwksServer) -> None:
    now = [1000.0]
    settings = JwksSettings(url=jwks.url, cooldown=0, max_age=300)
    tokens = TokenVerifier(
        JwtSettings(jwks=settings), [], JwksClient(settings, clock=lambda: now[0])
    )
    await tokens.verify(mint(OLD))
    jwks.publish(NEW)
    now[0] += 299
    assert (await tokens.verify(mint(OLD)))["sub"] == "42"
    now[0] += 2
    assert await reason_for(tokens, mint(OLD)) == "unknown key id"
    assert jwks.fetches == 2


async def test_concurrent_requests_with_an_unknown_kid_share_one_fetch(jwks: JwksServer) -> None:
    tokens = verifier(jwks.url)
    await tokens.verify(mint(OLD))
    jwks.publish(OLD, NEW)
    jwks.delay = 0.05
    results = await asyncio.gather(*(tokens.verify(mint(NEW, "ES256")) for _ in range(10)))
    assert [claims["sub"] for claims in results] == ["42"] * 10
    assert jwks.fetches == 2


async def test_when_the_endpoint_goes_down_the_held_keys_keep_working() -> None:
    async with running_jwks_server() as short_lived:
        short_lived.publish(OLD)
        tokens = verifier(short_lived.url)
        await tokens.verify(mint(OLD))
    assert await reason_for(tokens, mint(UNPUBLISHED)) == "unknown key id"
    assert (await tokens.verify(mint(OLD)))["sub"] == "42"


async def test_without_any_key_a_down_endpoint_means_signing_keys_unavailable() -> None:
    (closed_port,) = find_free_ports(1)
    tokens = verifier(f"http://127.0.0.1:{closed_port}/jwks.json")
    assert await reason_for(tokens, mint(OLD)) == "signing keys unavailable"


async def test_a_slow_endpoint_is_given_up_on_after_the_timeout(jwks: JwksServer) -> None:
    tokens = verifier(jwks.url, timeout=0.2)
    await tokens.verify(mint(OLD))
    jwks.publish(OLD, NEW)
    jwks.delay = 2.0
    started = time.monotonic()
    assert await reason_for(tokens, mint(NEW, "ES256")) == "unknown key id"
    assert time.monotonic() - started < 1.0
    assert (await tokens.verify(mint(OLD)))["sub"] == "42"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"<html>maintenance</html>", 200),
        (b'{"keys": "none"}', 200),
        (b'{"keys": [{"kty": "RSA", "kid": "broken", "n": "AQAB"}]}', 200),
        (b'{"keys": [{"kty": "oct", "kid": "2026", "k": "' + SECRET_B64 + b'"}]}', 200),
        (b'{"error": "internal"}', 500),
    ],
    ids=["html", "keys-not-a-list", "unusable-key", "symmetric-key", "server-error"],
)
async def test_a_garbage_answer_keeps_the_held_keys(
    jwks: JwksServer, body: bytes, status: int
) -> None:
    tokens = verifier(jwks.url)
    await tokens.verify(mint(OLD))
    jwks.answer_garbage(body, status)
    assert await reason_for(tokens, mint(UNPUBLISHED)) == "unknown key id"
    assert (await tokens.verify(mint(OLD)))["sub"] == "42"


async def test_an_hs256_token_is_never_checked_against_a_jwks(jwks: JwksServer) -> None:
    secret = OctKey.import_key(SECRET_B64.decode(), parameters={"kid": "2024"})
    token = str(jose_jwt.encode({"alg": "HS256", "kid": "2024"}, {"exp": 9999999999}, secret))
    assert await reason_for(verifier(jwks.url), token) == "algorithm not allowed"


async def test_a_gateway_configured_with_a_jwks_url_answers_401_for_an_unknown_kid(
    jwks: JwksServer,
) -> None:
    nowhere = unreachable_addresses()
    auth = {"jwt": {"jwks": {"url": jwks.url, "cooldown": 0}}}
    async with open_gateway(validate_config(gateway_settings(nowhere, auth=auth))) as client:
        accepted = await client.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers={"Authorization": f"Bearer {mint(OLD)}"},
        )
        refused = await client.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers={"Authorization": f"Bearer {mint(UNPUBLISHED)}"},
        )
    assert accepted.json() == {"data": {"__typename": "Query"}}
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == (
        'Bearer realm="switchyard", error="invalid_token", error_description="unknown key id"'
    )
