"""Trusted documents: `switchyard documents` builds a manifest from the demo's example
operations, and a production gateway with `only = true` runs those and nothing else."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from services.launcher import DemoPlatform
from switchyard.cli import main
from switchyard.config import validate_config
from switchyard.persisted import ManifestError, read_manifest, sha256_hex
from tests.conftest import SERVICE_HEADERS, gateway_settings, open_gateway

PROJECT = Path(__file__).resolve().parent.parent
OPERATIONS = sorted((PROJECT / "examples" / "operations").glob("*.graphql"))
UNLISTED = '{ product(id: "1") { name } }'


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("manifest") / "persisted-documents.json"
    code = main(["documents", "--graph", "schema:graph", *map(str, OPERATIONS), "-o", str(path)])
    assert code == 0
    return path


def operations(manifest: Path) -> dict[str, dict[str, Any]]:
    data = orjson.loads(manifest.read_bytes())
    return {operation["name"]: operation for operation in data["operations"]}


def test_the_command_builds_an_apollo_manifest_and_prints_each_cost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "manifest.json"
    assert main(["documents", *map(str, OPERATIONS), "-o", str(manifest)]) == 0
    data = orjson.loads(manifest.read_bytes())
    assert (data["format"], data["version"]) == ("apollo-persisted-query-manifest", 1)
    listed = operations(manifest)
    assert sorted(listed) == ["Me", "ProductList", "ProductPage", "RecentOrders"]
    for operation in listed.values():
        assert operation["id"] == sha256_hex(operation["body"])
        assert operation["type"] == "query"
    # A fragment defined in another file travels with the operation that spreads it.
    assert "fragment ProductCard on Product" in listed["ProductPage"]["body"]
    printed = capsys.readouterr().out.splitlines()
    assert printed[1].split()[:3] == ["ProductList", "cost", "23"]
    assert printed[-1] == f"4 documents written to {manifest}"


def test_the_command_refuses_an_invalid_operation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.graphql"
    bad.write_text("query Bad { product(id: 1) { nme } }")
    assert main(["documents", "--graph", "schema:graph", str(bad)]) == 2
    assert "bad.graphql: Bad: Cannot query field 'nme'" in capsys.readouterr().err


def test_relay_manifests_are_read_and_junk_is_refused(tmp_path: Path) -> None:
    relay = tmp_path / "relay.json"
    relay.write_text('{"9f86d081": "query A { __typename }"}')
    (document,) = read_manifest(relay)
    assert (document.id, document.body) == ("9f86d081", "query A { __typename }")
    junk = tmp_path / "junk.json"
    junk.write_text('{"operations": 3}')
    with pytest.raises(ManifestError, match=r"junk\.json"):
        read_manifest(junk)


@contextlib.asynccontextmanager
async def trusted_gateway(
    platform: DemoPlatform, manifest: Path
) -> AsyncIterator[httpx.AsyncClient]:
    settings = gateway_settings(
        platform.addresses,
        persisted_documents={"manifests": [str(manifest)], "only": True},
        cost={"mode": "enforce"},
    )
    settings["server"] = {"request_timeout": 5.0, "gc_freeze": False}  # production
    async with open_gateway(validate_config(settings)) as client:
        yield client


def persisted(sha256: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha256}}


async def test_production_runs_listed_documents_only(
    platform: DemoPlatform, manifest: Path
) -> None:
    listed = operations(manifest)
    page = listed["ProductPage"]
    async with trusted_gateway(platform, manifest) as client:
        by_hash = await client.post(
            "/graphql",
            json={"extensions": persisted(page["id"]), "variables": {"id": "5"}},
        )
        assert by_hash.status_code == 200, by_hash.text
        assert by_hash.json()["data"]["product"]["id"] == "5"

        by_document_id = await client.post(
            "/graphql",
            json={"documentId": f"sha256:{listed['RecentOrders']['id']}"},
            headers=SERVICE_HEADERS,
        )
        assert len(by_document_id.json()["data"]["orders"]["edges"]) == 5

        by_get = await client.get(
            "/graphql",
            params={"documentId": f"sha256:{listed['ProductList']['id']}", "variables": "null"},
            headers={"apollo-require-preflight": "true"},  # production: CSRF prevention
        )
        assert len(by_get.json()["data"]["products"]["edges"]) == 10

        listed_text = await client.post(
            "/graphql", json={"query": page["body"], "variables": {"id": "5"}}
        )
        assert listed_text.json() == by_hash.json()

        unlisted = await client.post("/graphql", json={"query": UNLISTED})
        assert unlisted.status_code == 403
        (error,) = unlisted.json()["errors"]
        assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_ALLOWED"

        registration = await client.post(
            "/graphql", json={"query": UNLISTED, "extensions": persisted(sha256_hex(UNLISTED))}
        )
        assert registration.status_code == 403
        assert registration.json()["errors"][0]["extensions"]["code"] == (
            "PERSISTED_QUERY_NOT_ALLOWED"
        )

        unknown = await client.post("/graphql", json={"extensions": persisted("0" * 64)})
        assert unknown.status_code == 404
        assert unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_listed_documents_are_checked_and_estimated_at_load(
    platform: DemoPlatform, manifest: Path
) -> None:
    from schema import graph
    from switchyard.app import create_app

    settings = gateway_settings(
        platform.addresses,
        persisted_documents={"manifests": [str(manifest)], "only": True},
        cost={"mode": "enforce"},
    )
    gateway = create_app(validate_config(settings), graph).state.gateway
    estimates = len(gateway.estimate_cache._entries)
    for operation in operations(manifest).values():
        # Parsed and validated before any request: pinned in the document cache.
        assert gateway.documents.cached(operation["body"]) is not None
    assert estimates == 4
