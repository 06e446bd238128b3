"""Query cost: the cost directives in the SDL, estimates and actual costs computed by hand.

Every expected cost below is worked out in its comment with the rules of
``switchyard.cost``: a field costs its own weight (objects 1, scalars and enums
0, unless ``@cost`` says otherwise) once, plus its children times its list
size; a connection counts once and its ``edges`` children ``first`` times.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import strawberry
from graphql import GraphQLError, parse
from pydantic import ValidationError

from schema import graph as demo_graph
from switchyard.cost import (
    CostAnalysis,
    CostLimitExceeded,
    CostMeasurement,
    CostModel,
    CostSettings,
    SlicingArgumentError,
    WorkMeter,
    actual_cost,
    as_json,
    build_cost_schema,
    cost,
    estimate_cost,
    explain,
    list_size,
    measurement_of,
    work_of,
)

DEMO = demo_graph.schema
DEMO_SCHEMA = DEMO._schema
DEMO_MODEL = CostModel.from_strawberry(DEMO)

TEST_SDL = """
directive @expensive(level: Int @cost(weight: "4")) on FIELD

type Query {
  users(max: Int): [User] @listSize(slicingArguments: ["max"])
  search(term: String! @cost(weight: "3"), filter: SearchFilter): [SearchResult!]!
    @listSize(assumedSize: 5)
  node(id: ID!): Node
  pets(first: Int, last: Int): PetConnection
    @listSize(slicingArguments: ["first", "last"], sizedFields: ["edges"])
  friendsOf(first: Int): [User]
    @listSize(slicingArguments: ["first"], requireOneSlicingArgument: false, assumedSize: 7)
  report: Report
  cheap: User @cost(weight: "-3")
  half: Int @cost(weight: "0.5")
}

type User { age: Int @cost(weight: "2") name: String best: User friends: [User] }
interface Node { id: ID! }
type Dog implements Node {
  id: ID! name: String owner: User barks: [Bark] @listSize(assumedSize: 4)
}
type Cat implements Node { id: ID! lives: Int }
type Bark { volume: Int }
union SearchResult = Dog | Cat | User
type Report @cost(weight: "7") { total: Int }
input SearchFilter { species: String @cost(weight: "2") minAge: Int }
type PetConnection { edges: [PetEdge] }
type PetEdge { node: Dog }

