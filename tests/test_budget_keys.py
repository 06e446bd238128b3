"""Whose bucket a request spends from: one per client and tier, never a value a client chose.

The address is the TCP peer unless the peer is a trusted proxy; then the right-most
X-Forwarded-For entry that is not a proxy, which must parse as an address (IPv6 by
/64). JWT callers are keyed by issuer and subject (or a configured claim), API-key
callers by client id, each with its tier in the key.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import OctKey
from redis.asyncio import Redis

from schema import graph as demo_graph
from services.launcher import DemoPlatform
from switchyard.app import create_app
from switchyard.budgets.keys import bucket_key, client_address
from switchyard.caller import ANONYMOUS, Caller
from switchyard.config import validate_config
from tests.conftest import gateway_settings, query
from tests.redis_support import REDIS_URL
from tests.test_rate_limit import ONE_POINT, gateway_processes

PROXIES = ["10.0.0.0/8", "2001:db8::/32"]
SECRET = "budget-key-tests-secret-0123456789abcdef"
KEY = OctKey.import_key(SECRET, parameters={"kid": "keys"})
PARTNER_KEY = "budget-keys-partner-key-0123456789"
SAFE_KEY = re.compile(r"[A-Za-z0-9._@+~:/-]+")
"""Every character a bucket key may hold: no braces, quotes, spaces or semicolons."""


# Unit: the address and the key.


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        ("198.51.100.9", None, "198.51.100.9"),
        ("198.51.100.9", "203.0.113.7", "198.51.100.9"),  # untrusted peer: XFF ignored
        ("10.0.0.5", "203.0.113.7", "203.0.113.7"),
        ("10.0.0.5", "6.6.6.6, 203.0.113.7, 10.1.1.1", "203.0.113.7"),  # spoofed left
        ("10.0.0.5", "not-an-ip, 203.0.113.7", "203.0.113.7"),  # never read: left of the client
        ("10.0.0.5", "203.0.113.7, not-an-ip", "10.0.0.5"),  # a proxy wrote garbage: stop
        ("10.0.0.5", "203.0.113.7, '; DROP TABLE x; --", "10.0.0.5"),
        ("10.0.0.5", "203.0.113.7,", "10.0.0.5"),  # an empty entry is malformed too
        ("10.0.0.5", "10.2.2.2, 10.1.1.1", "10.2.2.2"),  # all ours: the left-most
        ("10.0.0.5", "203.0.113.7:5123", "203.0.113.7"),
        ("10.0.0.5", "[2001:db9::1]:443", "2001:db9::1"),
        ("10.0.0.5", "", "10.0.0.5"),
        ("2001:db8::7", "203.0.113.7", "203.0.113.7"),
        ("::ffff:198.51.100.9", None, "198.51.100.9"),
        (None, "203.0.113.7", None),
        ("not-an-ip", "203.0.113.7", None),
    ],
)
def test_client_address(peer: str | None, forwarded_for: str | None, expected: str | None) -> None:
    address = client_address(peer, forwarded_for, PROXIES)
    assert (None if address is None else str(address)) == expected


def test_repeated_forwarded_for_lines_are_read_as_one_list() -> None:
    # A client's own header line comes first; the proxy's appended line is what counts.
    lines = ["6.6.6.6", "203.0.113.7"]
    assert str(client_address("10.0.0.5", lines, PROXIES)) == "203.0.113.7"


def test_only_the_last_hops_are_read() -> None:
    # A long chain of trusted hops ends the walk at the last one read, not at the far left.
    header = ", ".join(["203.0.113.7"] + ["10.9.9.9"] * 40)
    assert str(client_address("10.0.0.5", header, PROXIES)) == "10.9.9.9"


@pytest.mark.parametrize(
    ("peer", "expected"),
    [
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "ip:anonymous:2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "ip:anonymous:2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "ip:anonymous:2001:db8:1:3::/64"),
        ("198.51.100.9", "ip:anonymous:198.51.100.9"),
        (None, "ip:anonymous:unknown"),
    ],
)
def test_anonymous_clients_are_keyed_by_address_and_ipv6_by_its_64(
    peer: str | None, expected: str
) -> None:
    assert bucket_key(ANONYMOUS, peer, None, []) == expected


def token(**claims: object) -> str:
    payload = {"exp": int(time.time()) + 300, **claims}
    return str(jose_jwt.encode({"alg": "HS256", "kid": "keys"}, payload, KEY, algorithms=["HS256"]))


def jwt_caller(subject: str | None, client_id: str, tier: str = "free") -> Caller:
    return Caller(client_id=client_id, subject=subject, tier=tier, method="jwt")


def test_jwt_callers_are_keyed_by_issuer_and_subject_not_by_a_shared_azp() -> None:
    one = token(iss="idp", sub="1", azp="web")
    two = token(iss="idp", sub="2", azp="web")
    assert bucket_key(jwt_caller("1", "web"), "10.0.0.5", None, [], bearer_token=one) == (
        "jwt:free:idp:sub:1"
    )
    assert bucket_key(jwt_caller("2", "web"), "10.0.0.5", None, [], bearer_token=two) == (
        "jwt:free:idp:sub:2"
    )
    # Another issuer's subject 1 is another client; a URL issuer is digested.
    other = token(iss="https://other.example", sub="1")
    assert bucket_key(jwt_caller("1", "1"), None, None, [], bearer_token=other) == (
        "jwt:free:~" + hashlib.sha256(b"https://other.example").hexdigest()[:32] + ":sub:1"
    )


def test_a_configured_claim_keys_jwt_callers_instead() -> None:
    bearer = token(iss="idp", sub="1", tenant="acme")
    key = bucket_key(
        jwt_caller("1", "web"), None, None, [], bearer_token=bearer, client_claim="tenant"
    )
    assert key == "jwt:free:idp:tenant:acme"


def test_a_token_without_a_subject_is_its_client() -> None:
    bearer = token(iss="idp", client_id="batch-job")
    assert bucket_key(jwt_caller(None, "batch-job"), None, None, [], bearer_token=bearer) == (
        "jwt:free:idp:client:batch-job"
    )


def test_the_tier_and_the_credential_are_part_of_the_key() -> None:
    api_key = Caller(client_id="web", tier="pro", method="api_key")
    assert bucket_key(api_key, None, None, []) == "key:pro:web"
    assert bucket_key(jwt_caller("web", "web"), None, None, [], bearer_token=token(sub="web")) == (
        "jwt:free::sub:web"
    )


@pytest.mark.parametrize(
    "hostile",
    ["'; DROP TABLE budgets; --", "{switchyard:budget:victim}", "a b", "x" * 500, "é", ""],
)
def test_no_value_becomes_part_of_a_key_unchecked(hostile: str) -> None:
    keys = [
        bucket_key(
            Caller(client_id=hostile or "x", tier=hostile or "t", method="api_key"), None, None, []
        ),
        bucket_key(
            jwt_caller(hostile, "c"), None, None, [], bearer_token=token(iss=hostile, sub=hostile)
        ),
        bucket_key(ANONYMOUS, "10.0.0.5", hostile, PROXIES),
        bucket_key(ANONYMOUS, hostile, None, PROXIES),
    ]
    for key in keys:
        assert SAFE_KEY.fullmatch(key), key
        assert len(key) <= 160


# Against the gateway.


def budgeted(platform: DemoPlatform, capacity: int = 5, **budgets: Any) -> dict[str, Any]:
    return gateway_settings(
        platform.addresses,
        cost={"mode": "enforce"},
        budgets={
            "enabled": True,
            "key_prefix": f"switchyard:test:{uuid.uuid4().hex}",
            "tiers": {
                "anonymous": {"capacity": capacity, "refill_per_second": 1e-6},
                "free": {"capacity": 10, "refill_per_second": 1e-6},
                "pro": {"capacity": 50, "refill_per_second": 1e-6},
            },
            **budgets,
        },
        auth={
            "jwt": {"keys": [{"kid": "keys", "algorithms": ["HS256"], "secret": SECRET}]},
            "api_keys": [
                {
                    "hash": "sha256:" + hashlib.sha256(PARTNER_KEY.encode()).hexdigest(),
                    "client_id": "web",
                    "tier": "pro",
                }
            ],
        },
    )


@asynccontextmanager
async def gateway_from(
    settings: dict[str, Any], peer: str = "203.0.113.9"
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway, reached from ``peer`` as the TCP peer."""
    app = create_app(validate_config(settings), demo_graph)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=(peer, 1234))
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


