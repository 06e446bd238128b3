"""The ``switchyard`` command line, run as a user would run it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from services.launcher import find_free_ports, port_is_free
from switchyard.cli import main
from switchyard.config import DEMO_CONFIG

SWITCHYARD = [sys.executable, "-m", "switchyard.cli"]


def test_schema_prints_the_sdl(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    sdl = capsys.readouterr().out
    assert "type Query {" in sdl
    assert "users(first: Int = 20, after: String): UserConnection!" in sdl
    assert "enum Tier {" in sdl


def test_config_check_accepts_the_demo_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", str(DEMO_CONFIG)]) == 0
    assert capsys.readouterr().out == f"{DEMO_CONFIG}: ok\n"


def test_config_check_names_the_broken_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('[upstreams.accounts]\nkind = "soap"\ninstances = ["http://127.0.0.1:1"]\n')
    assert main(["config", "check", str(broken)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert error.startswith(f"switchyard: {broken}: upstreams.accounts.kind: Input should be")


def consecutive_free_ports(count: int) -> int:
    for base in range(23000, 60000, 97):
        if all(port_is_free("127.0.0.1", base + i) for i in range(count)):
            return base
    raise RuntimeError("no free port range")


def wait_for(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer in {timeout} s")


def children_of(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return children


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


def test_demo_serves_the_graph_and_stops_cleanly_on_sigterm() -> None:
    (gateway_port,) = find_free_ports(1)
    services_port = consecutive_free_ports(5)
    process = subprocess.Popen(
        [*SWITCHYARD, "demo", "--port", str(gateway_port), "--services-port", str(services_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{gateway_port}"
        wait_for(url + "/healthz")
        assert process.stdout is not None
        assert process.stdout.readline() == f"GraphiQL: {url}/graphql\n"
        response = httpx.post(
            url + "/graphql",
            json={"query": '{ user(id: "1") { name } product(id: "1") { stock { available } } }'},
            headers={"X-Switchyard-Debug": "1"},
        )
        assert response.status_code == 200
        assert set(response.json()["extensions"]["upstreams"]) == {
            "accounts",
            "catalog",
            "inventory",
        }
        services = children_of(process.pid)
        assert len(services) == 5
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    assert not [pid for pid in services if alive(pid)]
    for port in [gateway_port, *range(services_port, services_port + 5)]:
        assert port_is_free("127.0.0.1", port)


def test_serve_runs_the_gateway_from_a_config_file(tmp_path: Path) -> None:
    (port,) = find_free_ports(1)
    process = subprocess.Popen(
        [*SWITCHYARD, "serve", "--config", str(DEMO_CONFIG), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "SWITCHYARD_SERVER__DEBUG": "false"},
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz")
        # The demo services are not running here: the gateway is alive but not ready.
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 503
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    assert port_is_free("127.0.0.1", port)


def test_serve_refuses_a_broken_config(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[server]\nport = 8000\n")
    result = subprocess.run(
        [*SWITCHYARD, "serve", "--config", str(broken)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert result.stderr == f"switchyard: {broken}: upstreams: Field required\n"


def test_cost_explains_an_operation_field_by_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    operation = tmp_path / "op.graphql"
    operation.write_text("query($n: Int!) { products(first: $n) { edges { node { name } } } }")
    assert main(["cost", str(operation), "--variables", '{"n": 7}']) == 0
    assert capsys.readouterr().out == (
        "query cost 9\n"
        "  products  Query.products: ProductConnection!  9 = 1 + 8\n"
        "    edges  ProductConnection.edges: [ProductEdge!]!  8 = 1 + 7 x 1\n"
        "      node  ProductEdge.node: Product!  1 = 1 + 0\n"
        "        name  Product.name: String!  0\n"
    )


def test_cost_reads_standard_input_and_reports_bad_input_in_one_line() -> None:
    result = subprocess.run(
        [*SWITCHYARD, "cost", "-"], input="{ users(first: ", capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr == "switchyard: Syntax Error: Unexpected <EOF>.\n"
