"""The planned execution path answers exactly what graphql-core's standard execution answers.

Hundreds of seeded random operations (fragments, aliases, variables, ``@skip``/
``@include``, errors and nulls injected at random places, authorization failures,
partial upstream failures) run through both paths:

- on the small in-memory graph of ``tests/differential/abstract_graph.py`` (interfaces,
  unions, a custom scalar), through two Strawberry schemas over the same types, one
  executed by ``PlannedExecutor``;
- on the demo graph, through two gateways over the running demo platform, one with
  ``[server] execution = "planned"`` and one with ``"standard"``, as several callers, and
  while a service is stopped or failing.

Answers must be identical: ``data`` equal (key order included) and errors equal path by
path (message, extensions but the request id, locations), in any order; over the demo
graph the HTTP status too. At least 90% of the operations that execute must take the
planned path, so the test cannot pass by falling back. A failure shows the operation,
its variables and both answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import AsyncIterator, Mapping
from inspect import isawaitable
from typing import Any

import graphql
import httpx
import pytest
import strawberry
from graphql import DirectiveNode, NameNode, OperationDefinitionNode, parse
from graphql.type.directives import GraphQLDisableErrorPropagationDirective
from joserfc import jwt as jose_jwt
from joserfc.jwk import OctKey

from schema import graph as demo_graph
from services.admin import AdminClient
from services.faults import FaultConfig
from services.launcher import DemoPlatform
from switchyard.config import validate_config
from switchyard.execution import ExecutionPath, PlannedExecutor
from tests.conftest import SERVICE_KEY, SERVICE_SCOPES, gateway_settings, open_gateway
from tests.differential import abstract_graph
from tests.differential.compare import Answer, Tally, difference, presented, split_errors
from tests.differential.generator import OMIT, Operation, OperationGenerator, Settings

SEED = 20240610
PLANNED_SHARE = 0.9
ABSTRACT_OPERATIONS = 300
DEMO_OPERATIONS = 200
FAILURE_OPERATIONS = 30
"""Operations per partial-failure batch (a stopped service, a failing one)."""

NO_PROPAGATION = GraphQLDisableErrorPropagationDirective.name

# --- the abstract graph --------------------------------------------------------------

CHARACTER_IDS = [str(n) for n in range(1, abstract_graph.CHARACTER_COUNT + 1)]


def _character_id(rng: random.Random) -> str:
    return rng.choice([*CHARACTER_IDS, *CHARACTER_IDS, abstract_graph.MISSING_ID, "x1"])


def _node_id(rng: random.Random) -> str:
    return rng.choice([*CHARACTER_IDS, *abstract_graph.STARSHIP_IDS, "999", "x3"])


ABSTRACT_SETTINGS = Settings(
    max_depth=5,
    fields_per_selection=(1, 4),
    max_fields=30,
    root_fields=(1, 3),
    directive_rate=0.1,
    mutation_rate=0.03,
    introspection_rate=0.02,
    arguments={
        "Query.character.id": _character_id,
        "Query.characters.ids": lambda rng: [_character_id(rng) for _ in range(rng.randint(0, 4))],
        "Query.node.id": _node_id,
        "Query.search.text": lambda rng: rng.choice(["a", "o", "Luke", "wing", "", "zzz"]),
        "Query.search.first": lambda rng: rng.choice([0, 1, 2, 3, 5, -1]),
        "Query.starships.first": lambda rng: rng.choice([None, 0, 2, 4, 9]),
        "Query.greeting.name": lambda rng: rng.choice(["Rey", "", OMIT]),
        "*.friends.first": lambda rng: rng.choice([0, 1, 2, 3, 3, -1]),
        "*.crew.first": lambda rng: rng.choice([0, 1, 2, 3]),
        "Mutation.rename.id": _character_id,
        "Mutation.rename.name": lambda rng: rng.choice(["Ben", "  ", "Kylo"]),
    },
    scalars={"ID": _character_id},
)


def abstract_schemas() -> tuple[strawberry.Schema, strawberry.Schema]:
    return abstract_graph.build_schema(), abstract_graph.build_schema(PlannedExecutor)


class Faults:
    """What one operation's fake services inject: field failures (``salt``), services down."""

    def __init__(self, rng: random.Random) -> None:
        self.salt = 0 if rng.random() < 0.3 else rng.randint(1, 10**6)
        self.roster_down = rng.random() < 0.06
        self.registry_down = rng.random() < 0.1

    def context(self, caller: str) -> Any:
        return abstract_graph.new_context(
            abstract_graph.CALLERS[caller],
            abstract_graph.RosterUpstream(salt=self.salt, down=self.roster_down),
            abstract_graph.RosterUpstream(salt=self.salt, down=self.registry_down),
        )

    def __str__(self) -> str:
        down = [n for n, d in (("roster", self.roster_down), ("registry", self.registry_down)) if d]
        return f"salt {self.salt}" + "".join(f", {name} down" for name in down)


