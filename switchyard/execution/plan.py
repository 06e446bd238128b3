"""Plans: what the planned execution does for each field of an operation, decided once.

A plan is made from a validated operation, the first time it runs, and kept
with its document: per selection, the response keys in order and, per key,
how the value is found (an attribute read, a batch call for every parent at
once, or the field's own resolver) and how it is completed (a leaf's
serializer, an object's selection, a list's items). ``@skip``/``@include``
with variables select one plan per combination of their values.

What a plan does not cover raises ``Unplannable``, and the operation runs on
graphql-core's standard execution instead: introspection fields
(``__schema``, ``__type``), fragment arguments, subscriptions, and schemas
that add per-field middleware (a Strawberry extension with a ``resolve`` hook).
"""

from __future__ import annotations

import contextlib
import math
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from graphql import (
    FieldNode,
    GraphQLAbstractType,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLField,
    GraphQLFloat,
    GraphQLID,
    GraphQLInt,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    is_abstract_type,
    is_leaf_type,
    is_list_type,
    is_non_null_type,
    is_object_type,
)
from graphql.execution.collect_fields import (
    FieldDetails,
    FragmentDetails,
    collect_fields,
    collect_subfields,
)
from graphql.execution.executor import Executor
from graphql.execution.values import VariableValues, get_argument_values
from graphql.language import Visitor, visit

from switchyard.authorization import Authorize, Rule
from switchyard.edges import BatchResolver, batch_resolver_of

STRAWBERRY_DEFINITION = "strawberry-definition"
MAX_PLANS_PER_OPERATION = 16
"""Plans kept per operation, one per combination of its ``@skip``/``@include`` variables."""

INT_MIN, INT_MAX = -(2**31), 2**31 - 1


class Unplannable(Exception):
    """The operation uses something the planned execution does not cover (the reason)."""


class FieldKind(IntEnum):
    TYPENAME = 0
    """``__typename``: the object type's name."""
    ATTRIBUTE = 1
    """A plain field: an attribute of the parent."""
    GUARDED_ATTRIBUTE = 2
    """A plain field behind authorization rules: each rule, then the attribute."""
    BATCH = 3
    """A declared edge: one batch resolver call for all parents of the level."""
    RESOLVE = 4
    """A field with its own resolver: called per parent, as graphql-core would."""


class ShapeKind(IntEnum):
    LEAF = 0
    OBJECT = 1
    LIST = 2
    ABSTRACT = 3


@dataclass(eq=False, slots=True)
class Shape:
    """How a value of one output type is completed."""

    kind: ShapeKind
    non_null: bool
    graphql_type: GraphQLOutputType
    serialize: Callable[[Any], Any] | None = None
    item: Shape | None = None
    selection: SelectionPlan | None = None
    selections: dict[str, SelectionPlan] = field(default_factory=dict)
    """For an abstract type: the selection of each possible object type, by name."""


@dataclass(eq=False, slots=True)
class FieldPlan:
    """One response key of a selection: how its value is found and completed."""

    key: str
    name: str
    kind: FieldKind
    parent_type: GraphQLObjectType
    definition: GraphQLField | None
    details: list[FieldDetails]
    nodes: list[FieldNode]
    output: Shape | None
    attribute: str = ""
    rules: tuple[Rule, ...] = ()
    batch: BatchResolver | None = None
    arguments: dict[str, Any] | None = None
    """The arguments when no variable is among them: coerced once, with the plan."""
    has_arguments: bool = False
    as_is: frozenset[type] = frozenset()
    """Exact types of values written to the answer unchanged (``str`` for a ``String``,
    ``NoneType`` where null is allowed): most leaves cost one attribute read."""
    complete: Callable[..., None] | None = None
    """A batched field's compiled completion (``switchyard.execution.compiled``), made on
    first use."""


@dataclass(eq=False, slots=True)
class SelectionPlan:
    """The fields of one selection on one object type, in response order."""

    object_type: GraphQLObjectType
    fields: list[FieldPlan]
    is_type_of: Callable[[Any, Any], Any] | None
    fill: Callable[..., bool] | None = None
    """The compiled fill (``switchyard.execution.compiled``), made on first use."""


@dataclass(slots=True)
class OperationPlan:
    root: SelectionPlan
    serial: bool


