"""``/metrics``: a known set of requests moves each series by exactly what it should.

The gateway runs over the real demo services (accounts pointed at a port nothing
listens on, for the upstream failure); retries, the upstream cache and health checks
are off so every count is exact, and nothing is timed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.launcher import DemoPlatform, find_free_ports
from switchyard.config import validate_config
from tests.conftest import SERVICE_HEADERS, gateway_settings, open_gateway, query

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]

NEGLIGIBLE_REFILL = 1e-6
METRICS_TOKEN = "metrics-token-0123456789abcdef"
PRODUCT = 'query ProductName {{ product(id: "{id}") {{ name }} }}'
USER = 'query UserName { user(id: "1") { name } }'
DEEP = (
    "query Deep { orders(first: 1) { edges { node {"
    " customer { orders { edges { node { id } } } } } } } }"
)


def parse(text: str) -> Series:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(series: Series, name: str, **labels: str) -> float:
    return series.get((name, frozenset(labels.items())), 0.0)


def moved(before: Series, after: Series) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every series whose value changed, by how much."""
    changed = {}
    for key in set(before) | set(after):
        delta = after.get(key, 0.0) - before.get(key, 0.0)
        if delta and not key[0].endswith(("_bucket", "_sum", "_created")):
            changed[key] = delta
    return changed


