"""Self-hosted GraphiQL: fetching the pinned assets, the page, and serving it without a CDN."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import gzip
import hashlib
import json
import os
import re
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from schema import graph as demo_graph
from switchyard import ide
from switchyard.app import create_app
from switchyard.compression import SUFFIXES
from switchyard.config import GatewayConfig, load_config, validate_config
from switchyard.ide import (
    IDE_PACKAGES,
    MANIFEST_NAME,
    IdeAssetError,
    assets_present,
    fetch_command,
    fetch_ide_assets,
    ide_asset_app,
    render_graphiql_page,
)
from tests.browser import dump_dom, serving
from tests.conftest import PROJECT_CONFIG, gateway_settings, open_gateway, unreachable_addresses

ASSET_BASE = "/graphiql/assets"
PINNED = [(package, asset) for package in IDE_PACKAGES for asset in package.assets]
URL_PATTERNS = (
    re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']*)["']""", re.IGNORECASE),
    re.compile(r"""\bimport\s*(?:\(\s*)?(?:[\w*{}\s,]+\bfrom\s*)?["']([^"']+)["']"""),
    re.compile(r"""\burl\(\s*["']?([^"')]+)"""),
    re.compile(r"""GRAPHQL_PATH = ("[^"]*")"""),
)


def gateway_config(asset_dir: Path) -> GatewayConfig:
    """The real gateway, with GraphiQL's assets in ``asset_dir``; no upstream is ever called."""
    nowhere = unreachable_addresses()
    return validate_config(gateway_settings(nowhere, ide={"assets_dir": str(asset_dir)}))


def page_urls(page: str) -> list[str]:
    urls = [match for pattern in URL_PATTERNS for match in pattern.findall(page)]
    return [json.loads(url) if url.startswith('"') else url for url in urls if url != "data:,"]


