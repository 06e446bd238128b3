"""What ships: the wheel holds the runtime only, and the Docker image serves no demo secret.

The graph (``schema/``, ``resolvers/``, ``upstreams/``) and the demo platform
(``services/``, ``protos/``) are found from the checkout, never installed: a wheel
that carried them would shadow, or overwrite, a team's own top-level ``schema``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import threading
import tomllib
import uuid
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from switchyard.config import load_config
from tests.conftest import PROJECT_CONFIG

REPO = Path(__file__).resolve().parent.parent
VERSION: str = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
    "version"
]
DIST_INFO = f"switchyard-{VERSION}.dist-info"
CHECKOUT_ONLY = frozenset({"schema", "resolvers", "upstreams", "services", "protos"})
"""The repository's graph and demo platform: found from the checkout, never installed."""
BUILD_TIMEOUT_S = 300  # an isolated build fetches setuptools: generous for a busy 2-core machine
INSTALL_TIMEOUT_S = 180
NOT_SOURCE = frozenset(
    {".git", ".venv", ".venv-ci", "build", "dist", "var", "__pycache__"}
    | {".mypy_cache", ".ruff_cache", ".pytest_cache"}
)
"""Left out of the copy the wheel is built from: what a fresh checkout does not hold."""
QUIET_PIP = {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}


def run(command: list[str], *, timeout: float, **options: Any) -> subprocess.CompletedProcess[str]:
    """Run ``command``; fail the test with its output unless it exits 0."""
    options.setdefault("env", {**os.environ, **QUIET_PIP})
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **options)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{shlex.join(command)}: no answer in {timeout} s")
    if done.returncode != 0:
        pytest.fail(
            f"{shlex.join(command)} exited with {done.returncode}:\n"
            f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        )
    return done


def _not_source(folder: str, names: list[str]) -> set[str]:
    return {name for name in names if name in NOT_SOURCE or name.endswith(".egg-info")}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel pip builds from the repository, built once.

    From a copy without ``build/`` or ``*.egg-info``: pip builds a local folder in
    place, and setuptools packs whatever a stale ``build/lib`` still holds.
    """
    source = tmp_path_factory.mktemp("source") / "switchyard"
    shutil.copytree(REPO, source, ignore=_not_source, symlinks=True)
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-w", str(out)]
    run(command, timeout=BUILD_TIMEOUT_S)
    (built,) = out.glob("switchyard-*.whl")
    return built


def wheel_record(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        record = archive.read(f"{DIST_INFO}/RECORD").decode("utf-8")
        names = set(archive.namelist())
    paths = [row[0] for row in csv.reader(io.StringIO(record)) if row]
    assert set(paths) == names, "RECORD and the archive disagree"
    return paths


def test_the_wheel_holds_the_runtime_only(wheel: Path) -> None:
    paths = wheel_record(wheel)

    strays = [p for p in paths if not p.startswith(("switchyard/", f"{DIST_INFO}/"))]
    assert strays == [], f"the wheel holds more than the switchyard package: {strays}"
    assert "switchyard/static/graphiql.html" in paths
    assert [p for p in paths if p.split("/")[0] in CHECKOUT_ONLY] == []
    assert [p for p in paths if p.endswith(".toml")] == []
    # And all of the runtime: every module of the source folder is packed.
    modules = {
        path.relative_to(REPO).as_posix()
        for path in (REPO / "switchyard").rglob("*.py")
        if "__pycache__" not in path.parts
    }
    assert modules - set(paths) == set()


def site_packages(python: Path) -> list[Path]:
    """Where ``python`` installs pure and platform modules (one folder on most systems)."""
    code = "import sysconfig; print(*map(sysconfig.get_path, ('purelib', 'platlib')), sep='\\n')"
    out = run([str(python), "-c", code], timeout=60).stdout.splitlines()
    return list(dict.fromkeys(Path(line).resolve() for line in out if line))


def test_installing_the_wheel_leaves_a_local_schema_package_alone(
    wheel: Path, tmp_path: Path
) -> None:
    run([sys.executable, "-m", "venv", str(tmp_path / "venv")], timeout=INSTALL_TIMEOUT_S)
    python = tmp_path / "venv" / "bin" / "python"
    folders = site_packages(python)
    own = folders[0] / "schema" / "__init__.py"
    own.parent.mkdir()
    marker = f'MARKER = "a team\'s own schema {uuid.uuid4().hex}"\n'.encode()
    own.write_bytes(marker)
    before = {folder: set(os.listdir(folder)) for folder in folders}

    # The runtime's dependencies are not there (--no-deps): files are checked, nothing imported.
    run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)],
        timeout=INSTALL_TIMEOUT_S,
    )

    assert own.read_bytes() == marker
    assert os.listdir(own.parent) == ["__init__.py"]
    added = {name for folder in folders for name in set(os.listdir(folder)) - before[folder]}
    removed = {name for folder in folders for name in before[folder] - set(os.listdir(folder))}
    assert added == {"switchyard", DIST_INFO}
    assert removed == set()
    # Every file pip wrote (its RECORD): the package, its metadata, the console script.
    venv = (tmp_path / "venv").resolve()
    allowed = [folders[0] / "switchyard", folders[0] / DIST_INFO, venv / "bin"]
    record = (folders[0] / DIST_INFO / "RECORD").read_text(encoding="utf-8")
    written = [(folders[0] / row[0]).resolve() for row in csv.reader(io.StringIO(record)) if row]
    strays = [p for p in written if not any(p.is_relative_to(place) for place in allowed)]
    assert strays == []
    assert venv / "bin" / "switchyard" in written


def checkout_files() -> list[str]:
    """The repository's files (tracked, and new ones not ignored), as git lists them."""
    try:
        done = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            timeout=60,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        reason = f"not a git checkout, or no git: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: required)")
        pytest.skip(reason)
    return sorted({name for name in done.stdout.decode().split("\0") if name})


