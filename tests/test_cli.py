"""The ``switchyard`` command line, run as a user would run it."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import httpx
import pytest

from services.launcher import find_free_ports, port_is_free
from switchyard import __version__
from switchyard.cli import main
from tests.conftest import PROJECT_CONFIG as DEMO_CONFIG

SWITCHYARD = [sys.executable, "-m", "switchyard.cli"]


HELLO_GRAPH = """\
import strawberry
from switchyard import Graph

@strawberry.type
class Query:
    hello: str = "world"

graph = Graph(schema=strawberry.Schema(query=Query))
"""


def hello_folder(folder: Path) -> Path:
    """``folder`` holding the hello graph and ``gateway.toml`` serving it; the config's path."""
    (folder / "hello.py").write_text(HELLO_GRAPH)
    config = folder / "gateway.toml"
    config.write_text('[graph]\nmodule = "hello:graph"\n')
    return config


def test_version_is_the_installed_one(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"switchyard {__version__}\n"
    assert __version__ == "0.1.0"


def test_schema_prints_the_sdl(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "--config", str(DEMO_CONFIG)]) == 0
    sdl = capsys.readouterr().out
    assert "type Query {" in sdl
    assert "users(first: Int = 20, after: String): UserConnection" in sdl
    assert "addReview(productId: ID!, rating: Int!, body: String!): Review" in sdl
    assert "enum Tier {" in sdl


def test_config_check_loads_the_graph_and_names_its_upstreams(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["config", "check", str(DEMO_CONFIG)]) == 0
    upstreams = "accounts, catalog, inventory, orders, reviews, shipping"
    assert capsys.readouterr().out == f"{DEMO_CONFIG}: ok (6 upstreams: {upstreams})\n"


def demo_config_without(tmp_path: Path, table: str | None, extra: str = "") -> Path:
    """The demo config copied beside the demo graph's checkout, one table removed."""
    text = DEMO_CONFIG.read_text()
    start = end = 0
    if table is not None:
        start = text.index(f"[{table}]")
        end = text.index("\n\n", start)
    config = DEMO_CONFIG.parent / f".test-{tmp_path.name}.toml"
    config.write_text(text[:start] + text[end:] + extra)
    return config


@pytest.mark.parametrize(
    ("removed", "extra", "message"),
    [
        (
            "upstreams.inventory",
            "",
            "upstreams.inventory: the graph calls this upstream; "
            "add an [upstreams.inventory] table",
        ),
        (
            None,
            '\n[upstreams.payments]\nkind = "rest"\ninstances = ["http://127.0.0.1:1"]\n',
            "upstreams.payments: unknown upstream; the graph calls accounts, catalog, inventory, "
            "orders, reviews, shipping",
        ),
        (
            "upstreams.shipping",
            '\n[upstreams.shipping]\nkind = "soap"\ninstances = ["http://127.0.0.1:1"]\n',
            "upstreams.shipping.kind: unknown kind 'soap'; known: grpc, rest, xml",
        ),
    ],
    ids=["missing upstream", "unknown upstream", "unknown kind"],
)
def test_config_check_reports_what_the_graph_cannot_use_in_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    removed: str | None,
    extra: str,
    message: str,
) -> None:
    config = demo_config_without(tmp_path, removed, extra)
    try:
        assert main(["config", "check", str(config)]) == 2
    finally:
        config.unlink()
    assert capsys.readouterr().err == f"switchyard: {config}: {message}\n"


def test_config_check_names_the_broken_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('[server]\nport = "eighty"\n')
    assert main(["config", "check", str(broken)]) == 2
    assert capsys.readouterr().err == (
        f"switchyard: {broken}: server.port: Input should be a valid integer, "
        "unable to parse string as an integer\n"
    )


def test_a_graph_that_cannot_be_found_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "--graph", "no_such_graph_module:graph"]) == 2
    assert capsys.readouterr().err.startswith(
        "switchyard: graph 'no_such_graph_module:graph': no module named 'no_such_graph_module'"
    )
    assert main(["schema", "--graph", "schema:nothing"]) == 2
    assert capsys.readouterr().err == (
        "switchyard: graph 'schema:nothing': schema has no attribute 'nothing'\n"
    )


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


