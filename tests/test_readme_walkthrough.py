"""The README's "Use your own services" walkthrough, run as written.

The section between ``<!-- own-graph:start -->`` and ``<!-- own-graph:end -->``
is this test's source: the files it shows are written into an empty folder
outside the repository, the commands it shows are run there, and the answers it
shows are the answers the gateway must give. An HTML comment on the line before
a code block says what the block is:

    <!-- file: NAME -->    the file NAME of the reader's folder (a later one replaces it)
    <!-- append: NAME -->  added to the end of NAME, after a blank line
    <!-- copy: PATH -->    (no block) the reader copies PATH of the checkout into the folder
    <!-- run -->           shell commands, one a line, each exiting 0
    <!-- output -->        exactly what the last command of the run block before printed
    <!-- serve -->         the gateway's command: it runs until the next serve, or the end
    <!-- request -->       a curl command, sent to the running gateway
    <!-- answer -->        the JSON answer to the request before (``timeMs`` values vary)

Every Python and TOML block of the section is a file or an append, and every
Python file is lint-clean as written. Blocks without a marker (how to start the
demo services) are prose: the test does their equivalent.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from services.launcher import DemoPlatform, find_free_ports

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SECTION = re.compile(r"<!-- own-graph:start -->\n(.*?)<!-- own-graph:end -->", re.S)
STEP = re.compile(
    r"^<!-- (?P<kind>[a-z]+)(?:: (?P<argument>\S+))? -->\n"
    r"(?:```(?P<language>\w*)\n(?P<body>.*?)^```$)?",
    re.M | re.S,
)
FENCE = re.compile(r"^```(\w+)$", re.M)
REPOSITORY_PACKAGES = {path.parent.name for path in ROOT.glob("*/__init__.py")} - {"switchyard"}
"""This checkout's graph and demo: a team's folder must not need any of them."""
BLOCKLESS = {"copy"}
KINDS = {"file", "append", "copy", "run", "output", "serve", "request", "answer"}

VENV_BIN = Path(sys.executable).parent
"""Where the reader's ``switchyard`` comes from: the environment it is installed in."""
RUFF = str(VENV_BIN / "ruff")
LINT = ["--isolated", "--line-length=88", "--target-version=py311"]
"""The repository's lint rules, at the width a README shows without scrolling."""
LINT_CHECKS = [
    [RUFF, "check", *LINT, "--select=E,F,W,I,B,UP,ASYNC,RUF,SIM"],
    [RUFF, "format", *LINT, "--check", "--diff"],
]

# The README shows the demo's default addresses: the services on 7001 (accounts) and
# 7004 (catalog), the gateway on 8000. Tests never use those fixed ports, so the test
# rewrites 127.0.0.1:7001 and 127.0.0.1:7004 in the config to free ports, gives the
# gateway a free port through SWITCHYARD_PORT (the command stays as shown), and sends
# the requests shown for localhost:8000 to that port.
README_ACCOUNTS = "127.0.0.1:7001"
README_CATALOG = "127.0.0.1:7004"
README_GATEWAY = "localhost:8000"

STARTUP_TIMEOUT_S = 15.0
POLL_INTERVAL_S = 0.05
STOP_TIMEOUT_S = 10.0
COMMAND_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Step:
    kind: str
    argument: str | None
    language: str | None
    body: str


def walkthrough_section(readme: str) -> str:
    found = SECTION.search(readme)
    assert found, "README.md has no own-graph section"
    return found.group(1)


def walkthrough_steps(section: str) -> list[Step]:
    """The marked blocks of the section, in order; a marker must sit right on its block."""
    steps = []
    for match in STEP.finditer(section):
        kind, body = match["kind"], match["body"]
        assert kind in KINDS, f"unknown README marker <!-- {kind} -->"
        assert (body is None) == (kind in BLOCKLESS), f"<!-- {kind} --> and its code block"
        steps.append(Step(kind, match["argument"], match["language"], body or ""))
    return steps


