"""``switchyard token``: tokens for the demo, and only for configs whose key is marked dev."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import OctKey

from switchyard.cli import main
from switchyard.config import load_config
from tests.conftest import PROJECT_CONFIG as DEMO_CONFIG
from tests.conftest import open_gateway, unreachable_addresses

PRODUCTION = """
[[auth.jwt.keys]]
kid = "prod"
algorithms = ["HS256"]
secret = "a-production-secret-that-is-long-enough"

[upstreams.accounts]
kind = "rest"
instances = ["http://127.0.0.1:7001"]
"""


def demo_secret() -> OctKey:
    (key,) = load_config(DEMO_CONFIG, environ={}).auth.jwt.keys
    assert key.secret is not None
    return OctKey.import_key(key.secret.get_secret_value())


def test_it_prints_a_token_for_the_subject_and_scopes(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["token", "--sub", "42", "--scope", "orders:read", "--scope", "admin", "--ttl", "600"]
    assert main(argv) == 0
    token = capsys.readouterr().out.strip()
    decoded = jose_jwt.decode(token, demo_secret(), algorithms=["HS256"])
    assert decoded.header == {"alg": "HS256", "kid": "demo-dev", "typ": "JWT"}
    assert decoded.claims["sub"] == "42"
    assert decoded.claims["scope"] == "orders:read admin"
    assert decoded.claims["exp"] - decoded.claims["iat"] == 600
    assert abs(decoded.claims["iat"] - time.time()) < 5


async def test_the_demo_gateway_accepts_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "--sub", "42", "--scope", "orders:read"]) == 0
    token = capsys.readouterr().out.strip()
    demo = load_config(DEMO_CONFIG, environ={})
    addresses = unreachable_addresses()
    nowhere = {
        name: settings.model_copy(update={"instances": addresses[name]})
        for name, settings in demo.upstreams.items()
    }
    async with open_gateway(demo.model_copy(update={"upstreams": nowhere})) as client:
        response = await client.post(
            "/graphql",
            json={"query": "{ orders(first: 0) { totalCount } }"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.json()["data"] == {"orders": {"totalCount": None}}
    assert "errors" not in response.json()


def test_it_refuses_a_config_whose_key_is_not_marked_dev(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "production.toml"
    config.write_text(PRODUCTION)
    assert main(["token", "--sub", "42", "--config", str(config)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"switchyard: {config}: no JWT key in this config is marked dev = true\n"
    )
    assert "a-production-secret" not in captured.err


def test_it_refuses_a_ttl_that_is_not_positive(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "--sub", "42", "--ttl", "0"]) == 2
    assert capsys.readouterr().err == "switchyard: --ttl must be a positive number of seconds\n"