def next_line_containing(stream: IO[str], text: str, timeout: float) -> str:
    """The first line of ``stream`` with ``text``, read in a thread so a silent stream cannot
    hang the test."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line)
            if text in line:
                return

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + timeout
    while True:
        line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        if text in line:
            return line


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
    services_port = consecutive_free_ports(6)
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
        printed = [process.stdout.readline() for _ in range(21)]
        assert printed[0] == "Starting the demo services:\n"
        assert f"  accounts   starting on http://127.0.0.1:{services_port}\n" in printed
        assert "  shipping   ready\n" in printed
        assert any(line.startswith(f"  GraphiQL   {url}/graphql") for line in printed)
        assert any(line.startswith(f"  Metrics    {url}/metrics") for line in printed)
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
        assert len(services) == 6
        # A service that dies is reported in the demo's output.
        assert process.stderr is not None
        os.kill(services[0], signal.SIGKILL)
        reported = next_line_containing(process.stderr, "service died", timeout=30)
        assert reported.startswith("demo: the accounts service died;")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    assert not [pid for pid in services if alive(pid)]
    for port in [gateway_port, *range(services_port, services_port + 6)]:
        assert port_is_free("127.0.0.1", port)


def test_demo_names_a_port_in_use_in_one_line() -> None:
    (gateway_port,) = find_free_ports(1)
    services_port = consecutive_free_ports(6)
    command = [*SWITCHYARD, "demo", "--port", str(gateway_port)]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", services_port + 2))
        taken.listen()
        result = subprocess.run(
            [*command, "--services-port", str(services_port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert result.stderr == (
        f"switchyard demo: reviews#0: port {services_port + 2} on 127.0.0.1 is already in use\n"
    )


def test_the_smallest_graph_serves_hello_from_a_folder_outside_the_repository(
    tmp_path: Path,
) -> None:
    hello_folder(tmp_path)
    (port,) = find_free_ports(1)
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "switchyard"), "serve"],
        cwd="/",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        # The command line's variables: the config file and the port, no flags.
        env={
            **os.environ,
            "SWITCHYARD_CONFIG": str(tmp_path / "gateway.toml"),
            "SWITCHYARD_PORT": str(port),
        },
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz")
        response = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": "{ hello }"})
        assert response.json()["data"] == {"hello": "world"}
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").json() == {
            "upstreams": {},
            "status": "ready",
        }
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_serve_refuses_a_dev_key_unless_told_it_is_development() -> None:
    result = subprocess.run(
        [*SWITCHYARD, "serve", "--config", str(DEMO_CONFIG), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "switchyard: auth.jwt.keys: 'demo-dev' is marked dev = true (anyone can sign with it); "
        "remove it, or pass --dev for development\n"
    )


def test_serve_runs_the_gateway_from_a_config_file(tmp_path: Path) -> None:
    (port,) = find_free_ports(1)
    process = subprocess.Popen(
        [*SWITCHYARD, "serve", "--dev", "--config", str(DEMO_CONFIG), "--port", str(port)],
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


def test_serve_with_workers_answers_from_every_worker_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    config = str(hello_folder(tmp_path))
    (port,) = find_free_ports(1)
    process = subprocess.Popen(
        [*SWITCHYARD, "serve", "--config", config, "--port", str(port), "--workers", "2"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz")
        # Each worker imports the app itself: both must be up and serving the graph.
        workers = [pid for pid in children_of(process.pid) if b"spawn_main" in cmdline(pid)]
        assert len(workers) == 2
        for _ in range(8):  # new connections each time: the kernel spreads them over workers
            answer = httpx.post(f"http://127.0.0.1:{port}/graphql", json={"query": "{ hello }"})
            assert answer.json()["data"] == {"hello": "world"}
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    assert not any(alive(pid) for pid in workers)
    assert port_is_free("127.0.0.1", port)


def test_workers_must_be_a_positive_number(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--workers", "0"])
    assert "--workers: must be at least 1, not 0" in capsys.readouterr().err


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def test_serve_names_a_port_in_use_in_one_line(tmp_path: Path) -> None:
    hello_folder(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [*SWITCHYARD, "serve", "--config", str(tmp_path / "gateway.toml"), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert result.stderr == f"switchyard: port {port} on 127.0.0.1 is already in use\n"


def test_serve_refuses_a_config_without_a_graph(tmp_path: Path) -> None:
    bare = tmp_path / "bare.toml"
    bare.write_text("[server]\nport = 8000\n")
    result = subprocess.run(
        [*SWITCHYARD, "serve", "--config", str(bare)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert result.stderr == (
        'switchyard: no graph: set [graph] module = "package.module:graph" in the config, '
        "or --graph\n"
    )


def test_cost_explains_an_operation_field_by_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    operation = tmp_path / "op.graphql"
    operation.write_text("query($n: Int!) { products(first: $n) { edges { node { name } } } }")
    arguments = ["cost", "--config", str(DEMO_CONFIG), str(operation), "--variables", '{"n": 7}']
    assert main(arguments) == 0
    assert capsys.readouterr().out == (
        "query cost 9\n"
        "  products  Query.products: ProductConnection  9 = 1 + 8\n"
        "    edges  ProductConnection.edges: [ProductEdge!]!  8 = 1 + 7 x 1\n"
        "      node  ProductEdge.node: Product!  1 = 1 + 0\n"
        "        name  Product.name: String!  0\n"
    )


def test_cost_reads_standard_input_and_reports_bad_input_in_one_line() -> None:
    result = subprocess.run(
        [*SWITCHYARD, "cost", "--config", str(DEMO_CONFIG), "-"],
        input="{ users(first: ",
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr == "switchyard: Syntax Error: Unexpected <EOF>.\n"
