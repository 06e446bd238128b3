"""Operation limits: each refused before anything runs, naming the limit, allowed and measured."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from graphql import FragmentDefinitionNode, OperationDefinitionNode, parse

from services.launcher import DemoPlatform
from switchyard.config import validate_config
from switchyard.documents import DocumentCache
from switchyard.limits import LimitSettings, measure
from tests.conftest import Backends, gateway_settings, open_gateway, query

ANONYMOUS: dict[str, str] = {}


@pytest.fixture
async def strict(platform: DemoPlatform) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway with small limits, so that each is easy to pass."""
    limits = {
        "max_body_bytes": 4096,
        "max_header_count": 30,
        "max_document_bytes": 2048,
        "max_tokens": 300,
        "max_depth": 6,
        "max_aliases": 3,
        "max_root_fields": 4,
        "max_selections": 8,
        "max_directives_per_field": 1,
        "max_directives": 4,
        "max_fragments": 2,
        "max_variable_depth": 3,
        "max_errors": 5,
    }
    config = validate_config(gateway_settings(platform.addresses, limits=limits))
    async with open_gateway(config) as client:
        yield client


def refusal(response: httpx.Response) -> dict[str, Any]:
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "OPERATION_LIMIT_EXCEEDED"
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]
    assert response.json().get("data") is None
    limit: dict[str, Any] = error["extensions"]["limit"]
    return {"status": response.status_code, "message": error["message"], **limit}


def test_the_defaults_are_on() -> None:
    defaults = LimitSettings()
    assert (defaults.max_tokens, defaults.max_depth, defaults.max_aliases) == (2000, 15, 30)
    assert defaults.max_body_bytes == 256 * 1024
    assert defaults.warn == []


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            "{ a: __typename b: __typename c: __typename d: __typename }",
            ("max_aliases", 3, 4, "4 aliases found. Allowed: 3."),
        ),
        (
            '{ product(id: "1") { reviews { edges { node { product { reviews { edges'
            " { node { id } } } } } } } } }",
            ("max_depth", 6, 9, "Query depth 9 exceeds the maximum of 6."),
        ),
        (
            "{ __typename users { totalCount } products { totalCount } product(id: 1) { id }"
            " user(id: 1) { id } }",
            ("max_root_fields", 4, 5, "5 root fields found. Allowed: 4."),
        ),
        (
            '{ product(id: "1") { id name description category id name description category'
            " price { amount } } }",
            ("max_selections", 8, 9, "9 fields in one selection. Allowed: 8."),
        ),
        (
            "{ __typename @skip(if: false) @include(if: true) }",
            ("max_directives_per_field", 1, 2, "2 directives on one field. Allowed: 1."),
        ),
        (
            "{ a1: __typename @skip(if: false) a2: __typename @skip(if: false)"
            " a3: __typename @skip(if: false)"
            " user(id: 1) @skip(if: false) { id @skip(if: false) } }",
            ("max_directives", 4, 5, "5 directives found. Allowed: 4."),
        ),
        (
            "{ ...A ...B ...C } fragment A on Query { __typename } fragment B on Query"
            " { __typename } fragment C on Query { __typename }",
            ("max_fragments", 2, 3, "3 fragments found. Allowed: 2."),
        ),
    ],
    ids=[
        "aliases",
        "depth",
        "root fields",
        "selection width",
        "directives on a field",
        "directives",
        "fragments",
    ],
)
async def test_the_shape_of_an_operation_is_limited_before_anything_runs(
    strict: httpx.AsyncClient, backends: Backends, document: str, expected: tuple[Any, ...]
) -> None:
    response = await query(strict, document)
    name, allowed, measured, message = expected
    assert refusal(response) == {
        "status": 400,
        "message": message,
        "name": name,
        "allowed": allowed,
        "measured": measured,
    }
    assert await backends.call_counts() == {}


async def test_a_document_over_its_byte_limit_is_refused_before_parsing(
    strict: httpx.AsyncClient,
) -> None:
    document = "{ __typename }" + " " * 3000
    assert refusal(await query(strict, document)) == {
        "status": 400,
        "message": "The document has 3014 bytes; the limit is 2048.",
        "name": "max_document_bytes",
        "allowed": 2048,
        "measured": 3014,
    }


