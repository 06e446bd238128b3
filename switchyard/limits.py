"""The ``limits`` stage: operations too deep or too aliased are refused before anything runs.

    [limits]
    max_depth = 20      # nested selections; introspection fields are not counted
    max_aliases = 50    # aliased fields in the whole operation, fragments included

Both are graphql-core validation rules, so a refusal is a
``GRAPHQL_VALIDATION_FAILED`` error (HTTP 400) with an exact message, and the
verdict is cached with the rest of validation.

    >>> from graphql import parse
    >>> measure(parse("{ a { b { c } } x: a { b } }").definitions[0].selection_set, {})
    (3, 1)
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


def measure(
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    seen: frozenset[str] = frozenset(),
) -> tuple[int, int]:
    """``(depth, aliases)`` under ``selection_set``; a fragment is not entered twice on one
    path, so a cycle (which validation reports) cannot recurse forever."""
    if selection_set is None:
        return 0, 0
    deepest = aliases = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            depth, below = measure(selection.selection_set, fragments, seen)
            if not selection.name.value.startswith("__"):
                deepest = max(deepest, 1 + depth)
            aliases += (selection.alias is not None) + below
            continue
        inner, inner_seen = None, seen
        if isinstance(selection, InlineFragmentNode):
            inner = selection.selection_set
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is None or name in seen:
                continue
            inner, inner_seen = fragment.selection_set, seen | {name}
        depth, below = measure(inner, fragments, inner_seen)
        deepest, aliases = max(deepest, depth), aliases + below
    return deepest, aliases


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
            depth, aliases = measure(node.selection_set, self.fragments)
            if settings.max_depth and depth > settings.max_depth:
                message = f"Query depth {depth} exceeds the maximum of {settings.max_depth}."
                self.report_error(GraphQLError(message, node))
            if settings.max_aliases and aliases > settings.max_aliases:
                message = f"{aliases} aliases found. Allowed: {settings.max_aliases}."
                self.report_error(GraphQLError(message, node))

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