def sri(body: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode()


@pytest.fixture(scope="module")
async def asset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("graphiql")
    paths = await fetch_ide_assets(dest)
    assert paths == [dest / asset.filename for _, asset in PINNED]
    return dest


@pytest.fixture
async def client(asset_dir: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with open_gateway(gateway_config(asset_dir)) as client:
        yield client


# --- fetching ---------------------------------------------------------------------------


def test_fetch_installs_every_pinned_file_and_a_manifest(asset_dir: Path) -> None:
    assert assets_present(asset_dir)
    manifest = json.loads((asset_dir / MANIFEST_NAME).read_text())
    assert manifest["packages"] == {p.name: p.version for p in IDE_PACKAGES}
    variants = tuple(SUFFIXES.values())  # compressed once, beside each asset
    assert sorted(p.name for p in asset_dir.iterdir() if not p.name.endswith(variants)) == sorted(
        [asset.filename for _, asset in PINNED] + [MANIFEST_NAME]
    )
    for package, asset in PINNED:
        body = (asset_dir / asset.filename).read_bytes()
        assert body
        assert sri(body) == asset.sri
        assert gzip.decompress((asset_dir / f"{asset.filename}.gz").read_bytes()) == body
        assert manifest["files"][asset.filename] == {
            "package": package.name,
            "version": package.version,
            "sha256": hashlib.sha256(body).hexdigest(),
        }


def test_assets_are_absent_without_manifest_or_with_a_missing_file(
    asset_dir: Path, tmp_path: Path
) -> None:
    assert not assets_present(tmp_path / "nowhere")
    copy = tmp_path / "copy"
    shutil.copytree(asset_dir, copy)
    (copy / PINNED[-1][1].filename).unlink()
    assert not assets_present(copy)
    shutil.copytree(asset_dir, copy, dirs_exist_ok=True)
    assert assets_present(copy)
    (copy / MANIFEST_NAME).unlink()
    assert not assets_present(copy)


async def test_tarball_integrity_mismatch_fails_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_name = {package.name: package for package in IDE_PACKAGES}
    wrong = "sha512-" + base64.b64encode(bytes(64)).decode()
    tampered = dataclasses.replace(by_name["react"], integrity=wrong)
    monkeypatch.setattr(ide, "IDE_PACKAGES", (by_name["js-cookie"], tampered))
    dest = tmp_path / "assets"

    with pytest.raises(IdeAssetError) as failure:
        await fetch_ide_assets(dest)

    assert str(failure.value) == (
        "integrity mismatch for react@18.2.0 "
        "(https://registry.npmjs.org/react/-/react-18.2.0.tgz): "
        f"expected {wrong}, got {by_name['react'].integrity}"
    )
    assert not dest.exists()


async def test_network_failure_is_one_clear_error(tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(IdeAssetError) as failure:
            await fetch_ide_assets(tmp_path, registry="http://mirror.invalid/npm/", client=client)

    message = str(failure.value)
    assert re.fullmatch(
        r"cannot download http://mirror\.invalid/npm/\S+\.tgz: ConnectError: connection refused",
        message,
    )
    assert await asyncio.to_thread(os.listdir, tmp_path) == []


async def test_missing_tarball_reports_the_http_status(tmp_path: Path) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(404))
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(IdeAssetError, match=r"^cannot download \S+\.tgz: HTTP 404$"):
            await fetch_ide_assets(tmp_path, client=client)


def test_tarball_urls_follow_the_registry_layout() -> None:
    by_name = {package.name: package for package in IDE_PACKAGES}
    assert by_name["@graphiql/plugin-explorer"].tarball_url("https://r.example/") == (
        "https://r.example/@graphiql/plugin-explorer/-/plugin-explorer-1.0.2.tgz"
    )


def test_fetch_command_prints_each_file_and_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fetch_command(tmp_path) == 0

    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(PINNED) + 1
    for line, (package, asset) in zip(lines, PINNED, strict=False):
        assert line.startswith(package.spec)
        assert str(tmp_path / asset.filename) in line
    assert lines[-1] == f"fetched {len(PINNED)} GraphiQL assets into {tmp_path}"
    assert assets_present(tmp_path)


def test_fetch_command_failure_is_one_line_and_exit_code_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]

    assert fetch_command(tmp_path, registry=f"http://127.0.0.1:{port}") == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert re.fullmatch(
        rf"error: cannot download http://127\.0\.0\.1:{port}/\S+\.tgz: ConnectError: .+\n",
        captured.err,
    )


# --- the page and its assets ------------------------------------------------------------


async def test_local_page_loads_only_gateway_urls_and_each_is_served(
    client: httpx.AsyncClient,
) -> None:
    page_response = await client.get("/graphql", headers={"accept": "text/html"})
    assert page_response.status_code == 200
    page = page_response.text
    assert "unpkg" not in page
    assert not re.search(r"https?://|[\"'(]//", page)

    urls = page_urls(page)
    assert sorted(urls) == sorted([f"{ASSET_BASE}/{a.filename}" for _, a in PINNED] + ["/graphql"])
    integrity = dict(re.findall(r'(?:src|href)="([^"]+)" integrity="([^"]+)"', page))
    for url in urls:
        if url == "/graphql":
            continue
        response = await client.get(url)
        assert response.status_code == 200, url
        expected_type = "text/css" if url.endswith(".css") else "text/javascript"
        assert response.headers["content-type"] == f"{expected_type}; charset=utf-8"
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.content
        assert integrity[url] == sri(response.content)


async def test_the_page_allows_only_the_gateway_own_assets(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"accept": "text/html"})
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response.headers["content-security-policy"].split(";")
    )
    inline = re.findall(r"<script>(.*?)</script>", response.text, flags=re.DOTALL)
    assert len(inline) == 1
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert policy["script-src"] == f"'self' 'sha256-{digest}'"
    assert policy["style-src"].startswith("'self' 'sha256-")
    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "unpkg" not in response.headers["content-security-policy"]


