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