class Planner:
    """Builds the plan of one operation under one set of variable values."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDetails],
        variable_values: VariableValues,
        operation: OperationDefinitionNode,
        hide_suggestions: bool,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variable_values = variable_values
        self.operation = operation
        self.hide_suggestions = hide_suggestions

    def plan(self) -> OperationPlan:
        operation = self.operation
        if operation.operation == OperationType.SUBSCRIPTION:
            raise Unplannable("subscriptions")
        root_type = self.schema.get_root_type(operation.operation)
        if root_type is None:
            raise Unplannable("no root type for the operation")
        grouped, _defers, _forbidden = collect_fields(
            self.schema,
            self.fragments,
            self.variable_values,
            root_type,
            operation,
            self.hide_suggestions,
        )
        root = self._selection(root_type, grouped)
        return OperationPlan(root, serial=operation.operation == OperationType.MUTATION)

    def _selection(
        self, object_type: GraphQLObjectType, grouped: Mapping[str, list[FieldDetails]]
    ) -> SelectionPlan:
        fields = [self._field(object_type, key, details) for key, details in grouped.items()]
        return SelectionPlan(
            object_type, [f for f in fields if f is not None], object_type.is_type_of
        )

    def _field(
        self, parent_type: GraphQLObjectType, key: str, details: list[FieldDetails]
    ) -> FieldPlan | None:
        if any(detail.fragment_variable_values is not None for detail in details):
            raise Unplannable("fragment arguments")
        node = details[0].node
        name = node.name.value
        nodes = [detail.node for detail in details]
        if name == "__typename":
            return FieldPlan(key, name, FieldKind.TYPENAME, parent_type, None, details, nodes, None)
        if name.startswith("__"):
            raise Unplannable(f"introspection field {name}")
        definition = parent_type.fields.get(name)
        if definition is None:
            return None  # as graphql-core: a field the type lacks is left out
        output = self._shape(definition.type, details)
        plan = FieldPlan(
            key, name, FieldKind.RESOLVE, parent_type, definition, details, nodes, output
        )
        plan.has_arguments = bool(definition.args or node.arguments)
        if plan.has_arguments and not _uses_variables(node):
            try:
                plan.arguments = get_argument_values(
                    definition, node, self.variable_values, None, self.hide_suggestions
                )
            except Exception:
                plan.arguments = None  # coerced per execution, where the error is the field's
        strawberry_field = (definition.extensions or {}).get(STRAWBERRY_DEFINITION)
        if strawberry_field is None:
            return plan
        extensions = list(getattr(strawberry_field, "extensions", ()) or ())
        if not all(type(extension) is Authorize for extension in extensions):
            return plan  # another extension wraps the resolver: let the resolver run
        rules = tuple(extension.rule for extension in extensions)
        base_resolver = getattr(strawberry_field, "base_resolver", None)
        if base_resolver is None:
            if getattr(strawberry_field, "default_resolver", getattr) is not getattr:
                return plan
            if not extensions and not getattr(definition.resolve, "_is_default", False):
                return plan  # exception handlers or a custom wrapper
            plan.kind = FieldKind.GUARDED_ATTRIBUTE if rules else FieldKind.ATTRIBUTE
            plan.attribute = strawberry_field.python_name
            plan.rules = rules
            plan.as_is = exact_types(output)
            return plan
        batch = batch_resolver_of(getattr(base_resolver, "wrapped_func", None))
        if batch is not None:
            plan.kind = FieldKind.BATCH
            plan.batch = batch
            plan.rules = rules
        return plan

    def _shape(self, output: GraphQLOutputType, details: list[FieldDetails]) -> Shape:
        non_null = is_non_null_type(output)
        graphql_type: Any = output.of_type if isinstance(output, GraphQLNonNull) else output
        if is_list_type(graphql_type):
            assert isinstance(graphql_type, GraphQLList)
            item = self._shape(graphql_type.of_type, details)
            return Shape(ShapeKind.LIST, non_null, graphql_type, item=item)
        if is_leaf_type(graphql_type):
            return Shape(ShapeKind.LEAF, non_null, graphql_type, serialize=serializer(graphql_type))
        if is_object_type(graphql_type):
            assert isinstance(graphql_type, GraphQLObjectType)
            selection = self._subselection(graphql_type, details)
            return Shape(ShapeKind.OBJECT, non_null, graphql_type, selection=selection)
        if is_abstract_type(graphql_type):
            assert isinstance(graphql_type, GraphQLAbstractType)
            shape = Shape(ShapeKind.ABSTRACT, non_null, graphql_type)
            for possible in self.schema.get_possible_types(graphql_type):
                shape.selections[possible.name] = self._subselection(possible, details)
            return shape
        raise Unplannable(f"output type {graphql_type}")

    def _subselection(
        self, object_type: GraphQLObjectType, details: list[FieldDetails]
    ) -> SelectionPlan:
        grouped, _defers, _forbidden = collect_subfields(
            self.schema,
            self.fragments,
            self.variable_values,
            self.operation,
            object_type,
            details,
            self.hide_suggestions,
        )
        return self._selection(object_type, grouped)


def exact_types(shape: Shape) -> frozenset[type]:
    """Exact types of values written to the answer unchanged at ``shape`` (``as_is``)."""
    kinds: set[type] = set() if shape.non_null else {type(None)}
    if shape.kind is ShapeKind.LEAF:
        leaf = shape.graphql_type
        if leaf is GraphQLString or leaf is GraphQLID:
            kinds.add(str)
        elif leaf is GraphQLBoolean:
            kinds.add(bool)
    return frozenset(kinds)


def _uses_variables(node: FieldNode) -> bool:
    return any(_has_variable(argument.value) for argument in node.arguments or ())


def _has_variable(value: Any) -> bool:
    if isinstance(value, VariableNode):
        return True
    for child in getattr(value, "values", None) or getattr(value, "fields", None) or ():
        if _has_variable(getattr(child, "value", child)):
            return True
    return False


def serializer(leaf: GraphQLLeafType) -> Callable[[Any], Any]:
    """The leaf's output coercion, with the common exact types answered without a call."""
    complete = Executor.complete_leaf_value

    def slow(value: Any) -> Any:
        return complete(leaf, value)

    if leaf is GraphQLString or leaf is GraphQLID:

        def text(value: Any) -> Any:
            return value if type(value) is str else slow(value)

        return text
    if leaf is GraphQLInt:

        def integer(value: Any) -> Any:
            if type(value) is int and INT_MIN <= value <= INT_MAX:
                return value
            return slow(value)

        return integer
    if leaf is GraphQLFloat:

        def real(value: Any) -> Any:
            return value if type(value) is float and math.isfinite(value) else slow(value)

        return real
    if leaf is GraphQLBoolean:

        def boolean(value: Any) -> Any:
            return value if type(value) is bool else slow(value)

        return boolean
    if isinstance(leaf, GraphQLEnumType):
        names: dict[Any, Any] = {}

        def enum(value: Any) -> Any:
            try:
                return names[value]
            except (KeyError, TypeError):
                pass
            name = slow(value)
            with contextlib.suppress(TypeError):  # an unhashable value: coerced each time
                names[value] = name
            return name

        return enum
    return slow