async def run_abstract(
    schema: strawberry.Schema, operation: Operation, caller: str, faults: Faults
) -> Answer:
    context = faults.context(caller)
    try:
        result = await schema.execute(
            operation.document, variable_values=operation.variables, context_value=context
        )
    except (Exception, asyncio.CancelledError) as crash:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # this test is being cancelled: not an answer
        # An execution that raises instead of answering: shown, and compared, as an answer.
        return Answer(data=None, errors=[crashed(crash)], path_taken=_path_of(context))
    return Answer(data=result.data, errors=presented(result.errors), path_taken=_path_of(context))


async def every_error(
    schema: strawberry.Schema, operation: Operation, caller: str, faults: Faults
) -> list[dict[str, Any]]:
    """The errors ``operation`` raises, each at its own path: run without error propagation.

    graphql-core's ``@experimental_disableErrorPropagation`` leaves a failed non-null
    field null instead of nulling its parent, so no error is swallowed by another.
    """
    parsed = parse(operation.document)
    no_propagation = DirectiveNode(name=NameNode(value=NO_PROPAGATION), arguments=())
    document = dataclasses.replace(
        parsed,
        definitions=tuple(
            dataclasses.replace(d, directives=(*(d.directives or ()), no_propagation))
            if isinstance(d, OperationDefinitionNode)
            else d
            for d in parsed.definitions
        ),
    )
    context = faults.context(caller)
    result = graphql.execute(
        schema._schema, document, variable_values=operation.variables, context_value=context
    )
    if isawaitable(result):
        result = await result
    assert isinstance(result, graphql.ExecutionResult)
    return presented(result.errors)


def crashed(crash: BaseException) -> dict[str, Any]:
    return {
        "message": f"execution raised {type(crash).__name__}: {crash}",
        "extensions": {"code": "EXECUTION_RAISED"},
    }


def _path_of(context: object) -> str | None:
    taken = getattr(context, "execution", None)
    return None if taken is None else str(ExecutionPath(taken))


ABSTRACT_CODES = {
    "BAD_USER_INPUT",
    "FORBIDDEN",
    "UNAUTHENTICATED",
    "INTERNAL_SERVER_ERROR",
    "UPSTREAM_UNAVAILABLE",
}
DEMO_CODES = {"BAD_USER_INPUT", "FORBIDDEN", "UNAUTHENTICATED", "UPSTREAM_UNAVAILABLE"}


def assert_covered(tally: Tally, codes: set[str]) -> None:
    """The operations met every kind of error they are meant to, and none was invalid."""
    assert codes <= set(tally.codes), f"errors seen: {dict(tally.codes)}"
    assert "GRAPHQL_VALIDATION_FAILED" not in tally.codes, "the generator wrote invalid operations"


