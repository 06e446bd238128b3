"""Debian's Chromium for the browser tests: skipped where it is missing, except in CI.

``.ci/run`` installs it (``apt-get install -y chromium``) when it is absent; under
``CI=true`` a missing browser fails the test instead of skipping it, so CI never passes
without having run the browser tests.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import uvicorn
from starlette.types import ASGIApp

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_TIMEOUT = 60.0
"""Seconds a browser may take in all: a hang fails the test instead of blocking the run."""


def require_chromium() -> Path:
    """The browser's path; skips the test without it (fails it under ``CI=true``)."""
    if CHROMIUM.exists():
        return CHROMIUM
    reason = f"{CHROMIUM} is not installed (apt-get install -y chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}: browser tests must run in CI")
    pytest.skip(reason)


@asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[int]:
    """``app`` on a loopback port (uvicorn, lifespan on); yields the port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    # Listening before uvicorn starts lets the browser's connection wait in the backlog.
    sock.listen()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task
        sock.close()


async def dump_dom(url: str, profile: Path, *, virtual_time_budget: int = 5000) -> str:
    """The DOM of ``url`` once headless Chromium has run its scripts."""
    browser = await asyncio.create_subprocess_exec(
        str(require_chromium()),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        f"--virtual-time-budget={virtual_time_budget}",
        "--dump-dom",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        dom, _ = await asyncio.wait_for(browser.communicate(), timeout=BROWSER_TIMEOUT)
    finally:
        if browser.returncode is None:
            browser.kill()
            await browser.wait()
    return dom.decode()
