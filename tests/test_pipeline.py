"""One visible pipeline: the stages in order, each decision made once, one way to present errors."""

from __future__ import annotations

import ast
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import (
    FragmentDefinitionNode,
    GraphQLError,
    OperationDefinitionNode,
    get_introspection_query,
    parse,
)

import switchyard
from schema import graph as demo_graph
from switchyard.app import Gateway
from switchyard.config import validate_config
from switchyard.errors import ErrorCode, response_status
from switchyard.limits import measure
from switchyard.pipeline import Stage, assemble
from tests.conftest import gateway_settings, open_gateway, unreachable_addresses

RUNTIME = Path(switchyard.__file__).parent


def gateway_for(**sections: Any) -> Gateway:
    return Gateway(
        validate_config(gateway_settings(unreachable_addresses(), **sections)), demo_graph
    )


def test_the_stages_are_listed_in_the_order_a_request_meets_them() -> None:
    assert [stage.value for stage in Stage] == [
        "http",
        "authenticate",
        "parse",
        "validate",
        "limits",
        "cost",
        "budget",
        "execute",
        "present",
        "respond",
        "settle",
    ]
    assert assemble(gateway_for()).stages == list(Stage)


def test_a_disabled_feature_adds_no_unit_to_the_pipeline() -> None:
    lean = gateway_for(cost={"mode": "off"}, limits={"max_depth": 0, "max_aliases": 0})
    full = gateway_for(cost={"mode": "enforce"}, budgets={"enabled": True})
    assert len(lean.pipeline.operation) == 2  # parse and validate caches
    assert len(full.pipeline.operation) == 4  # and limits, and cost (with budget and settle)
    assert lean.budgets_enabled is False and full.budgets_enabled is True
    assert [m.cls.__name__ for m in lean.pipeline.middleware] == [  # type: ignore[attr-defined]
        "RequestIdMiddleware",
        "BodyLimitMiddleware",
        "AuthenticationMiddleware",
    ]


def string_constants(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_every_error_code_is_written_once_in_the_enumeration() -> None:
    codes = {code.value for code in ErrorCode}
    elsewhere = [
        f"{path.name}:{line}: {value}"
        for path in RUNTIME.rglob("*.py")
        if path != RUNTIME / "errors.py"
        for line, value in string_constants(path)
        if value in codes
    ]
    assert elsewhere == []


def test_only_the_presenter_builds_an_errors_body() -> None:
    builders = [
        f"{path.name}:{node.lineno}"
        for path in RUNTIME.rglob("*.py")
        if path != RUNTIME / "errors.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Dict)
        and any(
            isinstance(k, ast.Constant)
            and k.value == "errors"
            and isinstance(v, ast.List | ast.ListComp)
            for k, v in zip(node.keys, node.values, strict=True)
        )
    ]
    assert builders == []


@pytest.mark.parametrize(
    ("codes", "has_data", "status"),
    [
        ([ErrorCode.GRAPHQL_PARSE_FAILED], False, 400),
        ([ErrorCode.COST_LIMIT_EXCEEDED], False, 400),
        ([ErrorCode.RATE_LIMITED], False, 429),
        ([ErrorCode.UNAUTHENTICATED], False, 401),
        ([ErrorCode.PAYLOAD_TOO_LARGE], False, 413),
        ([ErrorCode.BAD_USER_INPUT, ErrorCode.UNAUTHENTICATED], False, 401),
        ([ErrorCode.UPSTREAM_UNAVAILABLE], True, 200),
        ([ErrorCode.INTERNAL_SERVER_ERROR], False, 200),
    ],
)
def test_one_rule_maps_outcomes_to_http_statuses(
    codes: list[ErrorCode], has_data: bool, status: int
) -> None:
    errors = [GraphQLError("x", extensions={"code": code.value}) for code in codes]
    assert response_status(errors, has_data=has_data) == status


def test_field_errors_answer_200_even_without_data() -> None:
    error = GraphQLError("x", path=["user"], extensions={"code": "BAD_USER_INPUT"})
    assert response_status([error], has_data=False) == 200


@pytest.fixture
async def small_bodies() -> AsyncIterator[httpx.AsyncClient]:
    config = validate_config(
        gateway_settings(unreachable_addresses(), server={"max_body_bytes": 2048})
    )
    async with open_gateway(config) as client:
        yield client


def assert_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413
    assert response.json() == {
        "errors": [
            {
                "message": "The request body is larger than 2048 bytes.",
                "extensions": {
                    "code": "PAYLOAD_TOO_LARGE",
                    "requestId": response.headers["x-request-id"],
                },
            }
        ]
    }


async def test_a_body_over_the_limit_is_refused_with_413(small_bodies: httpx.AsyncClient) -> None:
    document = "{ " + "__typename " * 300 + "}"
    assert_too_large(await small_bodies.post("/graphql", json={"query": document}))


async def test_a_streamed_body_is_refused_as_soon_as_it_passes_the_limit(
    small_bodies: httpx.AsyncClient,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ '
        for _ in range(100):
            yield b"__typename " * 10

    response = await small_bodies.post(
        "/graphql", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    assert_too_large(response)


async def test_a_body_within_the_limit_is_served(small_bodies: httpx.AsyncClient) -> None:
    response = await small_bodies.post("/graphql", json={"query": "{ __typename }"})
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_an_operation_too_deep_is_refused_before_anything_runs(
    gateway: httpx.AsyncClient,
) -> None:
    fields = ['product(id: "1")', *["reviews", "edges", "node", "product"] * 5]
    document = "{ " + " { ".join(fields) + " { id }" + " }" * len(fields)
    response = await gateway.post("/graphql", json={"query": document})
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["message"] == "Query depth 22 exceeds the maximum of 20."
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_too_many_aliases_are_refused(gateway: httpx.AsyncClient) -> None:
    document = "{ " + " ".join(f"a{i}: __typename" for i in range(51)) + " }"
    response = await gateway.post("/graphql", json={"query": document})
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "51 aliases found. Allowed: 50."


async def test_graphiql_s_introspection_query_passes_the_limits(gateway: httpx.AsyncClient) -> None:
    response = await gateway.post("/graphql", json={"query": get_introspection_query()})
    assert response.status_code == 200
    assert "errors" not in response.json()


def test_aliases_in_a_fragment_count_wherever_it_is_spread() -> None:
    document = parse(
        "{ ...F ...F u: __typename } fragment F on Query { a: __typename b: __typename }"
    )
    operation, fragment = document.definitions
    assert isinstance(operation, OperationDefinitionNode)
    assert isinstance(fragment, FragmentDefinitionNode)
    assert measure(operation.selection_set, {"F": fragment}) == (0, 5)
