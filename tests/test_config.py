"""The config file: validated at start-up, unknown keys rejected, errors name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchyard.config import ConfigError, load_config
from tests.conftest import PROJECT_CONFIG as DEMO_CONFIG

VALID = """
[server]
port = 9000

[upstreams.accounts]
kind = "rest"
instances = ["http://127.0.0.1:7001", "http://127.0.0.1:7011"]
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "switchyard.toml"
    path.write_text(text)
    return path


def test_the_demo_config_is_valid() -> None:
    config = load_config(DEMO_CONFIG, environ={})
    assert set(config.upstreams) == {
        "accounts",
        "orders",
        "reviews",
        "catalog",
        "inventory",
        "shipping",
    }
    assert config.upstreams["catalog"].kind == "grpc"
    assert config.server.debug is True


def test_a_minimal_file_gets_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID), environ={})
    assert config.server.port == 9000
    assert config.server.request_timeout == 10.0
    assert config.upstreams["accounts"].timeout == 2.0
    assert config.upstreams["accounts"].instances == [
        "http://127.0.0.1:7001",
        "http://127.0.0.1:7011",
    ]


def test_an_unknown_key_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, VALID + "timeuot = 3\n")
    with pytest.raises(ConfigError) as error:
        load_config(path, environ={})
    assert str(error.value) == f"{path}: upstreams.accounts.timeuot: unknown key"


def test_a_wrong_value_is_named_without_echoing_it(tmp_path: Path) -> None:
    path = write(tmp_path, VALID.replace("port = 9000", 'port = "s3cr3t-value"'))
    with pytest.raises(ConfigError) as error:
        load_config(path, environ={})
    message = str(error.value)
    assert message.startswith(f"{path}: server.port: ")
    assert "s3cr3t-value" not in message
    assert "\n" not in message


def test_broken_toml_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[server\nport = 1")
    with pytest.raises(ConfigError) as error:
        load_config(path, environ={})
    assert str(error.value).startswith(f"{path}: not valid TOML")
    assert "\n" not in str(error.value)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml", environ={})


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    environ = {
        "SWITCHYARD_SERVER__PORT": "9100",
        "SWITCHYARD_UPSTREAMS__ACCOUNTS__INSTANCES": '["http://10.0.0.1:80"]',
        "UNRELATED": "x",
    }
    config = load_config(write(tmp_path, VALID), environ=environ)
    assert config.server.port == 9100
    assert config.upstreams["accounts"].instances == ["http://10.0.0.1:80"]


def test_an_upstream_needs_an_instance(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        VALID.replace(
            'instances = ["http://127.0.0.1:7001", "http://127.0.0.1:7011"]', "instances = []"
        ),
    )
    with pytest.raises(ConfigError) as error:
        load_config(path, environ={})
    assert "upstreams.accounts.instances: List should have at least 1 item" in str(error.value)


SECRET_CONFIG = """
[auth.jwt]
[[auth.jwt.keys]]
kid = "hs-1"
algorithms = ["HS256"]
secret = "${file:SECRET_PATH}"

[budgets]
redis_url = "redis://:${env:REDIS_PASSWORD}@127.0.0.1:6379/0"

[upstreams.accounts]
kind = "rest"
instances = ["http://127.0.0.1:7001"]
headers = { authorization = "Bearer ${env:ACCOUNTS_TOKEN}", x-price = "$${not a reference}" }
"""


def test_secrets_come_from_files_and_environment_variables(tmp_path: Path) -> None:
    secret = tmp_path / "jwt-secret"
    secret.write_text("a-file-secret-of-at-least-thirty-two-bytes\n")
    path = write(tmp_path, SECRET_CONFIG.replace("SECRET_PATH", str(secret)))
    config = load_config(path, environ={"REDIS_PASSWORD": "hunter2", "ACCOUNTS_TOKEN": "t0k"})
    (key,) = config.auth.jwt.keys
    assert key.secret is not None
    assert key.secret.get_secret_value() == "a-file-secret-of-at-least-thirty-two-bytes"
    assert config.budgets.redis_url.endswith(":hunter2@127.0.0.1:6379/0")
    assert config.upstreams["accounts"].static_headers() == {
        "authorization": "Bearer t0k",
        "x-price": "${not a reference}",
    }
    assert "t0k" not in repr(config.upstreams["accounts"])


def test_a_missing_secret_names_the_key_not_the_value(tmp_path: Path) -> None:
    path = write(tmp_path, SECRET_CONFIG.replace("SECRET_PATH", str(tmp_path / "absent")))
    with pytest.raises(ConfigError) as error:
        load_config(path, environ={"REDIS_PASSWORD": "hunter2", "ACCOUNTS_TOKEN": "t"})
    assert str(error.value) == (
        f"{path}: auth.jwt.keys.0.secret: cannot read {tmp_path / 'absent'} "
        "(No such file or directory)"
    )
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, SECRET_CONFIG.replace("SECRET_PATH", "/dev/null")), environ={})
    assert str(error.value).endswith(
        "budgets.redis_url: environment variable REDIS_PASSWORD is not set"
    )


def test_the_command_line_s_variables_are_not_config_overrides(tmp_path: Path) -> None:
    environ = {
        "SWITCHYARD_CONFIG": "/elsewhere.toml",
        "SWITCHYARD_PORT": "9999",
        "SWITCHYARD_HOST": "0.0.0.0",
        "SWITCHYARD_GRAPH": "app:graph",
    }
    config = load_config(write(tmp_path, VALID), environ=environ)
    assert (config.server.host, config.server.port) == ("127.0.0.1", 9000)


def test_an_http_upstream_s_pool_is_configured_and_checked(tmp_path: Path) -> None:
    pool = 'max_connections = 8\nkeepalive_expiry = 2.5\nhttp_transport = "httpcore"\n'
    accounts = load_config(write(tmp_path, VALID + pool), environ={}).upstreams["accounts"]
    assert (accounts.max_connections, accounts.keepalive_expiry) == (8, 2.5)
    assert accounts.http_transport == "httpcore"
    defaults = load_config(write(tmp_path, VALID), environ={}).upstreams["accounts"]
    assert defaults.http_transport == "aiohttp"
    for wrong, message in (
        ("keepalive_expiry = 0", "upstreams.accounts.keepalive_expiry: Input should be greater"),
        ('http_transport = "h2"', "upstreams.accounts.http_transport: Input should be"),
    ):
        with pytest.raises(ConfigError) as error:
            load_config(write(tmp_path, VALID + wrong), environ={})
        assert message in str(error.value)
