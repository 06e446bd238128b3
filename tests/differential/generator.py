"""Seeded random operations over any GraphQL schema, valid by construction (and checked).

    generator = OperationGenerator(schema, Settings(...), seed=7)
    for operation in generator.operations(200):
        operation.document, operation.variables

An operation selects random fields of its types, with aliases, inline fragments
(on the type itself, on an interface it implements, on each possible type of an
abstract one, and without a type condition), named fragments (new and reused),
the same field selected twice with different sub-selections, ``__typename``,
arguments as literals or as variables (sometimes omitted, null, or given a
default in the variable's definition) and ``@skip``/``@include`` with literals or
Boolean variables. Every operation passes graphql-core's validation against the
schema; the generator retries with the same random stream when one does not, so a
seed always yields the same operations.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    GraphQLCompositeType,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    get_named_type,
    is_composite_type,
    is_non_null_type,
    parse,
    validate,
)
from graphql.pyutils import Undefined

OMIT = object()
"""What a value source answers to leave an optional argument out."""

ValueSource = Callable[[random.Random], Any]
"""A seeded draw of one argument's value (a JSON value, enum values by name), or OMIT."""


@dataclass(frozen=True)
class Operation:
    """One generated request."""

    document: str
    variables: dict[str, Any]
    operation_type: str = "query"

    def describe(self) -> str:
        return f"{self.document}\nvariables: {json.dumps(self.variables, sort_keys=True)}"


@dataclass
class Settings:
    """What to generate, and how often each feature appears (probabilities per occasion)."""

    max_depth: int = 5
    """Nested selection sets below the root."""
    fields_per_selection: tuple[int, int] = (1, 4)
    max_fields: int = 40
    """Fields in one operation, roughly: past it, selection sets take one leaf field."""
    root_fields: tuple[int, int] = (1, 3)
    arguments: Mapping[str, ValueSource] = field(default_factory=dict)
    """``"Type.field.argument"`` (or ``"*.field.argument"``) to its values; others by type."""
    scalars: Mapping[str, ValueSource] = field(default_factory=dict)
    """Values of an argument of a scalar type (``"ID"``, ``"Int"``...) with no source above."""
    excluded_fields: frozenset[str] = frozenset()
    """``"Type.field"`` never selected."""
    mutation_rate: float = 0.0
    alias_rate: float = 0.2
    directive_rate: float = 0.12
    inline_fragment_rate: float = 0.12
    named_fragment_rate: float = 0.1
    reuse_fragment_rate: float = 0.5
    repeat_rate: float = 0.08
    typename_rate: float = 0.15
    variable_rate: float = 0.5
    omit_optional_rate: float = 0.3
    null_variable_rate: float = 0.05
    variable_default_rate: float = 0.1
    introspection_rate: float = 0.0
    operation_name_rate: float = 0.5


@dataclass
class _Fragment:
    name: str
    type_name: str
    height: int
    """Selection sets the fragment nests below the one it is spread in."""


@dataclass
class _Document:
    """The state of one operation while it is written."""

    variables: dict[str, Any] = field(default_factory=dict)
    definitions: list[str] = field(default_factory=list)
    fragments: list[_Fragment] = field(default_factory=list)
    fragment_texts: list[str] = field(default_factory=list)
    arguments_by_field: dict[tuple[str, tuple[str, ...]], str] = field(default_factory=dict)
    counter: int = 0
    fields: int = 0

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"


class InvalidOperation(Exception):
    """The generator wrote an operation the schema does not validate (a generator bug)."""


