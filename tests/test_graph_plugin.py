"""``Graph``: what it finds in a schema, what it requires of a config, how it is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import strawberry

from schema import graph as demo_graph
from switchyard import BatchEdge, Graph, GraphLoadError, Service, load_graph
from switchyard.upstream import HttpTransport, UpstreamSettings

BILLING = Service("billing")


async def invoices_by_id(upstream: Any, ids: list[str], scope: Any) -> dict[str, Any]:
    return {}


invoice_edge: BatchEdge[str, Any] = BatchEdge("invoices", service=BILLING, fetch=invoices_by_id)


@strawberry.type
class Invoice:
    id: str


def test_the_demo_graph_finds_its_services_through_its_edges_and_roots() -> None:
    assert demo_graph.upstreams == [
        "accounts",
        "catalog",
        "inventory",
        "orders",
        "reviews",
        "shipping",
    ]
    assert sorted(demo_graph.all_kinds) == ["grpc", "rest", "xml"]


@strawberry.type
class Order:
    id: str
    invoice: Invoice = invoice_edge.field(key=lambda order: order.id)


@strawberry.type
class OrderQuery:
    order: Order | None = None


def test_an_edge_declared_non_null_is_refused_with_its_name() -> None:
    graph = Graph(schema=strawberry.Schema(query=OrderQuery))
    with pytest.raises(GraphLoadError) as error:
        _ = graph.upstreams
    assert str(error.value) == (
        "Order.invoice is served by another service (billing), so it must be nullable"
    )


def test_a_graph_cannot_redefine_a_built_in_kind() -> None:
    @strawberry.type
    class Query:
        hello: str = "world"

    odd = Service("odd", kinds={"rest": HttpTransport.for_instance})
    graph = Graph(schema=strawberry.Schema(query=Query), services=[odd])
    with pytest.raises(ValueError, match="upstream kind 'rest' is built in"):
        _ = graph.all_kinds


def test_check_names_the_first_problem() -> None:
    rest = UpstreamSettings(kind="rest", instances=["http://127.0.0.1:1"])
    settings = {name: rest for name in demo_graph.upstreams}
    with pytest.raises(GraphLoadError, match=r"^upstreams.catalog.kind: unknown kind 'soap'"):
        demo_graph.check({**settings, "catalog": rest.model_copy(update={"kind": "soap"})})
    with pytest.raises(GraphLoadError, match=r"^upstreams.orders: the graph calls this upstream"):
        demo_graph.check({k: v for k, v in settings.items() if k != "orders"})


def test_a_graph_is_found_beside_its_config(tmp_path: Path) -> None:
    (tmp_path / "beside_config_graph.py").write_text(
        "import strawberry\nfrom switchyard import Graph\n\n"
        "@strawberry.type\nclass Query:\n    hello: str = 'world'\n\n"
        "graph = Graph(schema=strawberry.Schema(query=Query))\n"
    )
    graph = load_graph("beside_config_graph:graph", base_dir=tmp_path)
    assert graph.schema.execute_sync("{ hello }", root_value=graph.root_value).data == {
        "hello": "world"
    }


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("raise RuntimeError('boom')\n", "importing it failed: RuntimeError: boom"),
        ("graph = 42\n", "expected a switchyard.Graph, found int"),
        ("import not_installed_anywhere\n", "importing it failed: ModuleNotFoundError"),
    ],
)
def test_a_broken_graph_module_is_one_line(tmp_path: Path, source: str, message: str) -> None:
    name = f"broken_graph_{abs(hash(source))}"
    (tmp_path / f"{name}.py").write_text(source)
    with pytest.raises(GraphLoadError) as error:
        load_graph(f"{name}:graph", base_dir=tmp_path)
    assert message in str(error.value)
    assert "\n" not in str(error.value)