async def scrape(client: httpx.AsyncClient, path: str = "/metrics", **kwargs: Any) -> Series:
    response = await client.get(path, **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def counted_config(addresses: Mapping[str, list[str]], **sections: Any) -> Any:
    upstreams = {
        name: {
            "retry": {"enabled": False},
            "cache": {"enabled": False},
            "health": {"enabled": False},
            "coalesce": False,
        }
        for name in addresses
    }
    upstreams["accounts"]["instances"] = ["http://127.0.0.1:9"]  # nothing listens: it fails
    tiers = {
        "anonymous": {"capacity": 10, "refill_per_second": NEGLIGIBLE_REFILL},
        "service": {"capacity": 1_000_000, "refill_per_second": 1000},
    }
    return validate_config(
        gateway_settings(
            addresses,
            cost={"mode": "enforce"},
            budgets={"enabled": True, "tiers": tiers},
            limits={"max_depth": 4},
            upstreams=upstreams,
            **sections,
        )
    )


async def test_each_series_moves_by_exactly_what_a_known_set_of_requests_did(
    platform: DemoPlatform,
) -> None:
    async with open_gateway(counted_config(platform.addresses)) as client:
        # The anonymous tier's budget is drained first, so its next request is refused.
        for _ in range(100):
            drained = await query(client, PRODUCT.format(id=2), headers={})
            if drained.status_code == 429:
                break
        else:
            pytest.fail("the anonymous budget never ran out")
        before = await scrape(client)

        success = await query(client, PRODUCT.format(id=1))
        assert success.status_code == 200 and "errors" not in success.json()
        failure = await query(client, USER)
        assert failure.json()["errors"][0]["extensions"]["code"] == "UPSTREAM_UNAVAILABLE"
        refused = await query(client, PRODUCT.format(id=3), headers={})
        assert refused.status_code == 429
        too_deep = await query(client, DEEP)
        assert too_deep.status_code == 400
        assert too_deep.json()["errors"][0]["extensions"]["limit"]["name"] == "max_depth"

        after = await scrape(client)

    requests = "switchyard_requests_total"
    duration = "switchyard_request_duration_seconds_count"
    calls = "switchyard_upstream_calls_total"
    expected = {
        (requests, "ProductName", "query", "ok"): 1,
        (requests, "UserName", "query", "partial"): 1,
        (requests, "ProductName", "query", "refused"): 1,
        (requests, "Deep", "query", "refused"): 1,
    }
    for (name, operation, kind, outcome), count in expected.items():
        assert (
            value(after, name, operation=operation, type=kind, outcome=outcome)
            - value(before, name, operation=operation, type=kind, outcome=outcome)
            == count
        ), (operation, outcome)

    changes = moved(before, after)
    assert changes == {
        (requests, frozenset({"operation": o, "type": t, "outcome": r}.items())): c
        for (_, o, t, r), c in expected.items()
    } | {
        (duration, frozenset({"operation": "ProductName", "type": "query"}.items())): 2,
        (duration, frozenset({"operation": "UserName", "type": "query"}.items())): 1,
        (duration, frozenset({"operation": "Deep", "type": "query"}.items())): 1,
        ("switchyard_graphql_errors_total", frozenset({"code": "UPSTREAM_UNAVAILABLE"}.items())): 1,
        ("switchyard_graphql_errors_total", frozenset({"code": "RATE_LIMITED"}.items())): 1,
        (
            "switchyard_graphql_errors_total",
            frozenset({"code": "OPERATION_LIMIT_EXCEEDED"}.items()),
        ): 1,
        ("switchyard_budget_refusals_total", frozenset({"tier": "anonymous"}.items())): 1,
        ("switchyard_limit_refusals_total", frozenset({"limit": "max_depth"}.items())): 1,
        (
            calls,
            frozenset(
                {
                    "upstream": "catalog",
                    "instance": "#0",
                    "purpose": "request",
                    "outcome": "ok",
                }.items()
            ),
        ): 1,
        (
            calls,
            frozenset(
                {
                    "upstream": "accounts",
                    "instance": "#0",
                    "purpose": "request",
                    "outcome": "UPSTREAM_UNAVAILABLE",
                }.items()
            ),
        ): 1,
        (
            "switchyard_upstream_call_duration_seconds_count",
            frozenset({"upstream": "catalog", "instance": "#0"}.items()),
        ): 1,
        (
            "switchyard_upstream_call_duration_seconds_count",
            frozenset({"upstream": "accounts", "instance": "#0"}.items()),
        ): 1,
        # Estimated: the success, the failure and the refused (the limit refused before).
        ("switchyard_query_cost_estimated_count", frozenset()): 3,
        ("switchyard_query_cost_actual_count", frozenset()): 2,
        # Each loader call: the product lookup and the user lookup, one key each.
        (
            "switchyard_loader_batch_size_count",
            frozenset({"loader": _loader_of(after, "catalog")}.items()),
        ): 1,
        (
            "switchyard_loader_batch_size_count",
            frozenset({"loader": _loader_of(after, "accounts")}.items()),
        ): 1,
    }
    assert value(after, "switchyard_requests_in_flight") == 0
    breaker = value(
        after,
        "switchyard_upstream_breaker_state",
        upstream="catalog",
        instance="#0",
        state="closed",
    )
    assert breaker == 1


def _loader_of(series: Series, service: str) -> str:
    """The loader label of ``service``'s lookups (the edge's name, e.g. Query.product)."""
    names = {
        dict(labels)["loader"]
        for name, labels in series
        if name == "switchyard_loader_batch_size_count"
    }
    hint = {"catalog": "product", "accounts": "user"}[service]
    matching = sorted(n for n in names if hint in n.lower())
    assert matching, names
    return matching[0]


async def test_operation_names_beyond_the_bound_fold_into_one_value(
    platform: DemoPlatform,
) -> None:
    config = validate_config(
        gateway_settings(platform.addresses, metrics={"max_operation_names": 2})
    )
    async with open_gateway(config) as client:
        for index in range(5):
            response = await query(client, f'query Op{index} {{ product(id: "1") {{ name }} }}')
            assert response.status_code == 200
        # A client's operationName the document lacks is never kept.
        await client.post(
            "/graphql",
            json={"query": "query A { __typename }", "operationName": "Nope"},
            headers=SERVICE_HEADERS,
        )
        series = await scrape(client)
    operations = {
        dict(labels)["operation"] for name, labels in series if name == "switchyard_requests_total"
    }
    # Strawberry refuses the unknown operationName before the operation begins: unnamed.
    assert operations == {"Op0", "Op1", "other", "anonymous"}
    assert (
        value(series, "switchyard_requests_total", operation="other", type="query", outcome="ok")
        == 3
    )


async def test_metrics_may_require_a_token(platform: DemoPlatform) -> None:
    config = validate_config(gateway_settings(platform.addresses, metrics={"token": METRICS_TOKEN}))
    async with open_gateway(config) as client:
        refused = await client.get("/metrics")
        assert refused.status_code == 401
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
        assert wrong.status_code == 401
        await scrape(client, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})


