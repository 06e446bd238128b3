"""What an operation costs, per the GraphQL Cost Directives specification (IBM, GraphQL Foundation).

The estimate is static: it needs the schema's ``@cost``/``@listSize`` and the
operation, not the backends::

    model = CostModel.from_sdl(strawberry_schema.as_str())
    query = parse("{ users(first: 5) { edges { node { name } } } }")
    report = estimate_cost(model, graphql_schema, query)
    report.cost             # 1 (users) + 1 (edges) + 5 x 1 (node) = 7
    print(explain(report))  # the same, field by field

The rules, and the choices the specification leaves open:

- A field weighs its own ``@cost``, else its type's ``@cost``, else 1 for
  objects, interfaces and unions and 0 for scalars and enums; a field of an
  object type without its own weight inherits one set on an interface field.
  Arguments given in the operation (not null) add their ``@cost`` and that of
  their input fields given; arguments of directives used add theirs.
  ``cost(field) = max(0, weight + arguments + directives)``, counted once.
- A field's children are multiplied by its list size: the largest slicing
  argument (variables resolved); with none given explicitly, the schema
  defaults of the slicing arguments count as given (``users`` means
  ``users(first: 20)``); else ``assumedSize``; else ``default_list_size``.
  ``requireOneSlicingArgument`` (default true) rejects an operation with no
  slicing argument (none given and none defaulted, or given null) or several.
  With ``sizedFields`` the field itself counts once and the size multiplies
  the children of the fields named (``edges``, or a dotted path).
- Fields merge by response key as execution merges them: an alias is a field
  of its own, a field selected twice under one key counts once.
  ``@skip``/``@include`` are applied with the variables. Fragments are
  expanded once per path, so a cycle (which validation rejects anyway)
  cannot loop.
- On an interface or union the cost is that of its most expensive member.
- Introspection fields (``__typename``, ``__schema``, ``__type``) cost nothing:
  the depth and alias limits guard them, and IDEs must be able to introspect.
- An ``@cost`` on a root type (``type Mutation @cost(weight: "10")``) is
  charged once per operation of that type; otherwise roots weigh nothing.

The actual cost walks the response instead: a list counts its real items, a
null costs its field's own weight and nothing below it, and a field missing
from the response (never executed, or lost to a propagated null) costs
nothing. On an interface or union the member is the response's
``__typename`` if selected, else the most expensive member again.

``CostAnalysis`` is the Strawberry extension that estimates before any
resolver runs and measures after. Weights are strings in the specification
and may be fractional; sums are exact (``Decimal``) and ``cost`` rounds up to
whole points.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Literal

import orjson
from graphql import (
    DirectiveDefinitionNode,
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    NamedTypeNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Undefined,
    ValueNode,
    VariableNode,
    build_ast_schema,
    get_named_type,
    is_abstract_type,
    is_composite_type,
    is_input_type,
    is_list_type,
    parse,
    type_from_ast,
    value_from_ast,
    value_from_ast_untyped,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from pydantic import BaseModel, ConfigDict, Field
from strawberry.extensions import SchemaExtension

if TYPE_CHECKING:
    import strawberry

logger = logging.getLogger("switchyard.cost")

DEFAULT_MODE: Literal["measure"] = "measure"
DEFAULT_MAX_COST = 1000
"""Shopify's single-query cap."""
DEFAULT_LIST_SIZE = 10
"""Items assumed of a list with no ``@listSize`` and no parent sizing it."""
COMPOSITE_WEIGHT = Decimal(1)
LEAF_WEIGHT = Decimal(0)

COST_LIMIT_EXCEEDED = "COST_LIMIT_EXCEEDED"
BAD_USER_INPUT = "BAD_USER_INPUT"
COST_ATTRIBUTE = "cost"
"""Where ``CostAnalysis`` leaves its ``CostMeasurement`` on the request context."""
_MODEL_CACHE_KEY = "switchyard.cost.model"

_Group = list[tuple[FieldNode, frozenset[str]]]
"""The field nodes merged under one response key, each with the fragments expanded above it."""
_Sets = list[tuple[SelectionSetNode, frozenset[str]]]
_MISSING = object()


@dataclass(slots=True)
class _Step:
    """One response key of a selection, worked out once for all the items of a list."""

    key: str
    weight: Decimal
    below: GraphQLNamedType | None
    """The composite type under the field, if any."""
    subsets: _Sets
    plan: list[_Step] | None = None
    """The steps below, once needed (object types only)."""


