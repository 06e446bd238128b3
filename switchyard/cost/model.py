"""The weights and list sizes a schema declares with ``@cost`` and ``@listSize``.

Weights are strings in the specification and may be fractional; they are read
as exact ``Decimal`` values. Where the schema declares none, a field weighs 1
if it is an object, interface or union and 0 if it is a scalar or enum.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from graphql import DirectiveNode, GraphQLInputObjectType, GraphQLSchema, value_from_ast_untyped

from switchyard.cost.directives import build_cost_schema

if TYPE_CHECKING:
    import strawberry

DEFAULT_LIST_SIZE = 10
"""Items assumed of a list with no ``@listSize`` and no parent sizing it."""
COMPOSITE_WEIGHT = Decimal(1)
LEAF_WEIGHT = Decimal(0)

_MODEL_CACHE_KEY = "switchyard.cost.model"


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
