"""A real browser enforces the gateway's CORS allow-list.

A page served from another loopback origin (its own port) calls the gateway with
``fetch`` and an API key header, which makes Chromium send a preflight first. From the
listed origin the page reads the answer; from an unlisted one Chromium refuses to send
the request itself: the gateway sees only the preflight.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from schema import graph as demo_graph
from switchyard.app import create_app
from switchyard.config import validate_config
from tests.browser import dump_dom, require_chromium, serving
from tests.conftest import SERVICE_KEY, gateway_settings, unreachable_addresses

PAGE = """<!doctype html>
<html><body><pre id="result">pending</pre>
<script>
  fetch(GATEWAY + "/graphql", {
    method: "POST",
    headers: {"Content-Type": "application/json", "X-Api-Key": API_KEY},
    body: JSON.stringify({query: "{ __typename }"}),
  })
    .then((response) => response.text().then((body) =>
      "allowed " + response.status + " " + response.headers.get("x-request-id") + " " + body))
    .catch((error) => "blocked " + error.name)
    .then((text) => { document.getElementById("result").textContent = text; });
</script></body></html>"""


class Seen:
    """The requests that reached the gateway: method, origin, whether an API key came."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.requests: list[tuple[str, str, bool]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/graphql":
            headers = dict(scope["headers"])
            origin = headers.get(b"origin", b"").decode()
            self.requests.append((scope["method"], origin, b"x-api-key" in headers))
        await self.app(scope, receive, send)


def result(dom: str) -> str:
    found = re.search(r'<pre id="result">(.*?)</pre>', dom, flags=re.DOTALL)
    assert found is not None, dom
    return html.unescape(found.group(1))


async def test_chromium_lets_only_a_listed_origin_read_the_gateway(tmp_path: Path) -> None:
    require_chromium()
    # The pages need the gateway's URL and the gateway needs the listed page's origin:
    # the page servers start first, on ports of their own, and read the URL when asked.
    gateway_url: list[str] = []

    async def page(request: Request) -> HTMLResponse:
        script = (
            f"const GATEWAY = {json.dumps(gateway_url[0])}; "
            f"const API_KEY = {json.dumps(SERVICE_KEY)};"
        )
        return HTMLResponse(PAGE.replace("<script>", f"<script>{script}", 1))

    pages = Starlette(routes=[Route("/", page)])
    async with serving(pages) as listed_port, serving(pages) as unlisted_port:
        listed = f"http://127.0.0.1:{listed_port}"
        unlisted = f"http://127.0.0.1:{unlisted_port}"
        config = validate_config(
            gateway_settings(unreachable_addresses(), cors={"allow_origins": [listed]})
        )
        gateway = Seen(create_app(config, demo_graph))
        async with serving(gateway) as gateway_port:
            gateway_url.append(f"http://127.0.0.1:{gateway_port}")
            allowed = result(await dump_dom(f"{listed}/", tmp_path / "listed"))
            allowed_requests = list(gateway.requests)
            gateway.requests.clear()
            blocked = result(await dump_dom(f"{unlisted}/", tmp_path / "unlisted"))
            blocked_requests = list(gateway.requests)

    assert allowed.startswith("allowed "), allowed
    status, request_id, body = allowed.removeprefix("allowed ").split(" ", 2)
    assert (status, json.loads(body)) == ("200", {"data": {"__typename": "Query"}})
    assert len(request_id) == 32  # an exposed header the script could read
    assert allowed_requests == [("OPTIONS", listed, False), ("POST", listed, True)]

    assert blocked == "blocked TypeError"
    assert blocked_requests == [("OPTIONS", unlisted, False)]  # the POST was never sent