class _DirectiveVariables(Visitor):
    """Collects the variables that ``@skip``/``@include`` arguments read."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_directive(self, node: Any, *_: Any) -> None:
        if node.name.value in ("skip", "include"):
            for argument in node.arguments or ():
                if isinstance(argument.value, VariableNode):
                    self.names.add(argument.value.name.value)


@dataclass(slots=True)
class _Entry:
    operation: weakref.ref[OperationDefinitionNode]
    directive_variables: tuple[str, ...]
    plans: dict[tuple[Any, ...], OperationPlan | Unplannable] = field(default_factory=dict)


class PlanCache:
    """Plans by operation (kept while its parsed document lives) and directive variables."""

    def __init__(self) -> None:
        self._entries: dict[int, _Entry] = {}
        self.made = 0
        """Plans built so far (one per operation and directive variables, while kept)."""

    def __len__(self) -> int:
        return len(self._entries)

    def plan(self, planner: Planner) -> OperationPlan:
        """The operation's plan under these variables; raises ``Unplannable``."""
        operation = planner.operation
        entry = self._entries.get(id(operation))
        if entry is None or entry.operation() is not operation:
            entry = self._new_entry(planner)
        coerced = planner.variable_values.coerced
        variant = tuple(coerced.get(name) for name in entry.directive_variables)
        found = entry.plans.get(variant)
        if found is None:
            self.made += 1
            try:
                found = planner.plan()
            except Unplannable as reason:
                found = reason
            if len(entry.plans) < MAX_PLANS_PER_OPERATION:
                entry.plans[variant] = found
        if isinstance(found, Unplannable):
            raise found
        return found

    def _new_entry(self, planner: Planner) -> _Entry:
        key = id(planner.operation)
        entries = self._entries

        def forget(_: object) -> None:
            entries.pop(key, None)

        names = _DirectiveVariables()
        visit(planner.operation, names)
        for fragment in planner.fragments.values():
            visit(fragment.definition, names)
        entry = _Entry(weakref.ref(planner.operation, forget), tuple(sorted(names.names)))
        entries[key] = entry
        return entry


def walk(plan: SelectionPlan) -> Iterator[FieldPlan]:
    """Every field plan under ``plan``, depth first (for tests and reports)."""
    for field_plan in plan.fields:
        yield field_plan
        shape = field_plan.output
        while shape is not None and shape.kind is ShapeKind.LIST:
            shape = shape.item
        if shape is None:
            continue
        if shape.selection is not None:
            yield from walk(shape.selection)
        for selection in shape.selections.values():
            yield from walk(selection)


__all__ = [
    "FieldKind",
    "FieldPlan",
    "OperationPlan",
    "PlanCache",
    "Planner",
    "SelectionPlan",
    "Shape",
    "ShapeKind",
    "Unplannable",
]