async def test_metrics_on_a_port_of_their_own(platform: DemoPlatform) -> None:
    (port,) = find_free_ports(1)
    config = validate_config(
        gateway_settings(platform.addresses, metrics={"port": port, "token": METRICS_TOKEN})
    )
    async with open_gateway(config) as client:
        assert (await client.get("/metrics")).status_code == 404  # not on the gateway's port
        await query(client, PRODUCT.format(id=1))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as scraper:
            assert (await scraper.get("/metrics")).status_code == 401
            series = await scrape(scraper, headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert (
        value(
            series, "switchyard_requests_total", operation="ProductName", type="query", outcome="ok"
        )
        == 1
    )


def test_several_workers_answer_the_sum_of_all(platform: DemoPlatform, tmp_path: Path) -> None:
    """``serve --workers 2``: whichever worker a scrape reaches counts every worker's requests."""
    (port,) = find_free_ports(1)
    config = tmp_path / "switchyard.toml"
    config.write_text(_toml(platform.addresses, port), encoding="utf-8")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHYARD_")}
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    project = Path(__file__).resolve().parent.parent
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "switchyard.cli",
            "serve",
            "--config",
            str(config),
            "--workers",
            "2",
        ],
        cwd=project,
        env={**environment, "PYTHONPATH": str(project)},
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "stderr.log").open("wb"),
    )
    try:
        asyncio.run(_count_across_workers(port))
    except BaseException:
        print((tmp_path / "stderr.log").read_text(errors="replace")[-4000:])
        raise
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


REQUESTS_ACROSS_WORKERS = 40


async def _count_across_workers(port: int) -> None:
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        for _ in range(600):  # until both workers listen (no time limit of ours)
            try:
                if (await client.get("/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the workers never answered")
        before = parse((await client.get("/metrics")).text)
    # One connection per request: the kernel spreads them over both workers.
    for _ in range(REQUESTS_ACROSS_WORKERS):
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            response = await client.post(
                "/graphql", json={"query": "query Typename { __typename }"}
            )
            assert response.status_code == 200
    for _ in range(5):  # any worker: each scrape sums them all
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            after = parse((await client.get("/metrics")).text)
        labels = {"operation": "Typename", "type": "query", "outcome": "ok"}
        assert (
            value(after, "switchyard_requests_total", **labels)
            - value(before, "switchyard_requests_total", **labels)
            == REQUESTS_ACROSS_WORKERS
        )


def _toml(addresses: Mapping[str, list[str]], port: int) -> str:
    kinds = {"catalog": "grpc", "inventory": "grpc", "shipping": "xml"}
    lines = [
        "[graph]",
        'module = "schema:graph"',
        "[server]",
        f"port = {port}",
        "gc_freeze = false",
        "[auth]",
        "allow_anonymous = true",
        "[access_log]",
        "enabled = false",
    ]
    for name, instances in addresses.items():
        lines += [
            f"[upstreams.{name}]",
            f'kind = "{kinds.get(name, "rest")}"',
            "instances = [" + ", ".join(f'"{i}"' for i in instances) + "]",
        ]
    return "\n".join(lines) + "\n"


def test_telemetry_off_adds_no_unit(platform: DemoPlatform) -> None:
    from schema import graph
    from switchyard.app import Gateway

    off = {"metrics": {"enabled": False}, "access_log": {"enabled": False}}
    gateway = Gateway(validate_config(gateway_settings(platform.addresses, **off)), graph)
    assert not gateway.telemetry.enabled
    names = [m.cls.__name__ for m in gateway.pipeline.middleware]  # type: ignore[attr-defined]
    assert "TelemetryMiddleware" not in names
    assert gateway.telemetry.operation_units(cost_stage=True) == []
    assert gateway.telemetry.kinds(graph.all_kinds) is graph.all_kinds
    assert gateway.telemetry.routes() == []
