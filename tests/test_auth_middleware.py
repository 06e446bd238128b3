"""The HTTP edge: who may send GraphQL requests, and the exact 401 everyone else gets.

Tokens are minted with joserfc, not with pyjwt which the gateway verifies with,
so interoperability is proven rather than assumed. No demo service runs here:
the upstreams point at a closed port, and every accepted request asks only for
``orders(first: 0)``, which the gateway answers itself once ``orders:read`` holds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from switchyard.config import validate_config
from tests.conftest import gateway_settings, open_gateway, unreachable_addresses

NOWHERE = unreachable_addresses()
HS_SECRET = "test-hs256-secret-of-at-least-32-bytes!"
ISSUER = "https://issuer.test"
AUDIENCE = "switchyard-tests"
API_KEY = "partner-key-for-tests"
ORDERS_PROBE = "{ orders(first: 0) { totalCount } }"
ORDERS_PROBE_ANSWER = {"data": {"orders": {"totalCount": None}}}

pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated:UserWarning")

RSA_KEY = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
EC_KEY = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
ED_KEY = OKPKey.generate_key("Ed25519", parameters={"kid": "ed-1"})
HS_KEY = OctKey.import_key(HS_SECRET, parameters={"kid": "hs-1"})
SIGNERS: dict[str, Any] = {"HS256": HS_KEY, "RS256": RSA_KEY, "ES256": EC_KEY, "EdDSA": ED_KEY}


def auth_section(**overrides: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "allow_anonymous": True,
        "jwt": {
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "leeway": 30,
            "keys": [
                {"kid": "hs-1", "algorithms": ["HS256"], "secret": HS_SECRET},
                {"kid": "rsa-1", "algorithms": ["RS256"], "public_key": pem(RSA_KEY)},
                {"kid": "ec-1", "algorithms": ["ES256"], "public_key": pem(EC_KEY)},
                {"kid": "ed-1", "algorithms": ["EdDSA"], "public_key": pem(ED_KEY)},
            ],
        },
        "api_keys": [
            {
                "hash": "sha256:" + hashlib.sha256(API_KEY.encode()).hexdigest(),
                "client_id": "partner",
                "scopes": ["orders:read"],
                "tier": "partner",
            }
        ],
    }
    section.update(overrides)
    return section


def pem(key: Any) -> str:
    return str(key.as_pem(private=False).decode())


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {
        "sub": "42",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 300,
        "scope": "orders:read",
    }
    values.update(overrides)
    return {name: value for name, value in values.items() if value is not None}


def mint(alg: str = "RS256", kid: str | None = None, **claim_overrides: Any) -> str:
    key = SIGNERS[alg]
    header = {"alg": alg, "kid": kid or key.kid}
    return str(jose_jwt.encode(header, claims(**claim_overrides), key, algorithms=[alg]))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict[str, Any], payload: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64(sign(signing_input.encode()))}"


@pytest.fixture(scope="module")
async def edge() -> AsyncIterator[httpx.AsyncClient]:
    config = validate_config(gateway_settings(NOWHERE, auth=auth_section()))
    async with open_gateway(config) as client:
        yield client


@pytest.fixture(scope="module")
async def closed_edge() -> AsyncIterator[httpx.AsyncClient]:
    config = validate_config(gateway_settings(NOWHERE, auth=auth_section(allow_anonymous=False)))
    async with open_gateway(config) as client:
        yield client


async def post(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.post("/graphql", json={"query": ORDERS_PROBE}, headers=headers)


def challenge(reason: str) -> str:
    """RFC 6750: an error code only for a bearer token sent and failed, or two credentials."""
    if reason in ("missing credentials", "unknown API key", "unsupported authorization scheme"):
        return 'Bearer realm="switchyard"'
    error = "invalid_request" if reason == "more than one credential" else "invalid_token"
    return f'Bearer realm="switchyard", error="{error}", error_description="{reason}"'


def assert_refused(response: httpx.Response, reason: str, secret: str | None = None) -> None:
    assert response.status_code == 401
    assert response.json() == {
        "errors": [
            {
                "message": f"Authentication failed: {reason}.",
                "extensions": {
                    "code": "UNAUTHENTICATED",
                    "requestId": response.headers["x-request-id"],
                },
            }
        ]
    }
    assert response.headers["www-authenticate"] == challenge(reason)
    if secret:
        assert secret not in response.text
        assert secret not in str(response.headers)


@pytest.mark.parametrize("alg", ["HS256", "RS256", "ES256", "EdDSA"])
async def test_a_token_minted_by_another_jose_library_is_accepted(
    edge: httpx.AsyncClient, alg: str
) -> None:
    response = await post(edge, {"Authorization": f"Bearer {mint(alg)}"})
    assert response.status_code == 200
    assert response.json() == ORDERS_PROBE_ANSWER


async def test_scopes_may_come_as_an_scp_list(edge: httpx.AsyncClient) -> None:
    token = mint("RS256", scope=None, scp=["orders:read", "other"])
    response = await post(edge, {"Authorization": f"Bearer {token}"})
    assert response.json() == ORDERS_PROBE_ANSWER


async def test_clock_skew_within_the_leeway_is_forgiven(edge: httpx.AsyncClient) -> None:
    token = mint("ES256", exp=int(time.time()) - 10)
    response = await post(edge, {"Authorization": f"Bearer {token}"})
    assert response.json() == ORDERS_PROBE_ANSWER


async def test_a_token_without_the_scope_reads_public_fields_only(
    edge: httpx.AsyncClient,
) -> None:
    token = mint("RS256", scope="profile")
    response = await post(edge, {"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"orders": None}
    assert [(e["message"], e["path"], e["extensions"]["code"]) for e in body["errors"]] == [
        ("This field needs scope orders:read.", ["orders"], "FORBIDDEN")
    ]


NOW = int(time.time())
BAD_TOKENS: dict[str, tuple[Callable[[], str], str]] = {
    "expired": (lambda: mint("RS256", exp=NOW - 120), "token expired"),
    "not yet valid": (lambda: mint("RS256", nbf=NOW + 120), "token not yet valid"),
    "issued in the future": (lambda: mint("RS256", iat=NOW + 120), "token not yet valid"),
    "without exp": (lambda: mint("HS256", exp=None), "missing required claim"),
    "wrong issuer": (lambda: mint("ES256", iss="https://evil.test"), "wrong issuer"),
    "wrong audience": (lambda: mint("EdDSA", aud="someone-else"), "wrong audience"),
    "tampered payload": (
        lambda: tamper_payload(mint("RS256"), scope="orders:read admin"),
        "bad signature",
    ),
    "tampered signature": (lambda: tamper_signature(mint("ES256")), "bad signature"),
    "HS256 with the wrong secret": (
        lambda: forge(
            {"alg": "HS256", "kid": "hs-1"},
            claims(),
            lambda data: hmac.new(b"x" * 40, data, hashlib.sha256).digest(),
        ),
        "bad signature",
    ),
    "alg none": (
        lambda: forge({"alg": "none", "typ": "JWT"}, claims(), lambda data: b""),
        "algorithm not allowed",
    ),
    "HS256 signed with the RSA public key as secret": (
        lambda: forge(
            {"alg": "HS256", "kid": "rsa-1"},
            claims(),
            lambda data: hmac.new(pem(RSA_KEY).encode(), data, hashlib.sha256).digest(),
        ),
        "algorithm not allowed",
    ),
    "RS256 under the kid of the HS256 key": (
        lambda: mint("RS256", kid="hs-1"),
        "algorithm not allowed",
    ),
    "unknown kid": (lambda: mint("RS256", kid="retired-key"), "unknown key id"),
    "header that is not JSON": (lambda: "bm90LWpzb24.e30.c2ln", "malformed token"),
}


def tamper_payload(token: str, **changes: Any) -> str:
    header, payload, signature = token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    decoded.update(changes)
    return f"{header}.{b64(json.dumps(decoded).encode())}.{signature}"


def tamper_signature(token: str) -> str:
    header, payload, signature = token.split(".")
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    return f"{header}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"


@pytest.mark.parametrize("case", BAD_TOKENS)
async def test_a_bad_token_is_refused_with_its_reason(edge: httpx.AsyncClient, case: str) -> None:
    make, reason = BAD_TOKENS[case]
    token = make()
    response = await post(edge, {"Authorization": f"Bearer {token}"})
    assert_refused(response, reason, secret=token)


MALFORMED_HEADERS = {
    "Bearer alone": ("Bearer", "malformed bearer token"),
    "Bearer and spaces": ("Bearer   ", "malformed bearer token"),
    "two tokens": ("Bearer a.b.c d.e.f", "malformed bearer token"),
    "not base64url": ("Bearer e30.e30!.$$$", "malformed bearer token"),
    "two segments": ("Bearer e30.e30", "malformed bearer token"),
    "another scheme": ("Basic dXNlcjpwYXNzd29yZA==", "unsupported authorization scheme"),
}


@pytest.mark.parametrize("case", MALFORMED_HEADERS)
async def test_a_malformed_authorization_header_is_refused(
    edge: httpx.AsyncClient, case: str
) -> None:
    header, reason = MALFORMED_HEADERS[case]
    assert_refused(await post(edge, {"Authorization": header}), reason)


async def test_a_token_over_8_kib_is_refused_before_it_is_parsed(edge: httpx.AsyncClient) -> None:
    token = mint("HS256", padding="x" * 8192)
    assert len(token) > 8192
    assert_refused(await post(edge, {"Authorization": f"Bearer {token}"}), "token too large", token)


async def test_an_api_key_is_a_caller_with_its_configured_scopes(edge: httpx.AsyncClient) -> None:
    response = await post(edge, {"X-Api-Key": API_KEY})
    assert response.json() == ORDERS_PROBE_ANSWER


async def test_an_unknown_api_key_is_refused(edge: httpx.AsyncClient) -> None:
    key = "not-a-configured-key"
    assert_refused(await post(edge, {"X-Api-Key": key}), "unknown API key", key)


async def test_a_token_and_an_api_key_together_are_refused(edge: httpx.AsyncClient) -> None:
    headers = {"Authorization": f"Bearer {mint()}", "X-Api-Key": API_KEY}
    assert_refused(await post(edge, headers), "more than one credential")


async def test_the_api_key_header_name_is_configurable() -> None:
    settings = gateway_settings(NOWHERE, auth=auth_section(api_key_header="X-Partner-Key"))
    async with open_gateway(validate_config(settings)) as client:
        assert (await post(client, {"X-Partner-Key": API_KEY})).json() == ORDERS_PROBE_ANSWER
        default_name = await post(client, {"X-Api-Key": API_KEY})
    assert default_name.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_anonymous_callers_read_public_fields_when_allowed(edge: httpx.AsyncClient) -> None:
    response = await edge.post("/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_anonymous_callers_get_unauthenticated_on_protected_fields(
    edge: httpx.AsyncClient,
) -> None:
    body = (await post(edge, {})).json()
    assert body["data"] == {"orders": None}
    assert [(e["message"], e["path"], e["extensions"]["code"]) for e in body["errors"]] == [
        ("Sign in to see this field.", ["orders"], "UNAUTHENTICATED")
    ]


async def test_a_request_without_credentials_is_refused_when_anonymous_is_not_allowed(
    closed_edge: httpx.AsyncClient,
) -> None:
    assert_refused(await post(closed_edge, {}), "missing credentials")
    get = await closed_edge.get("/graphql", params={"query": "{ __typename }"})
    assert_refused(get, "missing credentials")


async def test_probes_and_the_ide_page_need_no_credentials(
    closed_edge: httpx.AsyncClient,
) -> None:
    assert (await closed_edge.get("/healthz")).status_code == 200
    page = await closed_edge.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")


async def test_a_bad_token_is_refused_even_where_anonymous_callers_are_allowed(
    edge: httpx.AsyncClient,
) -> None:
    token = mint("RS256", exp=NOW - 3600)
    response = await edge.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert_refused(response, "token expired", token)
