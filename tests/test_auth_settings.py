"""The ``[auth]`` section: keys that could be confused are refused, secrets never echoed."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc.jwk import ECKey, RSAKey

from switchyard.auth.settings import AuthSettings
from switchyard.config import ConfigError, load_config, validate_config
from tests.conftest import PROJECT_CONFIG as DEMO_CONFIG

SECRET = "a-secret-that-must-never-be-echoed-0123456789"
RSA_PEM = RSAKey.generate_key(2048).as_pem(private=False).decode()
EC_PEM = ECKey.generate_key("P-256").as_pem(private=False).decode()


def config_with(auth: dict[str, Any]) -> dict[str, Any]:
    return {"auth": auth, "upstreams": {"accounts": {"kind": "rest", "instances": ["http://a"]}}}


def problem(auth: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as refused:
        validate_config(config_with(auth), source="switchyard.toml")
    message = str(refused.value)
    assert SECRET not in message
    return message


def test_the_demo_config_has_a_dev_key_and_hashed_api_keys() -> None:
    auth = load_config(DEMO_CONFIG, environ={}).auth
    assert auth.allow_anonymous is True
    assert [(k.kid, k.algorithms, k.dev) for k in auth.jwt.keys] == [("demo-dev", ["HS256"], True)]
    assert [(k.client_id, k.scopes, k.tier) for k in auth.api_keys] == [
        ("demo-partner", ["orders:read"], "pro"),
        ("demo-admin", ["orders:read", "admin"], "service"),
    ]
    assert all(k.hash.startswith("sha256:") for k in auth.api_keys)


def test_without_an_auth_section_anonymous_callers_are_allowed_and_nothing_else() -> None:
    auth = validate_config(config_with({})).auth
    assert auth == AuthSettings()
    assert auth.allow_anonymous is True
    assert not auth.jwt.enabled
    assert auth.api_keys == []


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (
            {"algorithms": ["HS256", "RS256"], "secret": SECRET},
            "a key may not mix HMAC (HS*) and asymmetric algorithms",
        ),
        (
            {"algorithms": ["HS256"], "public_key": RSA_PEM},
            "a public key verifies asymmetric algorithms only",
        ),
        (
            {"algorithms": ["RS256"], "secret": SECRET},
            "a secret verifies HMAC algorithms (HS256, HS384, HS512) only",
        ),
        ({"algorithms": ["none"], "secret": SECRET}, "unsupported algorithm 'none'"),
        ({"algorithms": ["HS256"], "secret": "short"}, "secret must be at least 32 bytes long"),
        (
            {"algorithms": ["RS256"], "public_key": EC_PEM},
            "algorithm RS256 does not fit this public key",
        ),
        ({"algorithms": ["ES256"], "public_key": "not a pem"}, "not a PEM public key"),
        (
            {"algorithms": ["HS256"], "secret": SECRET, "public_key": RSA_PEM},
            "give exactly one of secret, public_key, public_key_file",
        ),
    ],
    ids=[
        "hs-and-rs",
        "hs-with-public-key",
        "rs-with-secret",
        "none",
        "short-secret",
        "rs-with-ec-key",
        "bad-pem",
        "two-keys",
    ],
)
def test_a_key_that_could_be_confused_is_refused(key: dict[str, Any], message: str) -> None:
    assert problem({"jwt": {"keys": [key]}}) == (f"switchyard.toml: auth.jwt.keys.0: {message}")


def test_a_jwks_never_accepts_hmac_algorithms() -> None:
    jwks = {"url": "https://issuer.test/jwks.json", "algorithms": ["RS256", "HS256"]}
    assert problem({"jwt": {"jwks": jwks}}) == (
        "switchyard.toml: auth.jwt.jwks: algorithm 'HS256' is not allowed for a JWKS"
    )


def test_an_api_key_is_configured_by_its_hash_only() -> None:
    message = problem({"api_keys": [{"hash": SECRET, "client_id": "partner"}]})
    assert message == (
        "switchyard.toml: auth.api_keys.0.hash: String should match pattern '^sha256:[0-9a-f]{64}$'"
    )


def test_unknown_auth_keys_are_named() -> None:
    assert problem({"allow_anonymus": False}) == (
        "switchyard.toml: auth.allow_anonymus: unknown key"
    )


def test_the_secret_is_masked_in_the_settings_repr() -> None:
    auth = validate_config(
        config_with({"jwt": {"keys": [{"algorithms": ["HS256"], "secret": SECRET}]}})
    ).auth
    assert SECRET not in repr(auth)
    assert SECRET not in str(auth.model_dump())