def curl_request(command: str) -> tuple[str, dict[str, str], str]:
    """The URL, headers and body of a README curl command (``-s``, ``-H``, ``-d`` only)."""
    words = shlex.split(command.replace("\\\n", " "))
    assert words[0] == "curl", command
    url, headers, body = None, {}, None
    arguments = iter(words[1:])
    for word in arguments:
        if word == "-s":
            continue
        if word == "-H":
            name, _, value = next(arguments).partition(":")
            headers[name.strip()] = value.strip()
        elif word == "-d":
            body = next(arguments)
        else:
            assert not word.startswith("-"), f"the test does not know curl's {word}"
            url = word
    assert url is not None and body is not None, command
    return url, headers, body


def imported_packages(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names.add(node.module.partition(".")[0])
    return names


def with_times_checked(value: Any) -> Any:
    """``value`` with each ``timeMs`` (a number that differs from run to run) left out."""
    if isinstance(value, dict):
        if "timeMs" in value:
            assert isinstance(value["timeMs"], int | float) and value["timeMs"] >= 0
        return {k: with_times_checked(v) for k, v in value.items() if k != "timeMs"}
    if isinstance(value, list):
        return [with_times_checked(v) for v in value]
    return value


class Walkthrough:
    """A reader following the README in ``folder``, against services on free ports."""

    def __init__(self, folder: Path, logs: Path, addresses: dict[str, str]) -> None:
        self.folder = folder
        self.logs = logs
        self.addresses = addresses
        (self.gateway_port,) = find_free_ports(1)
        # The reader's own environment: the installed switchyard, not this repository.
        self.env = {
            name: value
            for name, value in os.environ.items()
            if name != "PYTHONPATH" and not name.startswith("SWITCHYARD_")
        }
        self.gateway: subprocess.Popen[bytes] | None = None
        self.gateway_log: Path | None = None
        self.printed = ""
        self.answers: list[dict[str, Any]] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.gateway is not None and self.gateway.poll() is None:
            self.gateway.kill()
            self.gateway.wait()

    def perform(self, step: Step) -> None:
        getattr(self, step.kind)(step)

    def file(self, step: Step) -> None:
        assert step.argument is not None
        path = self.write(step.argument, step.body)
        if path.suffix == ".py":
            assert not imported_packages(step.body) & REPOSITORY_PACKAGES, step.argument
            self.lint(path)

    def append(self, step: Step) -> None:
        assert step.argument is not None
        self.write(step.argument, (self.folder / step.argument).read_text() + "\n" + step.body)

    def copy(self, step: Step) -> None:
        assert step.argument is not None
        shutil.copy(ROOT / step.argument, self.folder)

    def run(self, step: Step) -> None:
        for line in step.body.splitlines():
            words = shlex.split(line, comments=True)
            if words:
                self.printed = self.command(words).stdout

    def output(self, step: Step) -> None:
        assert self.printed == step.body

    def serve(self, step: Step) -> None:
        self.stop_gateway()
        self.gateway_log = self.logs / f"gateway-{len(self.answers)}.log"
        with self.gateway_log.open("wb") as log:
            self.gateway = subprocess.Popen(
                self.program(shlex.split(step.body)),
                cwd=self.folder,
                env={**self.env, "SWITCHYARD_PORT": str(self.gateway_port)},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait_until_healthy()

    def request(self, step: Step) -> None:
        url, headers, body = curl_request(step.body)
        assert url == f"{README_GATEWAY}/graphql", "the README asks the default address"
        response = httpx.post(
            f"http://127.0.0.1:{self.gateway_port}/graphql",
            content=body,
            headers=headers,
            timeout=10,
        )
        assert response.status_code == 200, response.text
        self.answers.append(response.json())

    def answer(self, step: Step) -> None:
        assert with_times_checked(self.answers[-1]) == with_times_checked(json.loads(step.body))

    def write(self, name: str, text: str) -> Path:
        """Write a file of the folder, with the services' free ports for the README's."""
        for shown, actual in (
            (README_ACCOUNTS, self.addresses["accounts"]),
            (README_CATALOG, self.addresses["catalog"]),
        ):
            text = text.replace(shown, actual)
        assert ":7001" not in text and ":7004" not in text, f"{name} names a demo port"
        path = self.folder / name
        path.write_text(text)
        return path

    def program(self, words: list[str]) -> list[str]:
        """A command as the reader types it, with the programs of the reader's environment."""
        name, *arguments = words
        program = Path(sys.executable) if name == "python" else VENV_BIN / name
        assert program.is_file(), f"{name} is not installed beside {sys.executable}"
        return [str(program), *arguments]

    def command(self, words: list[str]) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.program(words),
            cwd=self.folder,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_S,
        )
        assert result.returncode == 0, f"{shlex.join(words)}:\n{result.stderr}"
        return result

    def lint(self, path: Path) -> None:
        for check in LINT_CHECKS:
            result = subprocess.run(
                [*check, path.name], cwd=self.folder, capture_output=True, text=True
            )
            problems = result.stdout + result.stderr
            assert result.returncode == 0, f"{path.name} as the README shows it:\n{problems}"

    def wait_until_healthy(self) -> None:
        assert self.gateway is not None
        url = f"http://127.0.0.1:{self.gateway_port}/healthz"
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.gateway.poll() is None, f"the gateway exited:\n{self.gateway_output()}"
            try:
                if httpx.get(url, timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(POLL_INTERVAL_S)
        raise AssertionError(f"no /healthz in {STARTUP_TIMEOUT_S} s:\n{self.gateway_output()}")

    def stop_gateway(self) -> None:
        """Ctrl-C's equivalent: SIGTERM, after which the gateway exits 0."""
        if self.gateway is None:
            return
        self.gateway.send_signal(signal.SIGTERM)
        code = self.gateway.wait(timeout=STOP_TIMEOUT_S)
        assert code == 0, f"the gateway exited with {code}:\n{self.gateway_output()}"
        self.gateway = None

    def gateway_output(self) -> str:
        return "" if self.gateway_log is None else self.gateway_log.read_text()[-3000:]


def test_every_python_and_toml_block_of_the_walkthrough_is_a_file_the_test_writes() -> None:
    section = walkthrough_section(README.read_text())
    shown = [language for language in FENCE.findall(section) if language in {"python", "toml"}]
    written = [
        step.language
        for step in walkthrough_steps(section)
        if step.kind in {"file", "append"} and step.language in {"python", "toml"}
    ]
    assert written == shown


def test_the_walkthrough_goes_from_an_empty_folder_to_a_graph_over_two_services(
    tmp_path: Path,
) -> None:
    steps = walkthrough_steps(walkthrough_section(README.read_text()))
    folder = tmp_path / "shop"
    folder.mkdir()
    assert not folder.resolve().is_relative_to(ROOT)
    accounts_port, catalog_port = find_free_ports(2)
    with (
        DemoPlatform(
            ["accounts", "catalog"], ports={"accounts": [accounts_port], "catalog": [catalog_port]}
        ),
        Walkthrough(
            folder,
            logs=tmp_path,
            addresses={
                "accounts": f"127.0.0.1:{accounts_port}",
                "catalog": f"127.0.0.1:{catalog_port}",
            },
        ) as reader,
    ):
        for step in steps:
            reader.perform(step)
        reader.stop_gateway()

    # The walkthrough's milestones, whatever the prose around them says.
    first_graph = next(step for step in steps if step.argument == "graph.py")
    assert 'hello: str = "world"' in first_graph.body
    assert reader.answers[0]["data"] == {"hello": "world"}
    config = (folder / "switchyard.toml").read_text()
    assert 'kind = "rest"' in config and 'kind = "grpc"' in config
    assert sorted(path.name for path in folder.iterdir() if path.suffix == ".py") == [
        "accounts.py",
        "catalog.py",
        "catalog_pb2.py",
        "graph.py",
    ]
    last = reader.answers[-1]
    assert {name: usage["calls"] for name, usage in last["extensions"]["upstreams"].items()} == {
        "accounts": 1,
        "catalog": 1,
    }