def test_the_comparison_tells_every_difference() -> None:
    def error(path: list[str | int], message: str, code: str = "FORBIDDEN") -> dict[str, Any]:
        return {"message": message, "path": path, "extensions": {"code": code}}

    data = {"a": {"b": None, "c": 1}, "d": None}
    same = Answer(data, [error(["a", "b"], "no"), error(["d", "e"], "x")])
    assert difference(same, Answer(data, list(reversed(same.errors)))) == []
    reordered = Answer({"d": None, "a": {"c": 1, "b": None}}, same.errors)
    assert difference(same, reordered) == ["data differs in key order"]
    assert difference(same, Answer({**data, "d": 1}, same.errors))[0] == "data differs"
    other_code = Answer(data, [error(["a", "b"], "no", "UNAUTHENTICATED"), same.errors[1]])
    assert difference(same, other_code)[0].startswith("errors at a.b:")
    # Under the null at d, another error may be reported, but not none, nor one never raised.
    swapped = Answer(data, [same.errors[0], error(["d", "f"], "y")])
    reference = [*same.errors, error(["d", "f"], "y")]
    assert difference(same, swapped, reference) == []
    assert difference(same, swapped, same.errors)[0].startswith("planned reports an error never")
    assert difference(same, Answer(data, same.errors[:1]))[0].startswith("errors swallowed")


def executed(answer: Answer) -> bool:
    """Whether the operation reached execution (not refused as a whole before it)."""
    return answer.data is not None or any(e.get("path") for e in answer.errors)


def test_the_generator_is_reproducible_and_writes_valid_operations_with_every_feature() -> None:
    schema = abstract_graph.build_schema()._schema
    checked = OperationGenerator(schema, ABSTRACT_SETTINGS, seed=SEED)
    first = list(checked.operations(80))
    again = list(
        OperationGenerator(schema, ABSTRACT_SETTINGS, seed=SEED, check=False).operations(80)
    )
    assert first == again
    assert checked.rejected == 0
    demo = OperationGenerator(demo_graph.schema._schema, DEMO_SETTINGS, seed=SEED)
    assert list(demo.operations(40)) == demo_operations(SEED, 40)
    assert demo.rejected == 0
    text = "\n".join(op.document for op in first)
    for feature in (
        "fragment F",  # named fragments
        "...F",  # their spreads
        "... on Human",  # inline fragments on possible types
        "... on Character",  # on an interface
        "... on SearchResult",
        "@skip(if: $b",
        "@include(if: true",
        ": __typename",  # aliases
        "$v",  # variables
        "mutation",
    ):
        assert feature in text, feature


async def test_the_abstract_graph_answers_alike_on_both_paths() -> None:
    standard, planned = abstract_schemas()
    generator = OperationGenerator(standard._schema, ABSTRACT_SETTINGS, seed=SEED, check=False)
    draws = random.Random(SEED + 1)
    callers = sorted(abstract_graph.CALLERS)
    tally = Tally()
    for number, operation in enumerate(generator.operations(ABSTRACT_OPERATIONS)):
        caller = callers[number % len(callers)]
        faults = Faults(draws)
        expected = await run_abstract(standard, operation, caller, faults)
        actual = await run_abstract(planned, operation, caller, faults)
        label = f"abstract #{number} as {caller}, {faults}"
        reference = None
        if any(split_errors(answer)[1] for answer in (expected, actual)):
            reference = await every_error(standard, operation, caller, faults)
        tally.record(label, operation.describe(), expected, actual, reference)
        if executed(expected):
            tally.count_path(actual.path_taken, operation.describe())
    assert not tally.mismatches, tally.failure()
    assert_covered(tally, ABSTRACT_CODES)
    assert tally.swallowed >= 20, "too few nulls propagated: the comparison would not test them"
    assert tally.executed >= ABSTRACT_OPERATIONS * 0.9
    assert tally.share_planned() >= PLANNED_SHARE, (
        f"{tally.planned} of {tally.executed} operations took the planned path; fell back:\n"
        + "\n\n".join(tally.fallbacks[:10])
    )