async def left(client: httpx.AsyncClient, headers: Mapping[str, str]) -> int | None:
    """Spend one point; what the bucket holds afterwards (None when refused)."""
    response = await query(client, ONE_POINT, headers=headers)
    if response.status_code != 200:
        return None
    available: int = response.json()["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"]
    return available


async def test_an_untrusted_peer_rotating_x_forwarded_for_shares_one_bucket(
    platform: DemoPlatform,
) -> None:
    async with gateway_from(budgeted(platform)) as client:
        seen = [await left(client, {"X-Forwarded-For": f"198.51.100.{i}"}) for i in range(6)]
    assert seen == [4, 3, 2, 1, 0, None]


async def test_behind_a_trusted_proxy_each_client_has_its_bucket_and_cannot_forge_another(
    platform: DemoPlatform,
) -> None:
    settings = budgeted(platform, trusted_proxies=["10.0.0.0/8"])
    async with gateway_from(settings, peer="10.0.0.5") as client:
        first = await left(client, {"X-Forwarded-For": "203.0.113.7"})
        second = await left(client, {"X-Forwarded-For": "203.0.113.8"})
        # Entries left of the client's address are the client's own writing: not read.
        forged = [
            await left(client, {"X-Forwarded-For": f"6.6.6.{i}, 203.0.113.7"}) for i in range(4)
        ]
        # A proxy that wrote garbage: its own bucket, the same one for every such request.
        garbage = [
            await left(client, {"X-Forwarded-For": value})
            for value in ("'; DROP TABLE budgets; --", "{victim}", "203.0.113.9, nonsense")
        ]
    assert (first, second) == (4, 4)
    assert forged == [3, 2, 1, 0]
    assert garbage == [4, 3, 2]