class OperationGenerator:
    def __init__(
        self, schema: GraphQLSchema, settings: Settings, *, seed: int, check: bool = True
    ) -> None:
        """``check=False`` skips validating each operation (the server validates it anyway)."""
        self.schema = schema
        self.settings = settings
        self.check = check
        self.rng = random.Random(seed)
        self.rejected = 0

    def operations(self, count: int) -> Iterator[Operation]:
        for _ in range(count):
            yield self.operation()

    def operation(self) -> Operation:
        for _ in range(50):
            operation = self._write()
            if not self.check:
                return operation
            errors = validate(self.schema, parse(operation.document))
            if not errors:
                return operation
            self.rejected += 1
        raise InvalidOperation(f"{operation.describe()}\n{errors}")

    # --- the document ----------------------------------------------------------------

    def _write(self) -> Operation:
        rng, settings = self.rng, self.settings
        document = _Document()
        root: GraphQLObjectType | None = self.schema.query_type
        kind = "query"
        if self.schema.mutation_type is not None and rng.random() < settings.mutation_rate:
            root, kind = self.schema.mutation_type, "mutation"
        assert root is not None
        low, high = settings.root_fields if kind == "query" else (1, 1)
        selections = self._selections_of_object(document, root, 0, rng.randint(low, high))
        if kind == "query" and rng.random() < settings.introspection_rate:
            selections.append(self._introspection())
        body = " ".join(selections)
        header = kind
        if rng.random() < settings.operation_name_rate or document.definitions:
            header += f" {document.fresh('Op')}"
        if document.definitions:
            header += f"({', '.join(document.definitions)})"
        text = f"{header} {{ {body} }}"
        if document.fragment_texts:
            text += "\n" + "\n".join(document.fragment_texts)
        return Operation(text, document.variables, kind)

    def _introspection(self) -> str:
        named = sorted(n for n in self.schema.type_map if not n.startswith("__"))
        name = self.rng.choice(named)
        return f'__type(name: "{name}") {{ name kind fields {{ name }} possibleTypes {{ name }} }}'

    # --- selection sets --------------------------------------------------------------

    def _selection_set(self, document: _Document, type_: GraphQLCompositeType, depth: int) -> str:
        rng, settings = self.rng, self.settings
        reusable = [
            f
            for f in document.fragments
            if f.type_name == type_.name and depth + f.height <= settings.max_depth
        ]
        if reusable and rng.random() < settings.reuse_fragment_rate * settings.named_fragment_rate:
            spread = f"...{rng.choice(reusable).name}"
            extra = self._selections(document, type_, depth, 1)
            return "{ " + " ".join([spread, *extra]) + " }"
        low, high = settings.fields_per_selection
        return (
            "{ " + " ".join(self._selections(document, type_, depth, rng.randint(low, high))) + " }"
        )

    def _selections(
        self, document: _Document, type_: GraphQLCompositeType, depth: int, count: int
    ) -> list[str]:
        if isinstance(type_, GraphQLObjectType):
            return self._selections_of_object(document, type_, depth, count)
        return self._selections_of_abstract(document, type_, depth, count)

    def _selections_of_object(
        self, document: _Document, type_: GraphQLObjectType, depth: int, count: int
    ) -> list[str]:
        rng, settings = self.rng, self.settings
        names = [
            name
            for name, definition in type_.fields.items()
            if f"{type_.name}.{name}" not in settings.excluded_fields
            and self._selectable(definition, depth)
        ]
        if self._exhausted(document):
            names = [
                n for n in names if not is_composite_type(get_named_type(type_.fields[n].type))
            ]
            count = 1
        selections: list[str] = []
        for name in rng.sample(names, min(count, len(names))):
            selections.append(self._field(document, type_, name, depth))
            if rng.random() < settings.repeat_rate:
                # The same field again (same arguments, no alias): its selections merge.
                selections.append(self._field(document, type_, name, depth, repeat=True))
        if rng.random() < settings.typename_rate or not selections:
            selections.append(self._typename(document))
        if self._exhausted(document):
            return selections
        if depth > 0 and rng.random() < settings.inline_fragment_rate:
            selections.append(self._inline_fragment(document, type_, depth, self._within(type_)))
        if depth > 0 and rng.random() < settings.named_fragment_rate:
            selections.append(self._named_spread(document, type_, depth, self._within(type_)))
        return selections

    def _selections_of_abstract(
        self,
        document: _Document,
        type_: GraphQLInterfaceType | GraphQLUnionType,
        depth: int,
        count: int,
    ) -> list[str]:
        rng, settings = self.rng, self.settings
        if self._exhausted(document):
            return [self._typename(document)]
        selections: list[str] = []
        if isinstance(type_, GraphQLInterfaceType):
            names = [
                name
                for name, definition in type_.fields.items()
                if self._selectable(definition, depth)
            ]
            for name in rng.sample(names, min(rng.randint(0, count), len(names))):
                selections.append(self._field(document, type_, name, depth))
        if rng.random() < 0.5 or not selections:
            selections.append(self._typename(document))
        possible = list(self.schema.get_possible_types(type_))
        for concrete in rng.sample(possible, rng.randint(1, min(2, len(possible)))):
            if rng.random() < settings.named_fragment_rate * 2:
                selections.append(self._named_spread(document, concrete, depth, concrete))
            else:
                selections.append(self._inline_fragment(document, type_, depth, concrete))
        if rng.random() < settings.inline_fragment_rate:
            # A fragment on the abstract type itself (or with no type condition).
            selections.append(self._inline_fragment(document, type_, depth, type_))
        if rng.random() < settings.inline_fragment_rate:
            # A fragment on an interface that some of the possible types implement.
            interfaces = {i.name: i for t in possible for i in t.interfaces}
            if interfaces:
                target = interfaces[rng.choice(sorted(interfaces))]
                selections.append(self._inline_fragment(document, type_, depth, target))
        return selections

    def _within(self, type_: GraphQLObjectType) -> GraphQLCompositeType:
        """The type condition of a fragment inside ``type_``: itself, or an interface of it."""
        if type_.interfaces and self.rng.random() < 0.5:
            interface: GraphQLInterfaceType = self.rng.choice(type_.interfaces)
            return interface
        return type_

    def _inline_fragment(
        self,
        document: _Document,
        parent: GraphQLCompositeType,
        depth: int,
        condition: GraphQLCompositeType,
    ) -> str:
        rng = self.rng
        head = "..."
        if condition is not parent or rng.random() < 0.6:
            head += f" on {condition.name}"
        directive = (
            self._directives(document) if rng.random() < self.settings.directive_rate else ""
        )
        low, high = self.settings.fields_per_selection
        inner = self._selections(document, condition, depth, rng.randint(low, high))
        return f"{head}{directive} {{ {' '.join(inner)} }}"

    def _named_spread(
        self, document: _Document, parent: GraphQLCompositeType, depth: int, condition: Any
    ) -> str:
        rng, settings = self.rng, self.settings
        reusable = [
            f
            for f in document.fragments
            if f.type_name == condition.name and depth + f.height <= settings.max_depth
        ]
        if reusable and rng.random() < settings.reuse_fragment_rate:
            fragment = rng.choice(reusable)
        else:
            name = document.fresh("F")
            low, high = settings.fields_per_selection
            inner = self._selections(document, condition, depth, rng.randint(low, high))
            text = f"fragment {name} on {condition.name} {{ {' '.join(inner)} }}"
            # Written for depth ``depth``: spread no deeper, it keeps within max_depth.
            fragment = _Fragment(name, condition.name, settings.max_depth - depth)
            document.fragments.append(fragment)
            document.fragment_texts.append(text)
        directive = self._directives(document) if rng.random() < settings.directive_rate else ""
        return f"...{fragment.name}{directive}"

    def _exhausted(self, document: _Document) -> bool:
        return document.fields >= self.settings.max_fields

    def _typename(self, document: _Document) -> str:
        if self.rng.random() < self.settings.alias_rate:
            return f"{document.fresh('t')}: __typename"
        return "__typename"

    def _selectable(self, definition: GraphQLField, depth: int) -> bool:
        named = get_named_type(definition.type)
        if is_composite_type(named) and depth + 1 > self.settings.max_depth:
            return False
        return all(
            self._can_supply(argument.type)
            for argument in definition.args.values()
            if is_non_null_type(argument.type) and argument.default_value is Undefined
        )

    def _can_supply(self, type_: GraphQLInputType) -> bool:
        named = get_named_type(type_)
        return isinstance(named, GraphQLScalarType | GraphQLEnumType)

    # --- one field -------------------------------------------------------------------

    def _field(
        self,
        document: _Document,
        parent: GraphQLObjectType | GraphQLInterfaceType,
        name: str,
        depth: int,
        *,
        repeat: bool = False,
    ) -> str:
        rng, settings = self.rng, self.settings
        definition = parent.fields[name]
        document.fields += 1
        aliased = not repeat and rng.random() < settings.alias_rate
        text = f"{document.fresh('a')}: {name}" if aliased else name
        if definition.args:
            key = (name, tuple(sorted(definition.args)))
            arguments = None if aliased else document.arguments_by_field.get(key)
            if arguments is None:
                arguments = self._arguments(document, parent, name, definition)
                if not aliased:
                    document.arguments_by_field[key] = arguments
            text += arguments
        if rng.random() < settings.directive_rate:
            text += self._directives(document)
        named = get_named_type(definition.type)
        if is_composite_type(named):
            assert isinstance(named, GraphQLObjectType | GraphQLInterfaceType | GraphQLUnionType)
            text += " " + self._selection_set(document, named, depth + 1)
        return text

    def _arguments(
        self,
        document: _Document,
        parent: GraphQLNamedType,
        name: str,
        definition: GraphQLField,
    ) -> str:
        rng, settings = self.rng, self.settings
        given: list[str] = []
        for arg_name, argument in definition.args.items():
            required = is_non_null_type(argument.type) and argument.default_value is Undefined
            source = settings.arguments.get(f"{parent.name}.{name}.{arg_name}") or (
                settings.arguments.get(f"*.{name}.{arg_name}")
            )
            value = source(rng) if source is not None else self._value(argument.type)
            if value is OMIT or (not required and rng.random() < settings.omit_optional_rate):
                if not required:
                    continue
                value = self._value(argument.type)
            if value is None and is_non_null_type(argument.type):
                value = self._value(argument.type)
            if rng.random() < settings.variable_rate:
                given.append(f"{arg_name}: {self._variable(document, argument.type, value)}")
            else:
                given.append(f"{arg_name}: {literal(argument.type, value)}")
        return f"({', '.join(given)})" if given else ""

    def _variable(self, document: _Document, type_: GraphQLInputType, value: Any) -> str:
        rng, settings = self.rng, self.settings
        name = document.fresh("v")
        definition = f"${name}: {type_}"
        nullable = not is_non_null_type(type_)
        if rng.random() < settings.variable_default_rate:
            # The default holds the value; the request leaves the variable out.
            document.definitions.append(f"{definition} = {literal(type_, value)}")
            return f"${name}"
        document.definitions.append(definition)
        if nullable and rng.random() < settings.null_variable_rate:
            document.variables[name] = None
        elif nullable and value is None and rng.random() < 0.5:
            pass  # left out: the argument is absent, not null
        else:
            document.variables[name] = value
        return f"${name}"

    def _value(self, type_: GraphQLInputType) -> Any:
        rng = self.rng
        if isinstance(type_, GraphQLNonNull):
            return self._value(type_.of_type)
        if isinstance(type_, GraphQLList):
            return [self._value(type_.of_type) for _ in range(rng.randint(0, 3))]
        if isinstance(type_, GraphQLEnumType):
            return rng.choice(list(type_.values))
        assert isinstance(type_, GraphQLScalarType), f"no values for {type_}"
        source = self.settings.scalars.get(type_.name)
        if source is not None:
            return source(rng)
        if type_.name == "Int":
            return rng.randint(0, 5)
        if type_.name == "Float":
            return rng.choice([0.5, 1.0, 2.25])
        if type_.name == "Boolean":
            return rng.random() < 0.5
        return rng.choice(["a", "e", "Luke", "", "zz"])

    def _directives(self, document: _Document) -> str:
        """``@skip``/``@include``, with a literal or a Boolean variable, sometimes both."""
        rng = self.rng
        chosen = rng.sample(["skip", "include"], rng.choice([1, 1, 1, 2]))
        parts = []
        for directive in chosen:
            if rng.random() < 0.6:
                name = document.fresh("b")
                document.definitions.append(f"${name}: Boolean!")
                document.variables[name] = rng.random() < 0.5
                condition = f"${name}"
            else:
                condition = "true" if rng.random() < 0.5 else "false"
            parts.append(f" @{directive}(if: {condition})")
        return "".join(parts)


def literal(type_: GraphQLInputType, value: Any) -> str:
    """``value`` written as a GraphQL literal of ``type_``."""
    if value is None:
        return "null"
    if isinstance(type_, GraphQLNonNull):
        return literal(type_.of_type, value)
    if isinstance(type_, GraphQLList):
        items: Sequence[Any] = value if isinstance(value, list) else [value]
        return "[" + ", ".join(literal(type_.of_type, item) for item in items) + "]"
    if isinstance(type_, GraphQLEnumType):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    return json.dumps(str(value))