async def test_a_null_propagating_in_a_list_does_not_cancel_a_load_other_fields_share() -> None:
    """graphql-core cancels sibling fields when a null propagates; their loads are shared
    per key, so a cancelled waiter must not cancel the load (seed 17 found it, op #286)."""
    standard, _planned = abstract_schemas()
    generator = OperationGenerator(standard._schema, ABSTRACT_SETTINGS, seed=17, check=False)
    draws = random.Random(17 + 1)
    callers = sorted(abstract_graph.CALLERS)
    crashes = []
    for number, operation in enumerate(generator.operations(ABSTRACT_OPERATIONS)):
        answer = await run_abstract(
            standard, operation, callers[number % len(callers)], Faults(draws)
        )
        crashes += [e for e in answer.errors if e["extensions"].get("code") == "EXECUTION_RAISED"]
    assert crashes == []


# --- the demo graph ------------------------------------------------------------------

JWT_SECRET = "differential-tests-secret-0123456789abcdef"
JWT_KEY = OctKey.import_key(JWT_SECRET, parameters={"kid": "differential"})
PARTNER_KEY = "differential-partner-key-0123456789"
READER_KEY = "differential-reader-key-0123456789"
DEBUG = {"X-Switchyard-Debug": "1"}
EXECUTION_HEADER = "x-switchyard-execution"


def _api_key(key: str, client_id: str, scopes: list[str], tier: str) -> dict[str, Any]:
    import hashlib

    digest = hashlib.sha256(key.encode()).hexdigest()
    return {"hash": f"sha256:{digest}", "client_id": client_id, "scopes": scopes, "tier": tier}


def demo_config(platform: DemoPlatform, execution: str) -> Any:
    auth = {
        "jwt": {"keys": [{"kid": "differential", "algorithms": ["HS256"], "secret": JWT_SECRET}]},
        "api_keys": [
            _api_key(SERVICE_KEY, "test-service", SERVICE_SCOPES, "service"),
            _api_key(PARTNER_KEY, "partner", ["orders:read"], "pro"),
            _api_key(READER_KEY, "reader", ["products:read"], "free"),
        ],
    }
    settings = gateway_settings(platform.addresses, auth=auth, server={"execution": execution})
    return validate_config(settings)


def bearer(subject: str, scope: str = "") -> dict[str, str]:
    claims = {"sub": subject, "exp": int(time.time()) + 3600, "scope": scope}
    header = {"alg": "HS256", "kid": "differential"}
    token = jose_jwt.encode(header, claims, JWT_KEY, algorithms=["HS256"])
    return {"Authorization": f"Bearer {token}"}


def demo_callers() -> dict[str, dict[str, str]]:
    """Who asks: anonymous, API keys with all, some and other scopes, users with tokens."""
    return {
        "anonymous": {},
        "service key": {"X-Api-Key": SERVICE_KEY},
        "partner key": {"X-Api-Key": PARTNER_KEY},
        "reader key": {"X-Api-Key": READER_KEY},
        "user 3": bearer("3"),
        "user 7 with orders:read": bearer("7", "orders:read"),
    }


def _demo_id(rng: random.Random) -> str:
    return rng.choice([*(str(n) for n in range(1, 31)), "999999", "x1"])


def _root_first(rng: random.Random) -> Any:
    return rng.choice([0, 1, 2, 3, 4, 5, 5, 101, None, OMIT])


def _nested_first(rng: random.Random) -> Any:
    return rng.choice([0, 1, 2, 3, -1, OMIT])


def _after(rng: random.Random) -> Any:
    # offset 2, a cursor no service issued, one over MAX_CURSOR_LENGTH; mostly none.
    return rng.choice([OMIT, OMIT, OMIT, OMIT, "b2Zmc2V0OjI=", "nope", "x" * 300])


DEMO_SETTINGS = Settings(
    max_depth=7,
    fields_per_selection=(1, 3),
    max_fields=30,
    directive_rate=0.1,
    root_fields=(1, 3),
    introspection_rate=0.01,
    arguments={
        "Query.user.id": _demo_id,
        "Query.order.id": _demo_id,
        "Query.product.id": _demo_id,
        "Query.users.first": _root_first,
        "Query.orders.first": _root_first,
        "Query.products.first": _root_first,
        "Query.products.search": lambda rng: rng.choice([OMIT, OMIT, "a", "drill", "zzz"]),
        "Query.products.category": lambda rng: rng.choice([OMIT, OMIT, "tools", "books", "x"]),
        "User.orders.first": _nested_first,
        "Product.reviews.first": _nested_first,
        "*.orders.after": _after,
        "*.users.after": _after,
        "*.products.after": _after,
        "*.reviews.after": _after,
    },
    scalars={"ID": _demo_id},
)