async def test_comments_count_as_tokens_and_the_parser_stops_at_the_limit(
    strict: httpx.AsyncClient,
) -> None:
    padded = "{ __typename " + "#\n" * 400 + "}"
    assert refusal(await query(strict, padded)) == {
        "status": 400,
        "message": "The document has more than 300 tokens; parsing stopped there.",
        "name": "max_tokens",
        "allowed": 300,
        "measured": 301,
    }


async def test_a_megabyte_document_of_distinct_fields_stops_at_the_token_limit(
    platform: DemoPlatform, backends: Backends
) -> None:
    # The other limits made large, so that the parser's token limit is what refuses.
    limits = {"max_body_bytes": 4 << 20, "max_document_bytes": 4 << 20}
    config = validate_config(gateway_settings(platform.addresses, limits=limits))
    document = "{ " + " ".join(f"f{i}" for i in range(150_000)) + " }"
    assert len(document) > 1_000_000
    async with open_gateway(config) as client:
        response = await query(client, document)
    assert refusal(response)["name"] == "max_tokens"
    assert refusal(response)["measured"] == 2001
    assert await backends.call_counts() == {}


async def test_eight_thousand_aliases_under_a_list_are_refused(
    gateway: httpx.AsyncClient, backends: Backends
) -> None:
    aliases = " ".join(f"a{i}: name" for i in range(8000))
    response = await query(gateway, "{ users(first: 100) { edges { node { " + aliases + " } } } }")
    # About 100 KB: over the document's byte limit, refused before the parser sees it.
    assert refusal(response)["name"] == "max_document_bytes"
    assert await backends.call_counts() == {}


async def test_a_fifty_megabyte_body_is_refused_by_its_declared_length(
    strict: httpx.AsyncClient,
) -> None:
    response = await strict.post(
        "/graphql",
        content=b"{}",
        headers={"content-type": "application/json", "content-length": str(50 << 20)},
    )
    assert refusal(response) == {
        "status": 413,
        "message": f"The request has at least {50 << 20} bytes of body; the limit is 4096.",
        "name": "max_body_bytes",
        "allowed": 4096,
        "measured": 50 << 20,
    }