def test_the_cdn_page_allows_exactly_that_cdn() -> None:
    page = render_graphiql_page(asset_base=None)
    policy = ide.page_security_headers(page, from_cdn=True)["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"].split()[0] == "https://unpkg.com"
    assert directives["style-src"].split()[0] == "https://unpkg.com"
    assert "'self'" not in directives["script-src"]
    assert "'unsafe-inline'" not in policy


async def test_graphql_endpoint_answers_the_page_fetcher(client: httpx.AsyncClient) -> None:
    response = await client.post("/graphql", json={"query": "{ __typename }"})
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_asset_app_serves_only_pinned_files(client: httpx.AsyncClient) -> None:
    assert (await client.get(f"{ASSET_BASE}/{MANIFEST_NAME}")).headers["cache-control"] == (
        "no-cache"
    )
    for path in ("nope.js", "../ide.py", "%2e%2e/ide.py", ""):
        assert (await client.get(f"{ASSET_BASE}/{path}")).status_code == 404, path


async def test_asset_app_without_fetched_assets_answers_404(tmp_path: Path) -> None:
    app = Starlette(routes=[Mount(ASSET_BASE, app=ide_asset_app(tmp_path / "missing"))])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        response = await client.get(f"{ASSET_BASE}/{PINNED[0][1].filename}")
    assert response.status_code == 404


def test_cdn_fallback_page_references_the_pinned_unpkg_urls() -> None:
    page = render_graphiql_page(asset_base=None)
    assert ASSET_BASE not in page
    assert sorted(page_urls(page)) == sorted(
        [f"https://unpkg.com/{p.spec}/{a.path}" for p, a in PINNED] + ["/graphql"]
    )
    for _, asset in PINNED:
        assert f'integrity="{asset.sri}"' in page


def test_graphql_path_cannot_break_out_of_the_script() -> None:
    page = render_graphiql_page(graphql_path="/g</script><b>", asset_base=ASSET_BASE)
    assert 'const GRAPHQL_PATH = "/g\\u003c/script\\u003e\\u003cb\\u003e";' in page
    assert page.count("</script>") == len([a for _, a in PINNED if a.kind == "script"]) + 1


def test_the_page_opens_on_the_configured_query_and_headers() -> None:
    page = render_graphiql_page(
        asset_base=ASSET_BASE,
        initial_query="{ a </script> }",
        initial_headers={"X-Api-Key": "k"},
    )
    assert 'const INITIAL_QUERY = "{ a \\u003c/script\\u003e }";' in page
    assert 'const INITIAL_HEADERS = "{\\n  \\"X-Api-Key\\": \\"k\\"\\n}";' in page


async def test_the_demo_opens_graphiql_on_the_readme_query_with_key_and_debug_header() -> None:
    demo = load_config(PROJECT_CONFIG, environ={})
    assert demo.ide.initial_headers == {
        "X-Api-Key": "demo-admin-key-please-change",
        "X-Switchyard-Debug": "1",
    }
    assert demo.ide.initial_query is not None
    readme = (PROJECT_CONFIG.parent / "README.md").read_text()
    assert demo.ide.initial_query.strip() in readme
    async with open_gateway(demo.model_copy(update={"upstreams": {
        name: settings.model_copy(update={"instances": unreachable_addresses()[name]})
        for name, settings in demo.upstreams.items()
    }})) as client:  # fmt: skip
        page = (await client.get("/graphql", headers={"accept": "text/html"})).text
    assert "demo-admin-key-please-change" in page
    assert "orders(first: 5)" in page


# --- a real browser, no CDN -------------------------------------------------------------


async def test_headless_chromium_renders_graphiql_from_local_assets(
    asset_dir: Path, tmp_path: Path
) -> None:
    app = create_app(gateway_config(asset_dir), demo_graph)
    async with serving(app) as port:
        rendered = await dump_dom(f"http://127.0.0.1:{port}/graphql", tmp_path / "profile")

    assert "Loading..." not in rendered
    for marker in (
        'class="graphiql-container"',
        'aria-label="Query Editor"',
        'aria-label="Show GraphiQL Explorer"',
        ">Headers</button>",
    ):
        assert marker in rendered, marker