INVALID_MUTATIONS = [
    Operation(
        'mutation { addReview(productId: "x1", rating: 5, body: "Fine.") { id rating } }',
        {},
        "mutation",
    ),
    Operation(
        "mutation Add($p: ID!, $r: Int!) { addReview(productId: $p, rating: $r, body: "
        '"Fine.") { id author { name } } }',
        {"p": "bad id", "r": 9},
        "mutation",
    ),
]
"""Writes refused before any call: anonymous, API-key and user callers each get their error."""


@pytest.fixture(scope="module")
async def gateways(
    platform: DemoPlatform,
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    async with (
        open_gateway(demo_config(platform, "standard")) as standard,
        open_gateway(demo_config(platform, "planned")) as planned,
    ):
        yield standard, planned


async def ask(
    client: httpx.AsyncClient, operation: Operation, headers: Mapping[str, str]
) -> Answer:
    payload: dict[str, Any] = {"query": operation.document}
    if operation.variables:
        payload["variables"] = operation.variables
    response = await client.post("/graphql", json=payload, headers={**DEBUG, **headers})
    body = response.json()
    return Answer(
        data=body.get("data"),
        errors=body.get("errors", []),
        status=response.status_code,
        path_taken=response.headers.get(EXECUTION_HEADER),
    )


async def run_demo_batch(
    gateways: tuple[httpx.AsyncClient, httpx.AsyncClient],
    operations: list[Operation],
    label: str,
    tally: Tally,
) -> None:
    standard, planned = gateways
    callers = demo_callers()
    names = sorted(callers)
    for number, operation in enumerate(operations):
        caller = names[number % len(names)]
        expected, actual = await asyncio.gather(
            ask(standard, operation, callers[caller]), ask(planned, operation, callers[caller])
        )
        tally.record(f"{label} #{number} as {caller}", operation.describe(), expected, actual)
        if executed(expected):
            tally.count_path(actual.path_taken, operation.describe())


def demo_operations(seed: int, count: int) -> list[Operation]:
    schema = demo_graph.schema._schema
    generator = OperationGenerator(schema, DEMO_SETTINGS, seed=seed, check=False)
    return list(generator.operations(count))


async def test_the_demo_graph_answers_alike_on_both_paths(
    platform: DemoPlatform, gateways: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    tally = Tally()
    operations = demo_operations(SEED, DEMO_OPERATIONS)
    mutations = [m for m in INVALID_MUTATIONS for _ in range(3)]
    await run_demo_batch(gateways, operations + mutations, "demo", tally)

    # A stopped service (REST), then a failing one (gRPC, every call refused): the
    # fields that need it are null with errors, the same on both paths.
    platform.stop_service("shipping")
    try:
        stopped = demo_operations(SEED + 1, FAILURE_OPERATIONS)
        await run_demo_batch(gateways, stopped, "shipping stopped", tally)
    finally:
        platform.start_service("shipping")
    async with AdminClient() as admin:
        inventory = platform.endpoint("inventory")
        await admin.set_faults(inventory, FaultConfig(error_rate=1.0))
        try:
            failing = demo_operations(SEED + 2, FAILURE_OPERATIONS)
            await run_demo_batch(gateways, failing, "inventory failing", tally)
        finally:
            await admin.set_faults(inventory, FaultConfig())

    assert not tally.mismatches, tally.failure()
    assert_covered(tally, DEMO_CODES)
    assert tally.executed >= tally.compared * 0.8
    assert tally.share_planned() >= PLANNED_SHARE, (
        f"{tally.planned} of {tally.executed} operations took the planned path; fell back:\n"
        + "\n\n".join(tally.fallbacks[:10])
    )
