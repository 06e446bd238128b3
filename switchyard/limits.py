"""The ``limits`` stage: operations too deep or too aliased are refused before anything runs.

    [limits]
    max_depth = 20      # nested selections; introspection fields are not counted
    max_aliases = 50    # aliased fields in the whole operation, fragments included

Both are graphql-core validation rules, so a refusal is a
``GRAPHQL_VALIDATION_FAILED`` error (HTTP 400) with an exact message, and the
verdict is cached with the rest of validation.

    >>> from graphql import parse
    >>> operation_depth(parse("{ a { b { c } } }").definitions[0], {})
    3
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from pydantic import BaseModel, ConfigDict, Field
from strawberry.extensions import SchemaExtension

DEFAULT_MAX_DEPTH = 20
DEFAULT_MAX_ALIASES = 50


class LimitSettings(BaseModel):
    """``[limits]``: 0 turns a limit off."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_depth: int = Field(DEFAULT_MAX_DEPTH, ge=0)
    max_aliases: int = Field(DEFAULT_MAX_ALIASES, ge=0)


def operation_depth(
    selection_owner: OperationDefinitionNode
    | FragmentDefinitionNode
    | FieldNode
    | InlineFragmentNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    _seen: frozenset[str] = frozenset(),
) -> int:
    """The deepest chain of nested fields, through fragments, skipping introspection."""
    return _depth(selection_owner.selection_set, fragments, _seen)


def _depth(
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    seen: frozenset[str],
) -> int:
    if selection_set is None:
        return 0
    deepest = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value.startswith("__"):
                continue
            deepest = max(deepest, 1 + _depth(selection.selection_set, fragments, seen))
        elif isinstance(selection, InlineFragmentNode):
            deepest = max(deepest, _depth(selection.selection_set, fragments, seen))
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in seen:
                deepest = max(deepest, _depth(fragment.selection_set, fragments, seen | {name}))
    return deepest


def count_aliases(
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    seen: frozenset[str] = frozenset(),
) -> int:
    """Aliased fields under ``selection_set``, each fragment spread counted where it is used."""
    if selection_set is None:
        return 0
    total = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            total += (selection.alias is not None) + count_aliases(
                selection.selection_set, fragments, seen
            )
        elif isinstance(selection, InlineFragmentNode):
            total += count_aliases(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is not None and name not in seen:
                total += count_aliases(fragment.selection_set, fragments, seen | {name})
    return total


def limits_rule(settings: LimitSettings) -> type[ValidationRule]:
    """A validation rule enforcing ``settings`` on every operation of a document."""

    class OperationLimitsRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            document = context.document
            self.fragments = {
                d.name.value: d
                for d in document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }

        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            if settings.max_depth:
                depth = operation_depth(node, self.fragments)
                if depth > settings.max_depth:
                    self.report_error(
                        GraphQLError(
                            f"Query depth {depth} exceeds the maximum of {settings.max_depth}.",
                            node,
                        )
                    )
            if settings.max_aliases:
                aliases = count_aliases(node.selection_set, self.fragments)
                if aliases > settings.max_aliases:
                    self.report_error(
                        GraphQLError(
                            f"{aliases} aliases found. Allowed: {settings.max_aliases}.", node
                        )
                    )

    return OperationLimitsRule


class OperationLimits(SchemaExtension):
    """Adds the limits rule to validation; made once, so validation results stay cached."""

    def __init__(self, rule: type[ValidationRule]) -> None:
        self.rule = rule

    def on_operation(self):  # type: ignore[no-untyped-def]
        rules = self.execution_context.validation_rules
        self.execution_context.validation_rules = (*rules, self.rule)
        yield

    @classmethod
    def factory(cls, settings: LimitSettings) -> Callable[[], SchemaExtension] | None:
        """The stage's unit, or None when every limit is off."""
        if not settings.max_depth and not settings.max_aliases:
            return None
        rule = limits_rule(settings)
        return lambda: cls(rule)
