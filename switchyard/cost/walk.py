"""Walking one operation against the schema: the estimate, and the actual cost of a response.

The rules, and the choices the specification leaves open:

- A field weighs its own ``@cost``, else its type's ``@cost``, else 1 for
  objects, interfaces and unions and 0 for scalars and enums; a field of an
  object type without its own weight inherits one set on an interface field.
  Arguments given in the operation (not null) add their ``@cost`` and that of
  their input fields given; arguments of directives used add theirs.
  ``cost(field) = max(0, weight + arguments + directives)``, counted once.
- What cannot be batched is priced per parent through an argument's weight.
  A connection served per parent (``Product.reviews``, ``PagedEdge``) shares
  one upstream call among all parents, except a page ``after`` a cursor,
  which needs a call of its own; so its ``after`` argument carries
  ``@cost(weight: "1")``. An argument weighs once per occurrence of its
  field, and under a list its field occurs once per parent, so
  ``products(first: 100) { edges { node { reviews(after: $c) { ... } } } }``
  adds 100 points, one per call, to what the same query costs without ``after``.
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
``__typename`` if selected, else the most expensive member again. What the
response lost is not lost to the budget: ``CostAnalysis`` never measures an
operation at less than the work it did (``switchyard.cost.work``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
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

from switchyard.cost.errors import CostError, SlicingArgumentError
from switchyard.cost.model import COMPOSITE_WEIGHT, LEAF_WEIGHT, CostModel, SizeRule
from switchyard.cost.report import CostReport, FieldCost

_Group = list[tuple[FieldNode, frozenset[str]]]
"""The field nodes merged under one response key, each with the fragments expanded above it."""
_Sets = list[tuple[SelectionSetNode, frozenset[str]]]
_MISSING = object()


@dataclass(slots=True)
class _Step:
    """One response key of a selection, worked out once for all the items of a list."""

    key: str
    weight: Decimal | int
    below: GraphQLNamedType | None
    """The composite type under the field, if any."""
    subsets: _Sets
    plan: list[_Step] | None = None
    """The steps below, once needed (object types only)."""


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

    >>> from switchyard.cost import build_cost_schema
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

    >>> from switchyard.cost import build_cost_schema
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

    def measure(
        self, parent: GraphQLNamedType, sets: _Sets, data: Mapping[str, Any]
    ) -> Decimal | int:
        members = self._members(parent)
        if len(members) > 1:
            members = self._runtime_type(members, sets, data) or members
        return max(
            (self._measure_plan(self._plan(t, sets), data) for t in members), default=LEAF_WEIGHT
        )

    def _measure_plan(self, plan: list[_Step], data: Mapping[str, Any]) -> Decimal | int:
        return self._measure_items(plan, [data])

    def _measure_items(self, plan: list[_Step], items: list[Mapping[str, Any]]) -> Decimal | int:
        """The cost of ``items``, objects of one type under one selection: step by step
        for all of them at once (a list's items share their plan), not item by item."""
        total: Decimal | int = 0  # whole weights add as ints: several times faster
        for step in plan:
            key = step.key
            values = [item.get(key, _MISSING) for item in items]
            present = [value for value in values if value is not _MISSING]
            total += step.weight * len(present)
            below = step.below
            if below is None:
                continue
            children = [value for value in present if value is not None]
            if not children:
                continue
            if isinstance(below, GraphQLObjectType):
                below_plan = step.plan
                if below_plan is None:
                    below_plan = step.plan = self._plan(below, step.subsets)
                flat: list[Mapping[str, Any]] = []
                for value in children:
                    if type(value) is dict:
                        flat.append(value)
                    else:
                        flat.extend(_items(value))
                total += self._measure_items(below_plan, flat)
            else:
                for value in children:
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
                if below is None and not weight:
                    continue  # a leaf that costs nothing adds nothing, present or not
                whole = weight == weight.to_integral_value()
                step_weight = int(weight) if whole else weight
                plan.append(_Step(key, step_weight, below, _subselections(group)))
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