async def test_an_ipv6_client_is_its_64(platform: DemoPlatform) -> None:
    settings = budgeted(platform, trusted_proxies=["10.0.0.0/8"])
    async with gateway_from(settings, peer="10.0.0.5") as client:
        same = [await left(client, {"X-Forwarded-For": f"2001:db8:1:2:{i:x}::1"}) for i in range(3)]
        other = await left(client, {"X-Forwarded-For": "2001:db8:1:3::1"})
    assert same == [4, 3, 2]
    assert other == 4


async def test_jwt_callers_sharing_an_azp_have_their_own_buckets(platform: DemoPlatform) -> None:
    async with gateway_from(budgeted(platform)) as client:
        one = {"Authorization": f"Bearer {token(sub='1', azp='web')}"}
        two = {"Authorization": f"Bearer {token(sub='2', azp='web')}"}
        seen = [await left(client, one), await left(client, one), await left(client, two)]
    assert seen == [9, 8, 9]  # the free tier: 10 points each


async def test_one_tier_never_clamps_another_clients_bucket(platform: DemoPlatform) -> None:
    # An API key for client "web" (pro, 50 points) and tokens whose azp is "web" (free, 10):
    # one bucket before, so the free tier's capacity clamped the pro client's points.
    async with gateway_from(budgeted(platform)) as client:
        partner = {"X-Api-Key": PARTNER_KEY}
        user = {"Authorization": f"Bearer {token(sub='7', azp='web')}"}
        seen = [await left(client, partner), await left(client, user), await left(client, partner)]
        response = await query(client, ONE_POINT, headers=partner)
    assert seen == [49, 9, 48]
    assert response.json()["extensions"]["cost"]["throttleStatus"]["maximumAvailable"] == 50.0


async def test_a_configured_claim_keys_jwt_callers_and_is_required(
    platform: DemoPlatform,
) -> None:
    settings = budgeted(platform)
    settings["auth"]["jwt"]["client_claim"] = "tenant"
    async with gateway_from(settings) as client:
        one = {"Authorization": f"Bearer {token(sub='1', tenant='acme')}"}
        two = {"Authorization": f"Bearer {token(sub='2', tenant='acme')}"}
        seen = [await left(client, one), await left(client, two)]
        missing = await query(client, ONE_POINT, {"Authorization": f"Bearer {token(sub='3')}"})
    assert seen == [9, 8]  # one tenant, one bucket
    assert missing.status_code == 401


async def test_keys_written_to_redis_hold_no_value_a_client_sent(
    platform: DemoPlatform, redis: Redis
) -> None:
    prefix = f"switchyard:test:{uuid.uuid4().hex}"
    settings = budgeted(
        platform,
        trusted_proxies=["10.0.0.0/8"],
        backend="redis",
        redis_url=REDIS_URL,
        key_prefix=prefix,
    )
    hostile = ["'; DROP TABLE budgets; --", "{x}", "203.0.113.7", "2001:db8:1:2::5"]
    async with gateway_from(settings, peer="10.0.0.5") as client:
        for value in hostile:
            assert await left(client, {"X-Forwarded-For": value}) is not None
        hostile_jwt = token(iss="'; DROP", sub="{}; rm -rf /")
        assert await left(client, {"Authorization": f"Bearer {hostile_jwt}"}) is not None
    keys = sorted([key async for key in redis.scan_iter(match=f"{{{prefix}:*")])
    assert (
        keys
        == sorted(
            [
                f"{{{prefix}:ip:anonymous:10.0.0.5}}",  # both garbage values: the proxy's bucket
                f"{{{prefix}:ip:anonymous:203.0.113.7}}",
                f"{{{prefix}:ip:anonymous:2001:db8:1:2::/64}}",
                f"{{{prefix}:jwt:free:~"
                + hashlib.sha256(b"'; DROP").hexdigest()[:32]
                + ":sub:~"
                + hashlib.sha256(b"{}; rm -rf /").hexdigest()[:32]
                + "}",
            ]
        )
    )


async def test_served_by_uvicorn_the_peer_is_the_tcp_peer_whatever_x_forwarded_for_says(
    platform: DemoPlatform, tmp_path: Path
) -> None:
    # uvicorn rewrites the client address from X-Forwarded-For when the peer is loopback,
    # unless told not to: then every forged address would get a fresh bucket.
    settings = budgeted(platform, capacity=3)
    with gateway_processes(settings, 1, tmp_path) as (url,):
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            seen = []
            for i in range(4):
                forged = {"X-Forwarded-For": f"198.51.100.{i}"}
                seen.append(await left(client, forged))
    assert seen == [2, 1, 0, None]


async def test_concurrent_forged_addresses_still_share_the_peers_bucket(
    platform: DemoPlatform,
) -> None:
    async with gateway_from(budgeted(platform, capacity=10)) as client:
        responses = await asyncio.gather(
            *(
                query(client, ONE_POINT, headers={"X-Forwarded-For": f"192.0.2.{i}"})
                for i in range(30)
            )
        )
    assert sorted(r.status_code for r in responses) == [200] * 10 + [429] * 20