type Mutation @cost(weight: "10") {
  adopt(dogId: ID!): Dog @cost(weight: "5")
  rename(name: String): String
}
"""
TEST_SCHEMA = build_cost_schema(TEST_SDL)
TEST_MODEL = CostModel.from_schema(TEST_SCHEMA)


def demo_cost(query: str, variables: dict[str, Any] | None = None) -> int:
    return estimate_cost(DEMO_MODEL, DEMO_SCHEMA, parse(query), variables).cost


def sample_cost(query: str, variables: dict[str, Any] | None = None) -> int:
    return estimate_cost(TEST_MODEL, TEST_SCHEMA, parse(query), variables).cost


# The demo graph. Connections: users/orders/products first=20, User.orders
# first=10, Product.reviews first=5; Order.items 4; Stock.warehouses 3;
# Product.averageRating weighs 1.
DEMO_OPERATIONS: list[tuple[str, str, dict[str, Any] | None, int]] = [
    # user 1, scalars 0
    ("one object", '{ user(id: "1") { name email tier } }', None, 1),
    # users 1; edges not selected, so first multiplies nothing
    ("connection only", "{ users { totalCount } }", None, 1),
    # users 1 + edges 1 + first's default 20 x node 1
    ("default of first", "{ users { edges { node { id } } } }", None, 22),
    # users 1 + (edges 1 + 5 x (cursor 0 + node 1)) + pageInfo 1
    (
        "connection parts",
        "{ users(first: 5) { edges { cursor node { name } } pageInfo { hasNextPage } } }",
        None,
        8,
    ),
    # first: $n = 3 -> 1 + 1 + 3 x 1
    (
        "first from a variable",
        "query ($n: Int) { users(first: $n) { edges { node { id } } } }",
        {"n": 3},
        5,
    ),
    # $n not given: the argument is absent, the schema default 20 applies -> 1 + 1 + 20
    (
        "variable not given",
        "query ($n: Int) { users(first: $n) { edges { node { id } } } }",
        {},
        22,
    ),
    # $n defaults to 7 -> 1 + 1 + 7
    (
        "variable default",
        "query ($n: Int = 7) { users(first: $n) { edges { node { id } } } }",
        None,
        9,
    ),
    # first 0 -> 1 + 1 + 0 x 1
    ("first 0", "{ users(first: 0) { edges { node { id } } } }", None, 2),
    # User.orders (first 10): 1 + 1 + 10 x (node 1 + total 1) = 22; user node 1 + 22 = 23
    # users: 1 + (edges 1 + 10 x 23) = 232
    (
        "nested connections",
        "{ users(first: 10) { edges { node { "
        "orders { edges { node { id total { amount } } } } } } } }",
        None,
        232,
    ),
    # warehouses 1 + 3 x 0 = 1; stock 1 + 1 = 2; product 1 + 2 = 3;
    # items 1 + 4 x 3 = 13; order 1 + 13 = 14
    (
        "assumed sizes",
        '{ order(id: "1") { items { quantity product { name stock { warehouses { name } } } } } }',
        None,
        14,
    ),
    # reviews(first 3): 1 + 1 + 3 x (node 1 + author 1) = 8
    # product node: 1 + averageRating 1 + 8 = 10; products: 1 + (1 + 2 x 10) = 22
    (
        "weighted scalar",
        "{ products(first: 2) { edges { node { averageRating "
        "reviews(first: 3) { edges { node { rating author { name } } } } } } } }",
        None,
        22,
    ),
    # customer 1 per order: 1 + 1 + 100 x (node 1 + customer 1)
    (
        "largest first",
        "{ orders(first: 100, status: PAID) { edges { node { customer { name } } } } }",
        None,
        202,
    ),
    # two aliases, two fields: 1 + 1
    ("aliases", '{ a: user(id: "1") { name } b: user(id: "2") { name } }', None, 2),
    # (1 + 1 + 1 x 1) + (1 + 1 + 50 x 1)
    (
        "aliased connections",
        "{ small: users(first: 1) { edges { node { id } } } "
        "big: users(first: 50) { edges { node { id } } } }",
        None,
        55,
    ),
    # one response key, merged as execution merges it: 1
    ("merged", '{ user(id: "1") { name } user(id: "1") { tier } }', None, 1),
    # node: 1 + orders 1 (totalCount only) = 2; users: 1 + (1 + 2 x 2) = 6
    (
        "named fragments",
        "{ users(first: 2) { ...Page } } "
        "fragment Page on UserConnection { edges { node { ...U } } } "
        "fragment U on User { name orders(first: 1) { totalCount } }",
        None,
        6,
    ),
    # product 1 + stock 1
    (
        "inline fragment",
        '{ product(id: "1") { ... on Product { stock { available } } } }',
        None,
        2,
    ),
    # included: product 1 + reviews (1 + 1 + 5 x 1) = 8
    (
        "include with a variable",
        'query ($full: Boolean!) { product(id: "1") { name '
        "reviews @include(if: $full) { edges { node { body } } } "
        "stock @skip(if: $full) { available } } }",
        {"full": True},
        8,
    ),
    # skipped reviews, kept stock: product 1 + stock 1
    (
        "skip with a variable",
        'query ($full: Boolean!) { product(id: "1") { name '
        "reviews @include(if: $full) { edges { node { body } } } "
        "stock @skip(if: $full) { available } } }",
        {"full": False},
        2,
    ),
    # introspection is free: users 1 only
    ("introspection", "{ __typename users(first: 1) { __typename } }", None, 1),
]


@pytest.mark.parametrize(
    ("query", "variables", "expected"),
    [case[1:] for case in DEMO_OPERATIONS],
    ids=[case[0] for case in DEMO_OPERATIONS],
)
def test_demo_estimates(query: str, variables: dict[str, Any] | None, expected: int) -> None:
    assert demo_cost(query, variables) == expected


TEST_OPERATIONS: list[tuple[str, str, dict[str, Any] | None, int]] = [
    # the specification's example: users 1 + 5 x age 2
    ("specification example", "{ users(max: 5) { age } }", None, 11),
    # search: 1 + term's @cost 3 = 4, 5 assumed;
    # Dog: name 0 + owner (1 + age 2) + barks (1 + 4 x 0) = 4; Cat: 0; User: age 2
    # the most expensive member, Dog: 4 + 5 x 4
    (
        "union: most expensive member",
        '{ search(term: "x") { ... on Dog { name owner { age } barks { volume } } '
        "... on Cat { lives } ... on User { age name } } }",
        None,
        24,
    ),
    # node 1 + max(Dog: id 0 + owner 1, Cat: id 0 + lives 0)
    (
        "interface: fragments per member",
        '{ node(id: "1") { ...Id ... on Dog { owner { name } } ... on Cat { lives } } } '
        "fragment Id on Node { id }",
        None,
        2,
    ),
    # search 1 + term 3 + filter.species 2 (minAge has no weight) = 6; Cat's lives 0
    (
        "argument and input field weights",
        '{ search(term: "x", filter: { species: "dog", minAge: 2 }) { ... on Cat { lives } } }',
        None,
        6,
    ),
    # Report's type weight 7 is the field's weight
    ("type weight", "{ report { total } }", None, 7),
    # Mutation's own 10 + adopt 5 + (name 0 + owner (1 + age 2)) + rename 0
    (
        "mutation weights",
        'mutation { adopt(dogId: "1") { name owner { age } } rename(name: "x") }',
        None,
        18,
    ),
    # pets 1 + edges (1 + 3 x node 1)
    ("one of two slicing arguments", "{ pets(last: 3) { edges { node { name } } } }", None, 5),
    # requireOneSlicingArgument false, none given: assumedSize 7 -> 1 + 7 x best 1
    ("assumed size fallback", "{ friendsOf { best { name } } }", None, 8),
    # 1 + 2 x best 1
    ("optional slicing argument given", "{ friendsOf(first: 2) { best { name } } }", None, 3),
    # friends has no @listSize: the default 10 -> users 1 + 1 x (friends 1 + 10 x age 2)
    ("default list size", "{ users(max: 1) { friends { age } } }", None, 22),
    # max(0, -3) + age 2
    ("negative weight", "{ cheap { age } }", None, 2),
    # 3 x 0.5 = 1.5, rounded up to whole points
    ("fractional weights", "{ a: half b: half c: half }", None, 2),
    # users 1 + @expensive(level:) 4 + 1 x age 2
    ("directive argument weight", "{ users(max: 1) @expensive(level: 1) { age } }", None, 7),
]


@pytest.mark.parametrize(
    ("query", "variables", "expected"),
    [case[1:] for case in TEST_OPERATIONS],
    ids=[case[0] for case in TEST_OPERATIONS],
)
def test_test_schema_estimates(query: str, variables: dict[str, Any] | None, expected: int) -> None:
    assert sample_cost(query, variables) == expected


def test_the_sdl_shows_the_cost_directives() -> None:
    sdl = DEMO.as_str()
    assert (
        "directive @cost(weight: String!) on ARGUMENT_DEFINITION | ENUM | FIELD_DEFINITION"
        " | INPUT_FIELD_DEFINITION | OBJECT | SCALAR"
    ) in sdl
    assert (
        "directive @listSize(assumedSize: Int, slicingArguments: [String!], "
        "sizedFields: [String!], requireOneSlicingArgument: Boolean = true) on FIELD_DEFINITION"
    ) in sdl
    assert (
        "users(first: Int = 20, after: String): UserConnection "
        '@listSize(slicingArguments: ["first"], sizedFields: ["edges"])'
    ) in sdl
    # A per-parent connection: a page after a cursor is a call of its own for each parent.
    assert (
        'orders(first: Int = 10, after: String @cost(weight: "1")): OrderConnection '
        '@listSize(slicingArguments: ["first"], sizedFields: ["edges"]) '
        "@cacheControl(scope: PRIVATE) @ownerOrAdmin" in sdl
    )
    assert (
        'reviews(first: Int = 5, after: String @cost(weight: "1")): ReviewConnection '
        '@listSize(slicingArguments: ["first"], sizedFields: ["edges"])' in sdl
    )
    assert "items: [OrderItem!]! @listSize(assumedSize: 4)" in sdl
    assert "warehouses: [WarehouseStock!]! @listSize(assumedSize: 3)" in sdl
    assert 'averageRating: Float @cost(weight: "1")' in sdl


def test_first_null_has_no_slicing_argument() -> None:
    with pytest.raises(SlicingArgumentError) as caught:
        demo_cost("{ users(first: null) { edges { node { id } } } }")
    assert caught.value.message == (
        'Field "Query.users" needs exactly one of the slicing arguments first; none was given.'
    )
    assert caught.value.code == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    ("query", "count"),
    [
        ("{ pets { edges { node { name } } } }", "none was given"),
        ("{ pets(first: 2, last: 3) { edges { node { name } } } }", "2 were given"),
    ],
)
def test_require_one_slicing_argument(query: str, count: str) -> None:
    with pytest.raises(SlicingArgumentError) as caught:
        sample_cost(query)
    assert str(caught.value) == (
        f'Field "Query.pets" needs exactly one of the slicing arguments first, last; {count}.'
    )


def test_lenient_estimate_sizes_by_the_largest_given() -> None:
    query = parse("{ pets(first: 2, last: 3) { edges { node { name } } } }")
    # pets 1 + edges (1 + 3 x 1)
    assert estimate_cost(TEST_MODEL, TEST_SCHEMA, query, strict=False).cost == 5


def test_fragment_cycles_end() -> None:
    # Validation rejects these; the walk must still end. A is not expanded
    # again inside itself: user 1 + orders 1 + edges (1 + 2 x (node 1 + customer 1))
    nested = (
        '{ user(id: "1") { ...A } } '
        "fragment A on User { orders(first: 2) { edges { node { customer { ...A } } } } }"
    )
    assert demo_cost(nested) == 7
    # spreads only: user 1
    direct = (
        '{ user(id: "1") { ...A } } '
        "fragment A on User { name ...B } fragment B on User { tier ...A }"
    )
    assert demo_cost(direct) == 1


def test_operation_name_picks_the_operation() -> None:
    document = parse(
        'query Small { user(id: "1") { name } } query Big { users { edges { node { id } } } }'
    )
    assert estimate_cost(DEMO_MODEL, DEMO_SCHEMA, document, None, "Big").cost == 22
    assert estimate_cost(DEMO_MODEL, DEMO_SCHEMA, document, None, "Small").cost == 1


# Actual costs, from the data a response carries.


def test_specification_example_actual_cost() -> None:
    query = parse("{ users(max: 5) { age } }")
    data = {"users": [{"age": 30}, {"age": 41}, {"age": 27}]}
    assert estimate_cost(TEST_MODEL, TEST_SCHEMA, query).cost == 11
    # users 1 + 3 x age 2
    assert actual_cost(TEST_MODEL, TEST_SCHEMA, query, None, None, data) == 7


def test_actual_cost_with_nulls_and_empty_lists() -> None:
    query = parse(
        '{ a: user(id: "1") { orders { edges { node { id } } } } b: user(id: "404") { name } '
        "users(first: 5) { edges { node { id } } } }"
    )
    data: dict[str, Any] = {
        "a": {"orders": {"edges": [{"node": {"id": "7"}}]}},
        "b": None,
        "users": {"edges": []},
    }
    # estimate: a 1 + (1 + 1 + 10 x 1) = 13; b 1; users 1 + 1 + 5 x 1 = 7
    assert estimate_cost(DEMO_MODEL, DEMO_SCHEMA, query).cost == 21
    # actual: a 1 + orders 1 + edges 1 + 1 node = 4; b null still costs its own 1;
    # users 1 + edges 1 + no items = 2
    assert actual_cost(DEMO_MODEL, DEMO_SCHEMA, query, None, None, data) == 7
    # no data at all: nothing ran to completion, nothing is charged
    assert actual_cost(DEMO_MODEL, DEMO_SCHEMA, query, None, None, None) == 0


def test_actual_cost_of_union_members_by_typename() -> None:
    query = parse(
        '{ search(term: "x") { __typename ... on Dog { owner { age } } ... on User { age } } }'
    )
    data = {
        "search": [
            {"__typename": "Dog", "owner": None},
            {"__typename": "User", "age": 3},
            {"__typename": "Cat"},
        ]
    }
    # search 1 + term 3 = 4; Dog: owner null 1; User: age 2; Cat: 0
    assert actual_cost(TEST_MODEL, TEST_SCHEMA, query, None, None, data) == 7


# Explaining an estimate.


def test_explain() -> None:
    query = parse(
        "query Page { users(first: 5) { edges { cursor node { name } } pageInfo { hasNextPage } } }"
    )
    report = estimate_cost(DEMO_MODEL, DEMO_SCHEMA, query)
    assert explain(report) == (
        "query Page cost 8\n"
        "  users  Query.users: UserConnection  8 = 1 + 7\n"
        "    edges  UserConnection.edges: [UserEdge!]!  6 = 1 + 5 x 1\n"
        "      cursor  UserEdge.cursor: String!  0\n"
        "      node  UserEdge.node: User!  1 = 1 + 0\n"
        "        name  User.name: String!  0\n"
        "    pageInfo  UserConnection.pageInfo: PageInfo!  1 = 1 + 0\n"
        "      hasNextPage  PageInfo.hasNextPage: Boolean!  0"
    )


def test_explain_shows_the_root_weight() -> None:
    report = estimate_cost(TEST_MODEL, TEST_SCHEMA, parse('mutation { rename(name: "x") }'))
    assert explain(report) == (
        "mutation cost 10\n  (10 for the mutation itself)\n  rename  Mutation.rename: String  0"
    )


def test_as_json() -> None:
    report = estimate_cost(DEMO_MODEL, DEMO_SCHEMA, parse('{ me: user(id: "1") { name } }'))
    assert as_json(report) == {
        "operation": "query",
        "operationName": None,
        "cost": 1,
        "rootWeight": 0,
        "fields": [
            {
                "path": "me",
                "field": "Query.user",
                "type": "User",
                "weight": 1,
                "multiplier": 1,
                "cost": 1,
                "children": [
                    {
                        "path": "me.name",
                        "field": "User.name",
                        "type": "String!",
                        "weight": 0,
                        "multiplier": 1,
                        "cost": 0,
                        "children": [],
                    }
                ],
            }
        ],
    }


def test_cost_limit_exceeded_message() -> None:
    error = CostLimitExceeded(1230, 1000)
    assert str(error) == "Query cost 1230 exceeds the maximum of 1000."
    assert error.as_graphql_error().extensions == {
        "code": "COST_LIMIT_EXCEEDED",
        "estimatedCost": 1230,
        "maximumCost": 1000,
    }


def test_settings_reject_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        CostSettings(maxCost=10)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        CostSettings(mode="strict")
    assert CostSettings() == CostSettings(mode="measure", max_cost=1000, default_list_size=10)


# The extension, through schema.execute.


@strawberry.type
class Detail:
    note: str


@strawberry.type
class Item:
    id: int

    @strawberry.field
    def detail(self, info: strawberry.Info) -> Detail:
        info.context["calls"] += 1
        return Detail(note=f"item {self.id}")


@strawberry.type
class ItemQuery:
    @strawberry.field(directives=[list_size(slicing_arguments=["first"])])  # type: ignore[untyped-decorator]
    def items(self, info: strawberry.Info, first: int | None = 10) -> list[Item]:
        info.context["calls"] += 1
        return [Item(id=n) for n in range(min(first or 0, 3))]


# items 1 + 50 x detail 1; three items come back: 1 + 3 x 1
EXPENSIVE = "{ items(first: 50) { detail { note } } }"


def item_schema(settings: CostSettings, **hooks: Any) -> strawberry.Schema:
    return strawberry.Schema(query=ItemQuery, extensions=[lambda: CostAnalysis(settings, **hooks)])


async def test_enforce_rejects_before_any_resolver() -> None:
    schema = item_schema(CostSettings(mode="enforce", max_cost=20))
    context: dict[str, Any] = {"calls": 0}
    result = await schema.execute(EXPENSIVE, context_value=context)
    assert result.data is None
    assert result.errors is not None and len(result.errors) == 1
    assert result.errors[0].message == "Query cost 51 exceeds the maximum of 20."
    assert result.errors[0].extensions == {
        "code": "COST_LIMIT_EXCEEDED",
        "estimatedCost": 51,
        "maximumCost": 20,
    }
    assert context["calls"] == 0
    measurement = measurement_of(context)
    assert measurement is not None and measurement.requested == 51
    assert measurement.actual is None


async def test_measure_reports_and_runs() -> None:
    schema = item_schema(CostSettings(mode="measure", max_cost=20))
    context: dict[str, Any] = {"calls": 0}
    result = await schema.execute(EXPENSIVE, context_value=context)
    assert result.errors is None
    assert result.data == {"items": [{"detail": {"note": f"item {n}"}} for n in range(3)]}
    assert context["calls"] == 4
    measurement = measurement_of(context)
    assert measurement is not None
    assert (measurement.requested, measurement.actual, measurement.exceeds_maximum) == (51, 4, True)


async def test_hooks_see_estimate_and_actual() -> None:
    seen: list[tuple[str, int | None]] = []

    async def on_estimate(context: Any, estimate: Any) -> None:
        seen.append(("estimate", estimate.cost))

    async def on_actual(context: Any, measurement: Any) -> None:
        seen.append(("actual", measurement.actual))

    schema = item_schema(
        CostSettings(mode="enforce", max_cost=100), on_estimate=on_estimate, on_actual=on_actual
    )
    result = await schema.execute(EXPENSIVE, context_value={"calls": 0})
    assert result.errors is None
    assert seen == [("estimate", 51), ("actual", 4)]


async def test_on_estimate_rejection_is_a_graphql_error() -> None:
    async def out_of_budget(context: Any, estimate: Any) -> None:
        raise GraphQLError(
            "Too many points.", extensions={"code": "RATE_LIMITED", "cost": estimate.cost}
        )

    async def broken(context: Any, estimate: Any) -> None:
        raise RuntimeError("store down")

    settings = CostSettings(mode="enforce")
    context: dict[str, Any] = {"calls": 0}
    result = await item_schema(settings, on_estimate=out_of_budget).execute(
        EXPENSIVE, context_value=context
    )
    assert result.data is None and result.errors is not None
    assert (result.errors[0].message, result.errors[0].extensions) == (
        "Too many points.",
        {"code": "RATE_LIMITED", "cost": 51},
    )
    result = await item_schema(settings, on_estimate=broken).execute(
        EXPENSIVE, context_value=context
    )
    assert result.data is None and result.errors is not None
    assert isinstance(result.errors[0].original_error, RuntimeError)
    assert context["calls"] == 0


async def test_slicing_argument_errors_by_mode() -> None:
    query = "{ items(first: null) { detail { note } } }"
    context: dict[str, Any] = {"calls": 0}
    enforced = await item_schema(CostSettings(mode="enforce")).execute(query, context_value=context)
    assert enforced.errors is not None
    assert enforced.errors[0].message == (
        'Field "ItemQuery.items" needs exactly one of the slicing arguments first; none was given.'
    )
    assert enforced.errors[0].extensions == {"code": "BAD_USER_INPUT"}
    assert context["calls"] == 0
    # measure never rejects: no slicing argument, no assumedSize, the default 10 -> 1 + 10 x 1
    measured = await item_schema(CostSettings(mode="measure")).execute(query, context_value=context)
    assert measured.errors is None and measured.data == {"items": []}
    measurement = measurement_of(context)
    assert measurement is not None and measurement.requested == 11


async def test_off_does_nothing() -> None:
    context: dict[str, Any] = {"calls": 0}
    result = await item_schema(CostSettings(mode="off", max_cost=1)).execute(
        EXPENSIVE, context_value=context
    )
    assert result.errors is None
    assert measurement_of(context) is None


def test_the_estimate_cache_reuses_a_report_for_the_same_document_and_variables() -> None:
    from switchyard.cost import EstimateCache

    strawberry_schema = demo_graph.schema
    model = CostModel.from_strawberry(strawberry_schema)
    document = parse("query($n: Int) { users(first: $n) { edges { node { id } } } }")
    cache = EstimateCache(max_bytes=1_000_000)
    first = cache.estimate(model, strawberry_schema._schema, document, {"n": 5}, None, strict=True)
    again = cache.estimate(model, strawberry_schema._schema, document, {"n": 5}, None, strict=True)
    other = cache.estimate(model, strawberry_schema._schema, document, {"n": 9}, None, strict=True)
    assert again is first
    assert (first.cost, other.cost) == (7, 11)  # 1 + 1 + n x 1
    # A document that is gone is never mistaken for one that takes its id.
    del document
    stranger = parse(
        "query($n: Int) { products(first: $n) { edges { node { stock { available } } } } }"
    )
    report = cache.estimate(model, strawberry_schema._schema, stranger, {"n": 5}, None, strict=True)
    assert report.cost == 12  # 1 + 1 + 5 x (node 1 + stock 1)


def test_the_estimate_cache_measures_actual_cost_like_the_plain_function() -> None:
    from switchyard.cost import EstimateCache, actual_cost

    strawberry_schema = demo_graph.schema
    schema = strawberry_schema._schema
    model = CostModel.from_strawberry(strawberry_schema)
    document = parse("{ users(first: 5) { edges { node { id } } } }")
    cache = EstimateCache()
    for returned in (3, 0, 5):
        data = {"users": {"edges": [{"node": {"id": str(i)}} for i in range(returned)]}}
        expected = actual_cost(model, schema, document, None, None, data)
        assert (
            cache.actual_cost(model, schema, document, None, None, data) == expected == 2 + returned
        )


# What cannot be batched: a per-parent connection's page after a cursor is a call per parent.

PER_PARENT = (
    "query($c: String) { products(first: 100) { edges { node {"
    " reviews(first: 1, after: $c) { totalCount } } } } }"
)


def test_after_on_a_per_parent_connection_costs_one_call_per_parent() -> None:
    # products 1 + edges (1 + 100 x (node 1 + reviews (1 + after 1)))
    assert demo_cost(PER_PARENT, {"c": "b2Zmc2V0OjM="}) == 302
    # Without a cursor the 100 pages share one call: 1 + (1 + 100 x (1 + 1))
    assert demo_cost(PER_PARENT, {}) == 202
    assert demo_cost(PER_PARENT, {"c": None}) == 202
    # Nested deeper the rule is the same: one point per parent, users x their orders' pages.
    # users 1 + edges (1 + 10 x (node 1 + orders (1 + after 1)))
    nested = (
        'query { users(first: 10) { edges { node { orders(first: 2, after: "x") '
        "{ totalCount } } } } }"
    )
    assert demo_cost(nested) == 32


def test_after_on_a_root_connection_is_one_call_and_costs_nothing_more() -> None:
    # users 1 + edges (1 + 5 x node 1), with or without a cursor: a root page is one call.
    assert demo_cost('{ users(first: 5, after: "x") { edges { node { id } } } }') == 7
    assert demo_cost("{ users(first: 5) { edges { node { id } } } }") == 7


# The actual cost is never less than the work done.


@strawberry.type
class Part:
    @strawberry.field(directives=[cost(1)])  # type: ignore[untyped-decorator]
    def label(self, info: strawberry.Info) -> str:
        # A non-null field that fails after its parent's calls were made: the null
        # propagates to the root and the response shows nothing of what was fetched.
        raise ValueError("broken")


@strawberry.type
class PartQuery:
    @strawberry.field(directives=[list_size(slicing_arguments=["first"])])  # type: ignore[untyped-decorator]
    def parts(self, info: strawberry.Info, first: int = 10) -> list[Part]:
        work = info.context["work"]
        for _ in range(first):  # one upstream call per part, each answering one item
            work.call_finished("parts", "GET /parts", 0.0, None)
        work.received(first)
        return [Part() for _ in range(first)]

    @strawberry.field
    def tag(self) -> str:
        return "t"


def part_schema(settings: CostSettings, **hooks: Any) -> strawberry.Schema:
    return strawberry.Schema(query=PartQuery, extensions=[lambda: CostAnalysis(settings, **hooks)])


async def test_the_actual_cost_is_the_work_done_when_the_data_is_lost() -> None:
    refunds: list[int] = []

    async def refund(context: Any, measurement: CostMeasurement) -> None:
        refunds.append(measurement.unused)

    schema = part_schema(CostSettings(mode="enforce"), on_actual=refund)
    context: dict[str, Any] = {"work": WorkMeter()}
    # parts (a non-null list of non-null Part) fails: data is null. Estimated parts 1 +
    # 8 x label 1 = 9.
    result = await schema.execute("{ parts(first: 8) { label } }", context_value=context)
    assert result.data is None
    measurement = measurement_of(context)
    assert measurement is not None
    assert (measurement.requested, measurement.measured) == (9, 0)
    # 8 calls, 8 items: 16 points of work, more than the estimate: nothing comes back.
    assert (measurement.work, measurement.actual, measurement.unused) == (16, 16, 0)
    assert refunds == [0]


async def test_a_refund_never_gives_back_work_done() -> None:
    schema = part_schema(CostSettings(mode="enforce"))
    context: dict[str, Any] = {"work": WorkMeter()}
    # Estimated parts 1 + 2 x label 1 = 3; done: 2 calls and 2 items; answered: nothing.
    result = await schema.execute("{ tag parts(first: 2) { label } }", context_value=context)
    assert result.data is None
    measurement = measurement_of(context)
    assert measurement is not None
    assert (measurement.requested, measurement.measured, measurement.work) == (3, 0, 4)
    assert measurement.unused == 0


def test_the_work_meter_counts_calls_and_items_and_passes_calls_on() -> None:
    seen: list[str] = []

    class Record:
        def call_finished(
            self, upstream: str, operation: str, seconds: float, error: BaseException | None
        ) -> None:
            seen.append(f"{upstream} {operation} {'failed' if error else 'ok'}")

    work = WorkMeter(then=Record())
    work.call_finished("reviews", "GET /reviews", 0.01, None)
    work.call_finished("reviews", "GET /reviews", 0.01, RuntimeError("400"))
    work.received(3)
    work.received(0)
    assert (work.calls, work.items, work.points) == (2, 3, 5)
    assert seen == ["reviews GET /reviews ok", "reviews GET /reviews failed"]
    assert work_of({"work": work}) is work
    assert work_of(object()) is None


# measure: the same decisions as enforce, reported instead of applied.


async def test_measure_reports_what_enforce_would_have_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    schema = item_schema(CostSettings(mode="measure", max_cost=20))
    context: dict[str, Any] = {"calls": 0, "request_id": "r-1"}
    with caplog.at_level(logging.INFO, logger="switchyard.cost"):
        result = await schema.execute(EXPENSIVE, context_value=context)
    assert result.errors is None and context["calls"] == 4
    measurement = measurement_of(context)
    assert measurement is not None and measurement.refusal is not None
    assert measurement.refusal.message == "Query cost 51 exceeds the maximum of 20."
    assert measurement.refusal.extensions == {
        "code": "COST_LIMIT_EXCEEDED",
        "estimatedCost": 51,
        "maximumCost": 20,
    }
    (record,) = caplog.records
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        "measure mode: enforce would have refused this operation (COST_LIMIT_EXCEEDED): "
        "Query cost 51 exceeds the maximum of 20."
    )
    assert record.request_id == "r-1"  # type: ignore[attr-defined]


async def test_measure_runs_what_a_hook_refuses_and_reports_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def out_of_budget(context: Any, estimate: Any) -> None:
        raise GraphQLError("Too many points.", extensions={"code": "RATE_LIMITED"})

    schema = item_schema(CostSettings(mode="measure"), on_estimate=out_of_budget)
    context: dict[str, Any] = {"calls": 0}
    with caplog.at_level(logging.INFO, logger="switchyard.cost"):
        result = await schema.execute(EXPENSIVE, context_value=context)
    assert result.errors is None and context["calls"] == 4
    measurement = measurement_of(context)
    assert measurement is not None and measurement.refusal is not None
    assert measurement.refusal.extensions == {"code": "RATE_LIMITED"}
    assert measurement.actual == 4
    assert [r.getMessage() for r in caplog.records] == [
        "measure mode: enforce would have refused this operation (RATE_LIMITED): Too many points."
    ]


async def test_measure_reports_a_missing_slicing_argument() -> None:
    context: dict[str, Any] = {"calls": 0}
    query = "{ items(first: null) { detail { note } } }"
    result = await item_schema(CostSettings(mode="measure")).execute(query, context_value=context)
    assert result.errors is None
    measurement = measurement_of(context)
    assert measurement is not None and measurement.refusal is not None
    assert measurement.refusal.extensions == {"code": "BAD_USER_INPUT"}
    assert measurement.requested == 11  # sized leniently, as before


async def test_measure_runs_past_a_broken_hook_and_tells_the_client_nothing_of_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(context: Any, estimate: Any) -> None:
        raise RuntimeError("store at 10.0.0.7 down")

    context: dict[str, Any] = {"calls": 0}
    with caplog.at_level(logging.INFO, logger="switchyard.cost"):
        result = await item_schema(CostSettings(mode="measure"), on_estimate=broken).execute(
            EXPENSIVE, context_value=context
        )
    assert result.errors is None and context["calls"] == 4
    measurement = measurement_of(context)
    assert measurement is not None and measurement.refusal is None
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.ERROR, "on_estimate failed in measure mode")
    ]