async def test_a_streamed_body_is_refused_as_soon_as_it_passes_the_limit(
    strict: httpx.AsyncClient,
) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"query": "{ '
        for _ in range(1000):
            sent += 1
            yield b"__typename " * 10

    response = await strict.post(
        "/graphql", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    refused = refusal(response)
    assert (refused["status"], refused["name"]) == (413, "max_body_bytes")
    assert 4096 < refused["measured"] <= 4096 + 110
    assert sent < 1000  # the rest of the body was never read


async def test_too_many_headers_answer_431(strict: httpx.AsyncClient) -> None:
    headers = {f"x-padding-{i}": "1" for i in range(40)}
    refused = refusal(
        await strict.post("/graphql", json={"query": "{ __typename }"}, headers=headers)
    )
    assert (refused["status"], refused["name"], refused["allowed"]) == (431, "max_header_count", 30)


async def test_variables_nested_deeper_than_the_limit_are_400(strict: httpx.AsyncClient) -> None:
    nested = "[" * 1000 + "1" + "]" * 1000
    body = '{"query": "query($v: [Int]) { __typename }", "variables": {"v": ' + nested + "}}"
    response = await strict.post(
        "/graphql", content=body.encode(), headers={"content-type": "application/json"}
    )
    refused = refusal(response)
    assert (refused["status"], refused["name"], refused["allowed"]) == (
        400,
        "max_variable_depth",
        3,
    )


async def test_an_answer_over_its_byte_limit_becomes_one_error(
    platform: DemoPlatform,
) -> None:
    config = validate_config(
        gateway_settings(platform.addresses, limits={"max_response_bytes": 2000})
    )
    async with open_gateway(config) as client:
        response = await query(client, "{ users(first: 50) { edges { node { id name } } } }")
    body = response.json()
    assert response.status_code == 200
    assert body["data"] is None
    (error,) = body["errors"]
    assert error["extensions"]["limit"]["name"] == "max_response_bytes"
    assert error["extensions"]["limit"]["measured"] > 2000
    assert len(response.content) < 2000


async def test_errors_are_capped_with_one_saying_how_many_were_left_out(
    strict: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await query(
        strict, "{ users(first: 12) { edges { node { email } } } }", headers=ANONYMOUS
    )
    body = response.json()
    assert len(body["data"]["users"]["edges"]) == 12
    assert [e["extensions"]["code"] for e in body["errors"]] == ["UNAUTHENTICATED"] * 5 + [
        "OPERATION_LIMIT_EXCEEDED"
    ]
    assert body["errors"][-1]["message"] == "7 more errors were left out."
    assert body["errors"][-1]["extensions"]["limit"] == {
        "name": "max_errors",
        "allowed": 5,
        "measured": 12,
    }
    lines = [r for r in caplog.records if r.name.startswith(("switchyard", "strawberry"))]
    lines = [r for r in lines if r.name != "switchyard.access"]  # the access log's line
    assert [r.getMessage() for r in lines] == [
        "answered with errors: UNAUTHENTICATED x5, OPERATION_LIMIT_EXCEEDED x1"
    ]
    assert lines[0].levelno == logging.INFO and lines[0].exc_info is None


async def test_a_warn_limit_logs_and_lets_the_operation_run(
    platform: DemoPlatform, caplog: pytest.LogCaptureFixture
) -> None:
    limits = {"max_aliases": 1, "warn": ["max_aliases"]}
    config = validate_config(gateway_settings(platform.addresses, limits=limits))
    async with open_gateway(config) as client:
        response = await query(client, "{ a: __typename b: __typename }")
    assert response.json() == {"data": {"a": "Query", "b": "Query"}}
    assert "operation over a limit: max_aliases = 2, allowed 1 (warn only)" in caplog.text


def test_fragments_spread_twice_over_are_measured_once_each() -> None:
    # F0 spreads F1 twice, F1 spreads F2 twice...: walking it would visit 2**20 fields.
    fragments = [f"fragment F{k} on Query {{ ...F{k + 1} ...F{k + 1} }}" for k in range(19)]
    fragments.append("fragment F19 on Query { a: __typename }")
    document = parse("{ ...F0 } " + " ".join(fragments))
    operation, *definitions = document.definitions
    assert isinstance(operation, OperationDefinitionNode)
    by_name = {d.name.value: d for d in definitions if isinstance(d, FragmentDefinitionNode)}
    shape = measure(operation, by_name)
    assert (shape.aliases, shape.root_fields, len(shape.fragments)) == (2**19, 2**19, 20)


def test_the_document_cache_keeps_within_its_bytes() -> None:
    cache = DocumentCache(max_bytes=2_000_000)
    for i in range(100):
        document = "{ " + " ".join(f"a{i}_{k}: __typename" for k in range(400)) + " }"
        cache.parse(document, {})
        assert cache.size <= 2_000_000
    # Each holds about 128 bytes of syntax tree per character of its text.
    assert 0 < len(cache) < 100


async def test_a_query_of_two_thousand_errors_answers_the_cap_and_logs_one_line(
    gateway: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    emails = " ".join(f"e{i}: email" for i in range(20))
    document = "{ users(first: 100) { edges { node { " + emails + " } } } }"
    assert len(document) < 300
    response = await query(gateway, document, headers=ANONYMOUS)
    errors = response.json()["errors"]
    assert len(errors) == 101
    assert errors[-1]["message"] == "1900 more errors were left out."
    lines = [r for r in caplog.records if r.name.startswith(("switchyard", "strawberry"))]
    lines = [r for r in lines if r.name != "switchyard.access"]  # the access log's line
    assert [r.getMessage() for r in lines] == [
        "answered with errors: UNAUTHENTICATED x100, OPERATION_LIMIT_EXCEEDED x1"
    ]