# CostError
#  ├── SlicingArgumentError   BAD_USER_INPUT: requireOneSlicingArgument not met
#  └── CostLimitExceeded      COST_LIMIT_EXCEEDED: estimate above the maximum
class CostError(Exception):
    """An operation the cost analysis refuses; ``as_graphql_error()`` is what the client sees."""

    def __init__(
        self, message: str, *, code: str = BAD_USER_INPUT, nodes: Iterable[Any] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.nodes = list(nodes)

    def extensions(self) -> dict[str, object]:
        return {"code": self.code}

    def as_graphql_error(self) -> GraphQLError:
        return GraphQLError(self.message, nodes=self.nodes or None, extensions=self.extensions())


class SlicingArgumentError(CostError):
    """A ``requireOneSlicingArgument`` list field given none or several of its slicing arguments."""


class CostLimitExceeded(CostError):
    """The estimate is above the maximum.

    >>> str(CostLimitExceeded(1230, 1000))
    'Query cost 1230 exceeds the maximum of 1000.'
    """

    def __init__(self, estimated_cost: int, maximum_cost: int, *, nodes: Iterable[Any] = ()):
        super().__init__(
            f"Query cost {estimated_cost} exceeds the maximum of {maximum_cost}.",
            code=COST_LIMIT_EXCEEDED,
            nodes=nodes,
        )
        self.estimated_cost = estimated_cost
        self.maximum_cost = maximum_cost

    def extensions(self) -> dict[str, object]:
        return {
            "code": self.code,
            "estimatedCost": self.estimated_cost,
            "maximumCost": self.maximum_cost,
        }


COST_DIRECTIVES_SDL = """
directive @cost(weight: String!)
  on ARGUMENT_DEFINITION | ENUM | FIELD_DEFINITION | INPUT_FIELD_DEFINITION | OBJECT | SCALAR
directive @listSize(
  assumedSize: Int
  slicingArguments: [String!]
  sizedFields: [String!]
  requireOneSlicingArgument: Boolean = true
) on FIELD_DEFINITION
"""
"""The specification's definitions of the two directives."""


def build_cost_schema(sdl: str) -> GraphQLSchema:
    """``graphql.build_schema``, defining ``@cost`` and ``@listSize`` if ``sdl`` does not.

    >>> schema = build_cost_schema('type Query { a: [Int] @listSize(assumedSize: 3) }')
    >>> schema.get_directive("listSize").args["assumedSize"].type
    <GraphQLScalarType 'Int'>
    """
    document = parse(sdl)
    defined = {d.name.value for d in document.definitions if isinstance(d, DirectiveDefinitionNode)}
    if not {"cost", "listSize"} <= defined:
        missing = parse(COST_DIRECTIVES_SDL).definitions
        added = tuple(d for d in missing if d.name.value not in defined)  # type: ignore[attr-defined]
        document = DocumentNode(definitions=(*document.definitions, *added))
    return build_ast_schema(document)


@dataclass(frozen=True, slots=True)
class SizeRule:
    """A field's ``@listSize``."""

    assumed_size: int | None = None
    slicing_arguments: tuple[str, ...] = ()
    sized_fields: tuple[str, ...] = ()
    require_one_slicing_argument: bool = True


@dataclass(frozen=True, slots=True)
class CostModel:
    """The weights and list sizes a schema declares, keyed by schema coordinates.

    >>> model = CostModel.from_sdl('type Query { a: [Int] @listSize(assumedSize: 3) }')
    >>> model.list_sizes[("Query", "a")].assumed_size
    3
    """

    type_weights: Mapping[str, Decimal] = field(default_factory=dict)
    field_weights: Mapping[tuple[str, str], Decimal] = field(default_factory=dict)
    argument_weights: Mapping[tuple[str, str, str], Decimal] = field(default_factory=dict)
    """(type, field, argument); directive arguments are ("@name", "", argument)."""
    input_field_weights: Mapping[tuple[str, str], Decimal] = field(default_factory=dict)
    list_sizes: Mapping[tuple[str, str], SizeRule] = field(default_factory=dict)
    default_list_size: int = DEFAULT_LIST_SIZE

    @classmethod
    def from_sdl(cls, sdl: str, *, default_list_size: int = DEFAULT_LIST_SIZE) -> CostModel:
        """Read ``@cost`` and ``@listSize`` from SDL text such as ``strawberry_schema.as_str()``."""
        return cls.from_schema(build_cost_schema(sdl), default_list_size=default_list_size)

    @classmethod
    def from_strawberry(
        cls, schema: strawberry.Schema, *, default_list_size: int = DEFAULT_LIST_SIZE
    ) -> CostModel:
        """The model of a Strawberry schema, read from its printed SDL.

        Strawberry keeps directive instances on its own definitions, but the
        printed SDL is public, stable across versions and exactly what clients
        are shown, so that is what is read. Parsed once per schema and size.
        """
        cache: dict[Any, CostModel] = schema._schema.extensions.setdefault(_MODEL_CACHE_KEY, {})
        model = cache.get(default_list_size)
        if model is None:
            model = cache[default_list_size] = cls.from_sdl(
                schema.as_str(), default_list_size=default_list_size
            )
        return model

    @classmethod
    def from_schema(
        cls, schema: GraphQLSchema, *, default_list_size: int = DEFAULT_LIST_SIZE
    ) -> CostModel:
        """Read the directives from the AST nodes of a schema built from SDL."""
        type_weights: dict[str, Decimal] = {}
        field_weights: dict[tuple[str, str], Decimal] = {}
        argument_weights: dict[tuple[str, str, str], Decimal] = {}
        input_field_weights: dict[tuple[str, str], Decimal] = {}
        list_sizes: dict[tuple[str, str], SizeRule] = {}
        for name, type_ in schema.type_map.items():
            if name.startswith("__"):
                continue
            nodes = [type_.ast_node, *type_.extension_ast_nodes]
            if (weight := _weight_of(nodes, name)) is not None:
                type_weights[name] = weight
            if isinstance(type_, GraphQLInputObjectType):
                for field_name, input_field in type_.fields.items():
                    coordinate = f"{name}.{field_name}"
                    if (weight := _weight_of([input_field.ast_node], coordinate)) is not None:
                        input_field_weights[name, field_name] = weight
                continue
            for field_name, field_def in getattr(type_, "fields", {}).items():
                coordinate = f"{name}.{field_name}"
                if (weight := _weight_of([field_def.ast_node], coordinate)) is not None:
                    field_weights[name, field_name] = weight
                if (rule := _size_rule_of(field_def.ast_node)) is not None:
                    list_sizes[name, field_name] = rule
                for arg_name, arg in field_def.args.items():
                    arg_coordinate = f"{coordinate}({arg_name}:)"
                    if (weight := _weight_of([arg.ast_node], arg_coordinate)) is not None:
                        argument_weights[name, field_name, arg_name] = weight
        for directive in schema.directives:
            for arg_name, arg in directive.args.items():
                arg_coordinate = f"@{directive.name}({arg_name}:)"
                if (weight := _weight_of([arg.ast_node], arg_coordinate)) is not None:
                    argument_weights[f"@{directive.name}", "", arg_name] = weight
        return cls(
            type_weights,
            field_weights,
            argument_weights,
            input_field_weights,
            list_sizes,
            default_list_size,
        )


def _directive(node: Any, name: str) -> DirectiveNode | None:
    for directive in getattr(node, "directives", None) or ():
        if directive.name.value == name:
            return directive  # type: ignore[no-any-return]
    return None


def _weight_of(nodes: Iterable[Any], coordinate: str) -> Decimal | None:
    for node in nodes:
        directive = _directive(node, "cost")
        if directive is None:
            continue
        arguments = {
            a.name.value: value_from_ast_untyped(a.value) for a in directive.arguments or ()
        }
        weight = arguments.get("weight")
        try:
            return Decimal(str(weight))
        except InvalidOperation:
            raise ValueError(
                f'@cost(weight: "{weight}") on {coordinate} is not a number.'
            ) from None
    return None


def _size_rule_of(node: Any) -> SizeRule | None:
    directive = _directive(node, "listSize")
    if directive is None:
        return None
    arguments = {a.name.value: value_from_ast_untyped(a.value) for a in directive.arguments or ()}
    require_one = arguments.get("requireOneSlicingArgument")
    return SizeRule(
        assumed_size=arguments.get("assumedSize"),
        slicing_arguments=tuple(arguments.get("slicingArguments") or ()),
        sized_fields=tuple(arguments.get("sizedFields") or ()),
        require_one_slicing_argument=require_one is not False,
    )


@dataclass(frozen=True, slots=True)
class FieldCost:
    """One field of the estimate: ``cost = weight + multiplier x sum(children costs)``."""

    path: str
    """Response keys from the root: ``users.edges.node``."""
    coordinate: str
    """Where the field is defined: ``UserEdge.node``."""
    type: str
    weight: Decimal
    """The field's own cost: its weight plus argument and directive costs, at least 0."""
    multiplier: int
    """How many times the children count (the list size, or 1)."""
    cost: Decimal
    children: tuple[FieldCost, ...] = ()


@dataclass(frozen=True, slots=True)
class CostReport:
    """The estimate of one operation, field by field."""

    operation: str
    """``query``, ``mutation`` or ``subscription``."""
    operation_name: str | None
    root_weight: Decimal
    fields: tuple[FieldCost, ...]
    total: Decimal

    @property
    def cost(self) -> int:
        """Whole points, rounded up."""
        return math.ceil(self.total)


def estimate_cost(
    model: CostModel,
    schema: GraphQLSchema,
    document: DocumentNode | str,
    variables: Mapping[str, Any] | None = None,
    operation_name: str | None = None,
    *,
    strict: bool = True,
) -> CostReport:
    """The static cost of an operation of a validated document.

    ``strict=False`` sizes lists breaking ``requireOneSlicingArgument`` by what
    is given (else ``assumedSize``) instead of raising ``SlicingArgumentError``.

    >>> sdl = 'type Query { users(max: Int): [User] @listSize(slicingArguments: ["max"]) }'
    >>> sdl += ' type User { age: Int @cost(weight: "2") }'
    >>> schema = build_cost_schema(sdl)
    >>> estimate_cost(CostModel.from_schema(schema), schema, "{ users(max: 5) { age } }").cost
    11
    """
    walk = _Walk(model, schema, document, variables, operation_name, strict=strict)
    root = walk.root
    root_weight = model.type_weights.get(root.name, LEAF_WEIGHT)
    children_total, fields = walk.estimate(
        root, [(walk.operation.selection_set, frozenset())], "", {}
    )
    return CostReport(
        operation=walk.operation.operation.value,
        operation_name=walk.operation.name.value if walk.operation.name else None,
        root_weight=root_weight,
        fields=fields,
        total=root_weight + children_total,
    )


def actual_cost(
    model: CostModel,
    schema: GraphQLSchema,
    document: DocumentNode | str,
    variables: Mapping[str, Any] | None,
    operation_name: str | None,
    data: Mapping[str, Any] | None,
) -> int:
    """What the operation cost, from the response ``data`` (keyed by response keys).

    >>> sdl = 'type Query { users(max: Int): [User] @listSize(slicingArguments: ["max"]) }'
    >>> sdl += ' type User { age: Int @cost(weight: "2") }'
    >>> schema = build_cost_schema(sdl)
    >>> data = {"users": [{"age": 30}, {"age": 41}, {"age": 27}]}
    >>> model = CostModel.from_schema(schema)
    >>> actual_cost(model, schema, "{ users(max: 5) { age } }", None, None, data)
    7
    """
    walk = _Walk(model, schema, document, variables, operation_name, strict=False)
    return _measure_data(model, walk, data)


def _measure_data(model: CostModel, walk: _Walk, data: Mapping[str, Any] | None) -> int:
    root = walk.root
    root_weight = model.type_weights.get(root.name, LEAF_WEIGHT)
    sets: _Sets = [(walk.operation.selection_set, frozenset())]
    return math.ceil(root_weight + walk.measure(root, sets, data or {}))


class _Walk:
    """One operation of one document, with its variables, walked against the schema."""

    def __init__(
        self,
        model: CostModel,
        schema: GraphQLSchema,
        document: DocumentNode | str,
        variables: Mapping[str, Any] | None,
        operation_name: str | None,
        *,
        strict: bool,
    ) -> None:
        if isinstance(document, str):
            document = parse(document)
        self.model = model
        self.schema = schema
        self.strict = strict
        self.operation = _operation(document, operation_name)
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.variables = self._variables(variables or {})
        self._plans: dict[tuple[str, tuple[tuple[int, frozenset[str]], ...]], list[_Step]] = {}
        root = schema.get_root_type(self.operation.operation)
        if root is None:
            raise CostError(f"The schema has no {self.operation.operation.value} type.")
        self.root = root

    def _variables(self, given: Mapping[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for definition in self.operation.variable_definitions or ():
            name = definition.variable.name.value
            if name in given:
                values[name] = given[name]
            elif definition.default_value is not None:
                type_ = type_from_ast(self.schema, definition.type)
                if type_ is not None and is_input_type(type_):
                    values[name] = value_from_ast(definition.default_value, type_)
        return values

    # Estimate.

    def estimate(
        self, parent: GraphQLNamedType, sets: _Sets, path: str, sized: Mapping[str, int]
    ) -> tuple[Decimal, tuple[FieldCost, ...]]:
        best: tuple[Decimal, tuple[FieldCost, ...]] = (LEAF_WEIGHT, ())
        for index, type_ in enumerate(self._members(parent)):
            costs = []
            for key, group in self._collect(type_, sets).items():
                cost = self._estimate_field(type_, key, group, path, sized)
                if cost is not None:
                    costs.append(cost)
            total = sum((c.cost for c in costs), LEAF_WEIGHT)
            if index == 0 or total > best[0]:
                best = (total, tuple(costs))
        return best

    def _estimate_field(
        self,
        parent: GraphQLObjectType,
        key: str,
        group: _Group,
        path: str,
        sized: Mapping[str, int],
    ) -> FieldCost | None:
        node = group[0][0]
        name = node.name.value
        field_def = None if name.startswith("__") else parent.fields.get(name)
        if field_def is None:
            return None
        named = get_named_type(field_def.type)
        coordinate = f"{parent.name}.{name}"
        field_path = f"{path}.{key}" if path else key
        weight = self._own_weight(parent, name, field_def, named, group)
        rule: SizeRule | None = self._lookup(self.model.list_sizes, parent, name)
        prefix = f"{name}."
        child_sized = {k.removeprefix(prefix): v for k, v in sized.items() if k.startswith(prefix)}
        multiplier = 1
        if rule is not None and rule.sized_fields:
            size = self._size(rule, field_def, node, coordinate)
            child_sized.update(dict.fromkeys(rule.sized_fields, size))
        elif _is_list(field_def.type):
            multiplier = (
                sized[name] if name in sized else self._size(rule, field_def, node, coordinate)
            )
        children_total: Decimal = LEAF_WEIGHT
        children: tuple[FieldCost, ...] = ()
        if is_composite_type(named):
            children_total, children = self.estimate(
                named, _subselections(group), field_path, child_sized
            )
        return FieldCost(
            path=field_path,
            coordinate=coordinate,
            type=str(field_def.type),
            weight=weight,
            multiplier=multiplier,
            cost=weight + multiplier * children_total,
            children=children,
        )

    def _size(
        self, rule: SizeRule | None, field_def: GraphQLField, node: FieldNode, coordinate: str
    ) -> int:
        if rule is None:
            return self.model.default_list_size
        if rule.slicing_arguments:
            given: dict[str, int] = {}
            defaulted: dict[str, int] = {}
            arguments = {a.name.value: a.value for a in node.arguments or ()}
            for name in rule.slicing_arguments:
                argument = field_def.args.get(name)
                if argument is None:
                    continue
                value = Undefined
                if name in arguments:
                    value = self._value(arguments[name], argument.type)
                if value is Undefined:
                    # Absent (or a variable not given): the schema default applies.
                    default = _default_of(argument)
                    if isinstance(default, int):
                        defaulted[name] = default
                elif isinstance(value, int):
                    given[name] = value
            present = given or defaulted
            if rule.require_one_slicing_argument and len(present) != 1 and self.strict:
                count = "none was given" if not present else f"{len(present)} were given"
                raise SlicingArgumentError(
                    f'Field "{coordinate}" needs exactly one of the slicing arguments '
                    f"{', '.join(rule.slicing_arguments)}; {count}.",
                    nodes=[node],
                )
            if present:
                return max(0, *present.values())
        if rule.assumed_size is not None:
            return rule.assumed_size
        return self.model.default_list_size

    # Actual.

    def measure(self, parent: GraphQLNamedType, sets: _Sets, data: Mapping[str, Any]) -> Decimal:
        members = self._members(parent)
        if len(members) > 1:
            members = self._runtime_type(members, sets, data) or members
        return max(
            (self._measure_plan(self._plan(t, sets), data) for t in members), default=LEAF_WEIGHT
        )

    def _measure_plan(self, plan: list[_Step], data: Mapping[str, Any]) -> Decimal:
        total = LEAF_WEIGHT
        for step in plan:
            value = data.get(step.key, _MISSING)
            if value is _MISSING:
                continue
            total += step.weight
            below = step.below
            if below is None or value is None:
                continue
            if isinstance(below, GraphQLObjectType):
                if step.plan is None:
                    step.plan = self._plan(below, step.subsets)
                for item in _items(value):
                    total += self._measure_plan(step.plan, item)
            else:
                for item in _items(value):
                    total += self.measure(below, step.subsets, item)
        return total

    def _plan(self, type_: GraphQLObjectType, sets: _Sets) -> list[_Step]:
        # The same selections recur for every item of a list: work them out once.
        cache_key = (type_.name, tuple((id(s), expanded) for s, expanded in sets))
        plan = self._plans.get(cache_key)
        if plan is None:
            plan = self._plans[cache_key] = []
            for key, group in self._collect(type_, sets).items():
                name = group[0][0].name.value
                field_def = None if name.startswith("__") else type_.fields.get(name)
                if field_def is None:
                    continue
                named = get_named_type(field_def.type)
                weight = self._own_weight(type_, name, field_def, named, group)
                below = named if is_composite_type(named) else None
                plan.append(_Step(key, weight, below, _subselections(group)))
        return plan

    def _runtime_type(
        self, members: list[GraphQLObjectType], sets: _Sets, data: Mapping[str, Any]
    ) -> list[GraphQLObjectType]:
        for type_ in members:
            for key, group in self._collect(type_, sets).items():
                if group[0][0].name.value == "__typename" and data.get(key) == type_.name:
                    return [type_]
        return []

    # Shared by both walks.

    def _members(self, parent: GraphQLNamedType) -> list[GraphQLObjectType]:
        if isinstance(parent, GraphQLObjectType):
            return [parent]
        if is_abstract_type(parent):
            return list(self.schema.get_possible_types(parent))
        return []

    def _collect(self, runtime: GraphQLObjectType, sets: _Sets) -> dict[str, _Group]:
        fields: dict[str, _Group] = {}
        seen: set[str] = set()
        for selection_set, expanded in sets:
            self._collect_into(runtime, selection_set, expanded, fields, seen)
        return fields

    def _collect_into(
        self,
        runtime: GraphQLObjectType,
        selection_set: SelectionSetNode,
        expanded: frozenset[str],
        fields: dict[str, _Group],
        seen: set[str],
    ) -> None:
        for selection in selection_set.selections:
            if not self._included(selection):
                continue
            if isinstance(selection, FieldNode):
                key = (selection.alias or selection.name).value
                fields.setdefault(key, []).append((selection, expanded))
            elif isinstance(selection, InlineFragmentNode):
                if self._applies(selection.type_condition, runtime):
                    self._collect_into(runtime, selection.selection_set, expanded, fields, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                # Expanded above (a cycle) or already at this level: nothing new.
                if fragment is None or name in expanded or name in seen:
                    continue
                seen.add(name)
                if self._applies(fragment.type_condition, runtime):
                    self._collect_into(
                        runtime, fragment.selection_set, expanded | {name}, fields, seen
                    )

    def _applies(self, condition: NamedTypeNode | None, runtime: GraphQLObjectType) -> bool:
        if condition is None:
            return True
        type_ = self.schema.get_type(condition.name.value)
        if type_ is runtime:
            return True
        return is_abstract_type(type_) and runtime in self.schema.get_possible_types(type_)

    def _included(self, node: Any) -> bool:
        for directive in node.directives or ():
            name = directive.name.value
            if name not in ("skip", "include"):
                continue
            condition = next((a.value for a in directive.arguments if a.name.value == "if"), None)
            value = self._value(condition, None) if condition is not None else None
            if (name == "skip" and value is True) or (name == "include" and value is not True):
                return False
        return True

    def _own_weight(
        self,
        parent: GraphQLObjectType,
        name: str,
        field_def: GraphQLField,
        named: GraphQLNamedType,
        group: _Group,
    ) -> Decimal:
        weight: Decimal | None = self._lookup(self.model.field_weights, parent, name)
        if weight is None:
            weight = self.model.type_weights.get(named.name)
        if weight is None:
            weight = COMPOSITE_WEIGHT if is_composite_type(named) else LEAF_WEIGHT
        node = group[0][0]
        model = self.model
        if model.argument_weights or model.input_field_weights:
            for argument in node.arguments or ():
                arg_name = argument.name.value
                arg_def = field_def.args.get(arg_name)
                if arg_def is None:
                    continue
                value = self._value(argument.value, arg_def.type)
                if value is Undefined or value is None:
                    continue
                key = (parent.name, name, arg_name)
                arg_weight = model.argument_weights.get(key)
                if arg_weight is None:
                    for interface in parent.interfaces:
                        arg_weight = model.argument_weights.get((interface.name, name, arg_name))
                        if arg_weight is not None:
                            break
                weight += (arg_weight or LEAF_WEIGHT) + self._input_cost(arg_def.type, value)
            for field_node, _ in group:
                weight += self._directive_cost(field_node)
        return max(LEAF_WEIGHT, weight)

    def _input_cost(self, type_: GraphQLInputType, value: Any) -> Decimal:
        if not self.model.input_field_weights or value is None:
            return LEAF_WEIGHT
        if isinstance(type_, GraphQLNonNull):
            type_ = type_.of_type
        if isinstance(type_, GraphQLList):
            items = value if isinstance(value, list) else [value]
            return sum((self._input_cost(type_.of_type, item) for item in items), LEAF_WEIGHT)
        total = LEAF_WEIGHT
        if isinstance(type_, GraphQLInputObjectType) and isinstance(value, Mapping):
            for key, item in value.items():
                input_field = type_.fields.get(key)
                if input_field is None or item is None:
                    continue
                total += self.model.input_field_weights.get((type_.name, key), LEAF_WEIGHT)
                total += self._input_cost(input_field.type, item)
        return total

    def _directive_cost(self, node: FieldNode) -> Decimal:
        total = LEAF_WEIGHT
        for directive in node.directives or ():
            for argument in directive.arguments or ():
                key = (f"@{directive.name.value}", "", argument.name.value)
                weight = self.model.argument_weights.get(key)
                if weight is not None and self._value(argument.value, None) is not None:
                    total += weight
        return total

    def _lookup(
        self, mapping: Mapping[tuple[str, str], Any], parent: GraphQLObjectType, name: str
    ) -> Any:
        value = mapping.get((parent.name, name))
        if value is None:
            for interface in parent.interfaces:
                value = mapping.get((interface.name, name))
                if value is not None:
                    break
        return value

    def _value(self, node: ValueNode, type_: GraphQLInputType | None) -> Any:
        if isinstance(node, VariableNode):
            return self.variables.get(node.name.value, Undefined)
        if type_ is None:
            return value_from_ast_untyped(node, self.variables)
        return value_from_ast(node, type_, self.variables)


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if name is None:
        if len(operations) == 1:
            return operations[0]
        raise CostError("Must provide operation name if query contains multiple operations.")
    for operation in operations:
        if operation.name and operation.name.value == name:
            return operation
    raise CostError(f"Unknown operation named '{name}'.")


def _default_of(argument: Any) -> Any:
    # graphql-core 3.3 keeps SDL defaults as literals in ``default``; 3.2 and
    # Strawberry use the coerced ``default_value``.
    default = getattr(argument, "default", None)
    if default is not None:
        if default.value is not Undefined:
            return default.value
        if default.literal is not None:
            return value_from_ast(default.literal, argument.type)
    return argument.default_value


def _is_list(type_: GraphQLOutputType) -> bool:
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return is_list_type(type_)


def _subselections(group: _Group) -> _Sets:
    return [(node.selection_set, expanded) for node, expanded in group if node.selection_set]


def _items(value: Any) -> list[Mapping[str, Any]]:
    if type(value) is dict:
        return [value]
    if type(value) is list:
        if all(type(item) is dict for item in value):
            return value
        return [item for nested in value for item in _items(nested)]
    if isinstance(value, Mapping):
        return [value]
    return []


# Presenting a report.


def explain(report: CostReport) -> str:
    """The estimate as an indented tree: ``cost = weight + multiplier x children``.

    >>> schema = build_cost_schema('type Query { me: User } type User { name: String }')
    >>> print(explain(estimate_cost(CostModel.from_schema(schema), schema, "{ me { name } }")))
    query cost 1
      me  Query.me: User  1 = 1 + 0
        name  User.name: String  0
    """
    lines = [f"{report.operation} {report.operation_name or ''}".rstrip() + f" cost {report.cost}"]
    if report.root_weight:
        lines.append(f"  ({report.root_weight} for the {report.operation} itself)")

    def add(cost: FieldCost, depth: int) -> None:
        key = cost.path.rsplit(".", 1)[-1]
        line = f"{'  ' * depth}{key}  {cost.coordinate}: {cost.type}  {_number(cost.cost)}"
        if cost.children or cost.cost != cost.weight:
            children = _number(sum((c.cost for c in cost.children), LEAF_WEIGHT))
            times = f"{cost.multiplier} x " if cost.multiplier != 1 else ""
            line += f" = {_number(cost.weight)} + {times}{children}"
        lines.append(line)
        for child in cost.children:
            add(child, depth + 1)

    for field_cost in report.fields:
        add(field_cost, 1)
    return "\n".join(lines)


def as_json(report: CostReport) -> dict[str, Any]:
    """The estimate as JSON, for ``extensions`` (``X-Switchyard-Cost: explain``).

    >>> schema = build_cost_schema('type Query { me: User } type User { name: String }')
    >>> as_json(estimate_cost(CostModel.from_schema(schema), schema, "{ me { name } }"))["cost"]
    1
    """

    def field_json(cost: FieldCost) -> dict[str, Any]:
        return {
            "path": cost.path,
            "field": cost.coordinate,
            "type": cost.type,
            "weight": _json_number(cost.weight),
            "multiplier": cost.multiplier,
            "cost": _json_number(cost.cost),
            "children": [field_json(child) for child in cost.children],
        }

    return {
        "operation": report.operation,
        "operationName": report.operation_name,
        "cost": report.cost,
        "rootWeight": _json_number(report.root_weight),
        "fields": [field_json(f) for f in report.fields],
    }


def _number(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


# The Strawberry extension.


class CostSettings(BaseModel):
    """The ``[cost]`` config section.

    >>> CostSettings(mode="enforce", max_cost=500).max_cost
    500
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["off", "measure", "enforce"] = Field(
        DEFAULT_MODE,
        description="off: no analysis; measure: estimate and measure, never reject; "
        "enforce: also reject operations estimated above max_cost",
    )
    max_cost: int = Field(DEFAULT_MAX_COST, ge=1, description="most points one operation may cost")
    default_list_size: int = Field(
        DEFAULT_LIST_SIZE, ge=0, description="items assumed of a list without @listSize"
    )


@dataclass(slots=True)
class CostMeasurement:
    """What ``CostAnalysis`` leaves on the request context (``context.cost``)."""

    estimate: CostReport
    maximum: int
    actual: int | None = None
    """Set after execution; stays None when the operation was rejected."""

    @property
    def requested(self) -> int:
        return self.estimate.cost

    @property
    def exceeds_maximum(self) -> bool:
        return self.estimate.cost > self.maximum


EstimateHook = Callable[[Any, CostReport], Awaitable[None]]
"""Called with the request context before execution; raising rejects the operation."""
ActualHook = Callable[[Any, CostMeasurement], Awaitable[None]]
"""Called with the request context after execution (refunds); errors are logged, not raised."""


DEFAULT_ESTIMATE_CACHE_SIZE = 512


class EstimateCache:
    """Estimates and measuring plans of recent operations, by document, operation and variables.

    Both depend only on those (and the model), and with a parser cache the
    same document object comes back for the same text, so a repeated
    operation skips the estimate walk and reuses the per-type plans its
    actual cost is measured with. Each entry holds its document, so the
    ``id`` in its key cannot be reused by another document while it lives.

    >>> cache = EstimateCache(maxsize=256)
    >>> CostAnalysis(settings, model=model, cache=cache)
    """

    def __init__(self, maxsize: int = DEFAULT_ESTIMATE_CACHE_SIZE) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[tuple[Any, ...], tuple[DocumentNode, Any]] = OrderedDict()

    def estimate(
        self,
        model: CostModel,
        schema: GraphQLSchema,
        document: DocumentNode,
        variables: Mapping[str, Any] | None,
        operation_name: str | None,
        *,
        strict: bool,
    ) -> CostReport:
        def compute() -> CostReport:
            return estimate_cost(model, schema, document, variables, operation_name, strict=strict)

        report: CostReport = self._cached(
            ("estimate", strict), model, document, variables, operation_name, compute
        )
        return report

    def actual_cost(
        self,
        model: CostModel,
        schema: GraphQLSchema,
        document: DocumentNode,
        variables: Mapping[str, Any] | None,
        operation_name: str | None,
        data: Mapping[str, Any] | None,
    ) -> int:
        def plan() -> _Walk:
            return _Walk(model, schema, document, variables, operation_name, strict=False)

        walk: _Walk = self._cached(("actual",), model, document, variables, operation_name, plan)
        return _measure_data(model, walk, data)

    def _cached(
        self,
        kind: tuple[Any, ...],
        model: CostModel,
        document: DocumentNode,
        variables: Mapping[str, Any] | None,
        operation_name: str | None,
        compute: Callable[[], Any],
    ) -> Any:
        try:
            variables_key = orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS)
        except TypeError:  # not JSON: nothing to key on
            return compute()
        key = (*kind, id(model), id(document), operation_name, variables_key)
        entry = self._entries.get(key)
        if entry is not None and entry[0] is document:
            self._entries.move_to_end(key)
            return entry[1]
        value = compute()
        self._entries[key] = (document, value)
        if len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)
        return value


class CostAnalysis(SchemaExtension):
    """Estimate before any resolver runs, reject above ``max_cost`` (enforce), measure after.

    Per request, so pass a factory::

        settings = CostSettings(mode="enforce", max_cost=1000)
        schema = build_schema(extensions=[lambda: CostAnalysis(settings, on_estimate=charge)])

    A rejection is a GraphQL error (``COST_LIMIT_EXCEEDED`` with
    ``estimatedCost`` and ``maximumCost``, ``BAD_USER_INPUT`` for slicing
    arguments, or whatever ``on_estimate`` raised) and nothing is executed.
    ``on_estimate`` runs in both modes (in enforce mode only for estimates
    within ``max_cost``), ``on_actual`` after every executed operation. Both hooks
    get ``info.context``, which also gets the ``CostMeasurement`` as its
    ``cost`` attribute (or key). Async execution (``schema.execute``) only.
    """

    def __init__(
        self,
        settings: CostSettings,
        *,
        model: CostModel | None = None,
        on_estimate: EstimateHook | None = None,
        on_actual: ActualHook | None = None,
        cache: EstimateCache | None = None,
    ) -> None:
        self.settings = settings
        self.model = model
        self.cache = cache
        self.on_estimate = on_estimate
        self.on_actual = on_actual

    async def on_execute(self) -> AsyncIterator[None]:
        execution_context = self.execution_context
        document = execution_context.graphql_document
        if self.settings.mode == "off" or document is None or execution_context.result:
            yield
            return
        schema = execution_context.schema
        model = self.model or CostModel.from_strawberry(
            schema, default_list_size=self.settings.default_list_size
        )
        graphql_schema = schema._schema
        context = execution_context.context
        variables = execution_context.variables
        operation_name = execution_context.operation_name
        enforce = self.settings.mode == "enforce"
        measurement = None
        try:
            if self.cache is not None:
                estimate = self.cache.estimate(
                    model, graphql_schema, document, variables, operation_name, strict=enforce
                )
            else:
                estimate = estimate_cost(
                    model, graphql_schema, document, variables, operation_name, strict=enforce
                )
            measurement = CostMeasurement(estimate, self.settings.max_cost)
            _attach(context, measurement)
            if enforce and measurement.exceeds_maximum:
                operation = _operation(document, operation_name)
                raise CostLimitExceeded(estimate.cost, self.settings.max_cost, nodes=[operation])
            if self.on_estimate is not None:
                await self.on_estimate(context, estimate)
        except Exception as error:
            execution_context.result = GraphQLExecutionResult(
                data=None, errors=[_as_graphql_error(error)]
            )
            yield
            return
        yield
        data = getattr(execution_context.result, "data", None)
        if self.cache is not None:
            measurement.actual = self.cache.actual_cost(
                model, graphql_schema, document, variables, operation_name, data
            )
        else:
            measurement.actual = actual_cost(
                model, graphql_schema, document, variables, operation_name, data
            )
        if self.on_actual is not None:
            try:
                await self.on_actual(context, measurement)
            except Exception:
                logger.exception("on_actual failed", extra={"stage": "operation"})


def _as_graphql_error(error: Exception) -> GraphQLError:
    if isinstance(error, CostError):
        return error.as_graphql_error()
    if isinstance(error, GraphQLError):
        return error
    # The gateway presents it: a GraphError keeps its code, anything else is masked.
    return GraphQLError(str(error), original_error=error)


def _attach(context: Any, measurement: CostMeasurement) -> None:
    if isinstance(context, MutableMapping):
        context[COST_ATTRIBUTE] = measurement
    elif context is not None:
        # A context that cannot hold it still gets the hooks.
        with contextlib.suppress(AttributeError):
            setattr(context, COST_ATTRIBUTE, measurement)


def measurement_of(context: Any) -> CostMeasurement | None:
    """The ``CostMeasurement`` ``CostAnalysis`` left on ``context``, if any."""
    if isinstance(context, Mapping):
        found = context.get(COST_ATTRIBUTE)
    else:
        found = getattr(context, COST_ATTRIBUTE, None)
    return found if isinstance(found, CostMeasurement) else None