def test_the_demo_contract_is_in_the_repository_and_nothing_points_outside_it() -> None:
    assert (REPO / "docs" / "demo-contract.md").is_file()
    # Spelled in pieces so that this file does not name them.
    outside = ("shared" + "/", "../" + "shared")
    mentions = []
    for name in checkout_files():
        path = REPO / name
        if not path.is_file():  # deleted in the working tree, not yet committed
            continue
        data = path.read_bytes()
        if b"\0" in data:  # binary
            continue
        for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if any(word in line for word in outside):
                mentions.append(f"{name}:{number}: {line.strip()}")
    assert mentions == [], "documents outside the repository:\n" + "\n".join(mentions)


def dockerfile_instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as ``(KEYWORD, arguments)``, continuation lines joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (REPO / "Dockerfile").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued instruction"
    return instructions


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def healthcheck_command() -> list[str]:
    (check,) = [arguments for keyword, arguments in final_stage() if keyword == "HEALTHCHECK"]
    _, _, command = check.partition(" CMD ")
    parsed = json.loads(command)
    assert isinstance(parsed, list), "HEALTHCHECK CMD in exec form"
    return [str(part) for part in parsed]


def default_config() -> Path:
    """The file the image's default command serves: the one COPY'd to its ``--config``."""
    (command,) = [json.loads(arguments) for keyword, arguments in final_stage() if keyword == "CMD"]
    assert command[:2] == ["switchyard", "serve"]
    target = command[command.index("--config") + 1]
    copies = [arguments.split() for keyword, arguments in final_stage() if keyword == "COPY"]
    sources = [
        next(word for word in words if not word.startswith("--"))
        for words in copies
        if words[-1] == target and not any(word.startswith("--from") for word in words)
    ]
    assert len(sources) == 1, f"one COPY of the repository's file to {target}"
    return REPO / sources[0]


def test_the_docker_image_default_config_has_no_dev_key_and_no_demo_api_key(
    tmp_path: Path,
) -> None:
    path = default_config()
    assert path == REPO / "deploy" / "switchyard.toml"
    config = load_config(path, environ={})

    assert config.auth.jwt.keys == []
    assert not any(key.dev for key in config.auth.jwt.keys)
    assert config.auth.api_keys == []
    assert config.server.debug is False
    assert config.auth.allow_anonymous is True
    assert config.graph.module == "schema:graph"
    assert "X-Api-Key" not in config.ide.initial_headers
    # Nothing of the demo's secrets, not even in a comment.
    demo = load_config(PROJECT_CONFIG, environ={}).auth
    text = path.read_text(encoding="utf-8")
    demo_secrets = [key.secret.get_secret_value() for key in demo.jwt.keys if key.secret]
    demo_secrets += [key.hash for key in demo.api_keys]
    assert demo_secrets, "the demo config has the keys this test looks for"
    assert [secret for secret in demo_secrets if secret in text] == []
    assert "please-change" not in text

    # The health check asks the port the gateway listens on, not a fixed 8000.
    healthcheck = " ".join(healthcheck_command())
    assert "SWITCHYARD_PORT" in healthcheck
    assert "SWITCHYARD_SERVER__PORT" in healthcheck

    # The graph is found from PYTHONPATH (the image's /app), not from the config's folder.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
    env["PYTHONPATH"] = str(REPO)
    done = run(
        [sys.executable, "-m", "switchyard.cli", "config", "check", str(path)],
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert done.stdout.startswith(f"{path}: ok (6 upstreams: ")


@contextlib.contextmanager
def healthz_server() -> Iterator[int]:
    """A stand-in gateway on a free loopback port answering ``GET /healthz`` with 200."""

    class Healthz(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/healthz" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Healthz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    server = HTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = server.server_address[1]
    server.server_close()
    return port


def test_the_docker_healthcheck_asks_the_configured_port() -> None:
    program, *arguments = healthcheck_command()
    assert program == "python"
    command = [sys.executable, *arguments]
    base = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}

    def healthy(**env: str) -> bool:
        done = subprocess.run(command, env={**base, **env}, capture_output=True, timeout=30)
        return done.returncode == 0

    with healthz_server() as port:
        nothing = str(closed_port())
        assert healthy(SWITCHYARD_SERVER__PORT=str(port))
        assert healthy(SWITCHYARD_PORT=str(port), SWITCHYARD_SERVER__PORT=nothing)
        assert not healthy(SWITCHYARD_SERVER__PORT=nothing)
