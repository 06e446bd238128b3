"""Compression: answers in gzip (brotli, zstd when installed) for clients that accept it, and
GraphiQL's assets compressed once."""

from __future__ import annotations

import gzip
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from services.launcher import DemoPlatform
from switchyard import ide
from switchyard.compression import CompressionMiddleware, choose, compressors, precompress
from switchyard.config import validate_config
from tests.conftest import SERVICE_HEADERS, gateway_settings
from tests.test_apq import gateway_with

LARGE = (
    "{ products(first: 100) { edges { node { id name description category"
    " price { amount currency } stock { available warehouses { name available } }"
    " reviews(first: 3) { edges { node { rating body } } } } } } }"
)
SMALL = '{ product(id: "1") { name } }'


async def post(client: httpx.AsyncClient, document: str, encoding: str) -> httpx.Response:
    headers = {**SERVICE_HEADERS, "Accept-Encoding": encoding}
    return await client.post("/graphql", json={"query": document}, headers=headers)


async def test_a_40_kb_answer_comes_back_gzipped(platform: DemoPlatform) -> None:
    async with gateway_with(platform) as client:
        compressed = await post(client, LARGE, "gzip")
        plain = await post(client, LARGE, "identity")
    assert len(plain.content) >= 40_000
    assert "content-encoding" not in plain.headers
    assert compressed.headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in compressed.headers["vary"]
    # httpx decoded it: the same answer, far fewer bytes on the wire.
    assert compressed.json() == plain.json()
    assert int(compressed.headers["content-length"]) < len(plain.content) / 4


async def test_small_answers_and_refused_codings_are_sent_as_they_are(
    platform: DemoPlatform,
) -> None:
    async with gateway_with(platform) as client:
        small = await post(client, SMALL, "gzip")
        refused = await post(client, LARGE, "gzip;q=0, compress")
    assert "content-encoding" not in small.headers
    assert "content-encoding" not in refused.headers


async def test_a_compressed_get_answer_has_a_weak_etag_that_still_validates(
    platform: DemoPlatform,
) -> None:
    document = "{ products(first: 60) { edges { node { name description } } } }"
    async with gateway_with(platform) as client:
        first = await client.get(
            "/graphql", params={"query": document}, headers={"Accept-Encoding": "gzip"}
        )
        assert first.headers["content-encoding"] == "gzip"
        etag = first.headers["etag"]
        assert etag.startswith('W/"')
        again = await client.get(
            "/graphql",
            params={"query": document},
            headers={"Accept-Encoding": "gzip", "If-None-Match": etag},
        )
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)


async def test_compression_off_adds_no_unit(platform: DemoPlatform) -> None:
    async with gateway_with(platform, compression={"enabled": False}) as client:
        response = await post(client, LARGE, "gzip")
    assert "content-encoding" not in response.headers
    from schema import graph
    from switchyard.app import create_app

    settings = validate_config(gateway_settings(platform.addresses, compression={"enabled": False}))
    units = create_app(settings, graph).state.gateway.pipeline.middleware
    assert not any(unit.cls is CompressionMiddleware for unit in units)


def test_the_clients_preference_decides_among_the_codings_available() -> None:
    available = {"gzip": 1, "br": 1, "zstd": 1}
    assert choose("gzip, br", available) == "br"  # equal q: the gateway's preference
    assert choose("gzip;q=1, br;q=0.5", available) == "gzip"
    assert choose("gzip, br", {"gzip": 1}) == "gzip"  # br not installed
    assert choose("identity", available) is None
    assert choose("*", {"gzip": 1}) == "gzip"


def test_brotli_when_installed() -> None:
    brotli = pytest.importorskip("brotli")
    data = b'{"data": "' + b"x" * 5000 + b'"}'
    assert brotli.decompress(compressors()["br"](data)) == data


async def test_ide_assets_are_precompressed_once(tmp_path: Path) -> None:
    name = ide.IDE_PACKAGES[0].assets[0].filename
    asset = tmp_path / name
    asset.write_bytes(b"console.log('graphiql');\n" * 2000)
    app = Starlette(routes=[Mount("/assets", app=ide.ide_asset_app(tmp_path))])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ide") as client:
        first_serve = await client.get(f"/assets/{name}", headers={"Accept-Encoding": "gzip"})
        assert first_serve.headers["content-encoding"] == "gzip"
        assert first_serve.content == asset.read_bytes()
        (variant,) = [p for p in precompress([asset]) if p.suffix == ".gz"]
        from_disk = await client.get(f"/assets/{name}", headers={"Accept-Encoding": "gzip"})
        identity = await client.get(f"/assets/{name}", headers={"Accept-Encoding": "identity"})
    assert from_disk.headers["content-encoding"] == "gzip"
    assert int(from_disk.headers["content-length"]) == variant.stat().st_size
    assert gzip.decompress(variant.read_bytes()) == asset.read_bytes()
    assert "content-encoding" not in identity.headers
    assert identity.content == asset.read_bytes()
    assert from_disk.headers["cache-control"] == ide.DEFAULT_ASSET_CACHE_CONTROL
