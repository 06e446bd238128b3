"""The planned execution: which operations it answers, what it caches, how it batches.

Its answers are compared with graphql-core's, operation by operation, in
test_execution_differential.py; here are the rules around it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import strawberry

from services.launcher import DemoPlatform
from switchyard.app import EXECUTION_HEADER
from switchyard.config import validate_config
from switchyard.errors import BadUserInput
from switchyard.execution import ExecutionPath, PlanCache, PlannedExecutor
from tests.conftest import DEMO_GATEWAYS, Backends, gateway_settings, open_gateway, query

DEEP = """
query Deep($n: Int!) {
  orders(first: $n) { edges { node {
    customer { name }
    items { product { name stock { available }
      reviews(first: 3) { edges { node { author { name } } } } } }
  } } }
}
"""


async def test_the_demo_graph_is_answered_by_the_plan(gateway: httpx.AsyncClient) -> None:
    response = await query(gateway, DEEP, {"n": 5})
    assert response.status_code == 200
    assert "errors" not in response.json()
    assert response.headers[EXECUTION_HEADER] == "planned"


async def test_introspection_falls_back_to_graphql_core(gateway: httpx.AsyncClient) -> None:
    response = await query(gateway, "{ __schema { queryType { name } } }")
    assert response.json()["data"] == {"__schema": {"queryType": {"name": "Query"}}}
    assert response.headers[EXECUTION_HEADER] == "standard"


async def test_typename_is_planned(gateway: httpx.AsyncClient) -> None:
    response = await query(gateway, '{ __typename user(id: "1") { __typename id } }')
    assert response.json()["data"] == {
        "__typename": "Query",
        "user": {"__typename": "User", "id": "1"},
    }
    assert response.headers[EXECUTION_HEADER] == "planned"


async def test_each_edge_is_one_call_per_level_for_all_parents(
    gateway: httpx.AsyncClient, backends: Backends
) -> None:
    response = await query(gateway, DEEP, {"n": 50})
    assert "errors" not in response.json()
    # orders list; customers; products; their stock and reviews; the reviews' authors.
    assert await backends.call_counts() == {
        "orders": 1,
        "accounts": 2,
        "catalog": 1,
        "inventory": 1,
        "reviews": 1,
    }


async def test_the_standard_execution_can_be_chosen(platform: DemoPlatform) -> None:
    config = validate_config(gateway_settings(platform.addresses, server={"execution": "standard"}))
    async with open_gateway(config) as client:
        response = await query(client, '{ user(id: "1") { name } }')
    assert response.json()["data"]["user"]["name"]
    assert EXECUTION_HEADER not in response.headers


# A graph without services: the planner's rules on their own.


@strawberry.type
class Item:
    id: int
    label: str | None

    @strawberry.field
    def required(self) -> str:
        if self.id == 2:
            return None  # type: ignore[return-value]  # a broken resolver: null where non-null
        return f"item {self.id}"

    @strawberry.field
    def checked(self) -> str | None:
        if self.id == 3:
            raise BadUserInput("item 3 cannot be checked")
        return "ok"


@strawberry.type
class Query:
    @strawberry.field
    async def items(self, count: int = 3) -> list[Item] | None:
        await asyncio.sleep(0)
        return [Item(id=i, label=None if i % 2 else f"label {i}") for i in range(1, count + 1)]


class Context:
    execution: ExecutionPath | None = None


async def run(document: str, variables: dict[str, Any] | None = None) -> Any:
    """The answer of the planned execution, the same with compiled fills and without."""
    answers = []
    for compiled in (True, False):
        executor = PlannedExecutor.using(PlanCache())
        executor.compiled = compiled
        schema = strawberry.Schema(query=Query, execution_context_class=executor)
        context = Context()
        result = await schema.execute(document, variable_values=variables, context_value=context)
        assert context.execution is ExecutionPath.PLANNED
        answers.append(result)
    compiled_answer, generic_answer = answers
    assert compiled_answer.data == generic_answer.data
    assert [(e.path, e.message) for e in compiled_answer.errors or []] == [
        (e.path, e.message) for e in generic_answer.errors or []
    ]
    return compiled_answer


async def test_a_null_at_a_non_null_field_nulls_the_nearest_nullable_parent() -> None:
    result = await run("{ items { id required } }")
    assert result.data == {"items": None}  # [Item!]: item 2's null reaches the list
    [error] = result.errors
    assert error.path == ["items", 1, "required"]
    assert error.message == "Cannot return null for non-nullable field Item.required."


async def test_an_error_at_a_nullable_field_nulls_only_that_field() -> None:
    result = await run("{ items { id checked } }")
    assert result.data["items"][2] == {"id": 3, "checked": None}
    assert [(e.path, e.message) for e in result.errors] == [
        (["items", 2, "checked"], "item 3 cannot be checked")
    ]


async def test_aliases_fragments_and_skip_with_variables() -> None:
    document = """
    query ($withLabel: Boolean!) {
      first: items(count: 1) { ...Parts label @include(if: $withLabel) }
    }
    fragment Parts on Item { key: id }
    """
    shown = await run(document, {"withLabel": True})
    hidden = await run(document, {"withLabel": False})
    assert shown.data == {"first": [{"key": 1, "label": None}]}
    assert hidden.data == {"first": [{"key": 1}]}


async def test_a_plan_is_made_once_per_document_and_directive_variables(
    platform: DemoPlatform,
) -> None:
    document = 'query ($on: Boolean!) { user(id: "1") { id name @skip(if: $on) } }'
    config = validate_config(gateway_settings(platform.addresses))
    async with open_gateway(config) as client:
        plans = DEMO_GATEWAYS[-1].plans
        answers = [
            (await query(client, document, {"on": on})).json()["data"]
            for on in (True, False, True, False)
        ]
    assert answers[0] == answers[2] == {"user": {"id": "1"}}
    assert answers[1] == answers[3] == {"user": {"id": "1", "name": answers[1]["user"]["name"]}}
    assert plans.made == 2


@pytest.mark.parametrize("count", [0, 1])
async def test_empty_and_single_lists(count: int) -> None:
    result = await run("query ($n: Int!) { items(count: $n) { id } }", {"n": count})
    assert result.data == {"items": [{"id": i} for i in range(1, count + 1)]}
