"""The operation runner drives the pipeline's units as Strawberry's ``Schema.execute`` does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import strawberry
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import SchemaExtension
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.types.graphql import OperationType

from switchyard.operation import OperationRunner

QUERIES = {OperationType.QUERY}


def make_schema(*extensions: Any) -> strawberry.Schema:
    @strawberry.type
    class Query:
        @strawberry.field
        def hello(self) -> str:
            return "world"

        @strawberry.field
        def broken(self) -> str | None:
            raise ValueError("no")

    @strawberry.type
    class Mutation:
        @strawberry.mutation
        def touch(self) -> bool:
            return True

    return strawberry.Schema(Query, Mutation, extensions=list(extensions))


def recording(log: list[str], name: str) -> type[SchemaExtension]:
    class Recorder(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            log.append(f"{name} operation")
            yield
            log.append(f"{name} operation done")

        async def on_execute(self) -> AsyncIterator[None]:
            log.append(f"{name} execute")
            try:
                yield
            finally:
                log.append(f"{name} execute done")

        def get_results(self) -> dict[str, Any]:
            return {name: True}

    return Recorder


async def run(schema: strawberry.Schema, query: str | None, allowed: Any = QUERIES) -> Any:
    runner = OperationRunner(schema)
    return await runner.execute(query, None, None, None, None, allowed, None)


async def test_units_enter_in_order_and_leave_in_reverse_around_execution() -> None:
    log: list[str] = []
    schema = make_schema(recording(log, "a"), recording(log, "b"))

    result = await run(schema, "{ hello }")

    assert result.data == {"hello": "world"}
    assert result.errors is None
    assert result.extensions == {"a": True, "b": True}
    assert log == [
        "a operation",
        "b operation",
        "a execute",
        "b execute",
        "b execute done",
        "a execute done",
        "b operation done",
        "a operation done",
    ]


async def test_answers_like_schema_execute_for_errors_in_fields_syntax_and_validation() -> None:
    schema = make_schema()
    for query in ("{ hello broken }", "{ hello", "{ nothing }"):
        ours = await run(schema, query)
        theirs = await schema.execute(query, allowed_operation_types=QUERIES)
        assert ours.data == theirs.data
        assert [e.formatted for e in ours.errors or []] == [
            e.formatted for e in theirs.errors or []
        ]


async def test_a_unit_raising_before_execution_answers_its_error_and_runs_nothing() -> None:
    class Refuses(SchemaExtension):
        def on_execute(self) -> Iterator[None]:
            raise ValueError("refused by a unit")
            yield  # pragma: no cover

    log: list[str] = []
    result = await run(make_schema(recording(log, "a"), Refuses), "{ hello }")

    assert result.data is None
    assert [e.message for e in result.errors or []] == ["refused by a unit"]
    assert "a execute done" in log  # the units entered before it were finished


async def test_refuses_what_the_transport_does_not_allow_and_an_empty_request() -> None:
    schema = make_schema()
    with pytest.raises(InvalidOperationTypeError):
        await run(schema, "mutation { touch }", allowed=QUERIES)
    with pytest.raises(MissingQueryError):
        await run(schema, None)
