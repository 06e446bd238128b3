"""Operation limits: what one request may ask of the gateway, each refused before anything runs.

    [limits]
    max_depth = 12
    max_aliases = 30
    warn = ["max_aliases"]   # log these instead of refusing (to watch before enforcing)

A refusal is an ``OPERATION_LIMIT_EXCEEDED`` error whose ``extensions.limit``
names the limit with the allowed and the measured value::

    {"message": "Query depth 14 exceeds the maximum of 12.",
     "extensions": {"code": "OPERATION_LIMIT_EXCEEDED",
                    "limit": {"name": "max_depth", "allowed": 12, "measured": 14}}}

Where each is checked: body and header sizes at the HTTP edge
(``switchyard.http_limits``), document bytes and tokens while parsing
(``switchyard.documents``: the parser stops at the token limit), the shape of
the operation as a validation rule here (cached with validation), variables'
nesting when the body is decoded, and the response's bytes and error count
when it is shaped. 0 turns a limit off.

The shape is measured in one walk, through fragments::

    >>> from graphql import parse
    >>> document = parse("{ a { b { c } } x: a @skip(if: true) { b } }")
    >>> shape = measure(document.definitions[0], {})
    >>> shape.depth, shape.aliases, shape.root_fields, shape.directives
    (3, 1, 2, 1)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)
from pydantic import BaseModel, ConfigDict, Field
from strawberry.extensions import SchemaExtension

from switchyard.errors import ErrorCode

logger = logging.getLogger("switchyard.limits")

LimitName = Literal[
    "max_body_bytes",
    "max_header_count",
    "max_header_bytes",
    "max_document_bytes",
    "max_tokens",
    "max_depth",
    "max_aliases",
    "max_root_fields",
    "max_selections",
    "max_directives_per_field",
    "max_directives",
    "max_fragments",
    "max_variable_depth",
    "max_response_bytes",
    "max_errors",
]


class LimitSettings(BaseModel):
    """``[limits]``: what one request may ask; 0 turns a limit off.

    The defaults were chosen with ``python -m bench.limits``: the worst document
    they admit parses and validates in well under 50 ms on a 2-core machine.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_body_bytes: int = Field(256 * 1024, ge=0, description="request body (413)")
    max_header_count: int = Field(100, ge=0, description="request headers (431)")
    max_header_bytes: int = Field(32 * 1024, ge=0, description="all request headers (431)")
    max_document_bytes: int = Field(64 * 1024, ge=0, description="the query text")
    max_tokens: int = Field(4000, ge=0, description="lexical tokens, comments included")
    max_depth: int = Field(15, ge=0, description="nested fields (introspection not counted)")
    max_aliases: int = Field(30, ge=0, description="aliased fields, fragments included")
    max_root_fields: int = Field(20, ge=0, description="fields at the operation's root")
    max_selections: int = Field(200, ge=0, description="fields in one selection set")
    max_directives_per_field: int = Field(4, ge=0)
    max_directives: int = Field(50, ge=0, description="directives in the whole operation")
    max_fragments: int = Field(30, ge=0, description="distinct fragments spread")
    max_variable_depth: int = Field(10, ge=0, description="nesting of variables' values")
    max_response_bytes: int = Field(8 * 1024 * 1024, ge=0, description="the JSON answer")
    max_errors: int = Field(100, ge=0, description="errors in one answer; the rest are counted")
    warn: list[LimitName] = Field(
        default_factory=list, description="limits that log a warning instead of refusing"
    )


def limit_error(
    name: LimitName, allowed: int, measured: int, message: str, nodes: Any = None
) -> GraphQLError:
    """The one shape of a refusal."""
    return GraphQLError(
        message,
        nodes,
        extensions={
            "code": ErrorCode.OPERATION_LIMIT_EXCEEDED.value,
            "limit": {"name": name, "allowed": allowed, "measured": measured},
        },
    )


def exceeded(settings: LimitSettings, name: LimitName, measured: int) -> bool:
    """Whether ``measured`` is over the limit and the limit refuses; a ``warn`` limit only logs."""
    allowed: int = getattr(settings, name)
    if not allowed or measured <= allowed:
        return False
    if name in settings.warn:
        logger.warning(
            "operation over a limit: %s = %d, allowed %d (warn only)",
            name,
            measured,
            allowed,
            extra={"stage": "limits"},
        )
        return False
    return True


@dataclass(slots=True)
class Shape:
    """What the limits measure of one operation."""

    depth: int = 0
    aliases: int = 0
    root_fields: int = 0
    widest_selection: int = 0
    directives: int = 0
    most_directives_on_a_field: int = 0
    fragments: set[str] = field(default_factory=set)


def measure(
    operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> Shape:
    """The shape of ``operation``, each fragment counted where it is spread."""
    shape = Shape(root_fields=_count_fields(operation.selection_set, fragments, frozenset()))
    shape.directives = len(operation.directives or ())
    shape.depth = _walk(operation.selection_set, fragments, frozenset(), shape)
    return shape


def _count_fields(
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    seen: frozenset[str],
) -> int:
    """Fields a selection set selects, fragments' own fields included."""
    total = 0
    for selection in selection_set.selections if selection_set else ():
        if isinstance(selection, FieldNode):
            total += 1
        else:
            inner, inner_seen = _inner(selection, fragments, seen)
            total += _count_fields(inner, fragments, inner_seen)
    return total


def _inner(
    selection: Node, fragments: Mapping[str, FragmentDefinitionNode], seen: frozenset[str]
) -> tuple[SelectionSetNode | None, frozenset[str]]:
    """The selection set a fragment brings; a fragment is not entered twice on one path, so a
    cycle (which validation reports) cannot recurse forever."""
    if isinstance(selection, InlineFragmentNode):
        return selection.selection_set, seen
    if isinstance(selection, FragmentSpreadNode):
        name = selection.name.value
        fragment = fragments.get(name)
        if fragment is not None and name not in seen:
            return fragment.selection_set, seen | {name}
    return None, seen


def _walk(
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    seen: frozenset[str],
    shape: Shape,
) -> int:
    """Accumulate into ``shape``; return the depth under ``selection_set``."""
    if selection_set is None:
        return 0
    shape.widest_selection = max(
        shape.widest_selection, _count_fields(selection_set, fragments, seen)
    )
    deepest = 0
    for selection in selection_set.selections:
        directives = len(selection.directives or ())
        shape.directives += directives
        if isinstance(selection, FieldNode):
            shape.most_directives_on_a_field = max(shape.most_directives_on_a_field, directives)
            shape.aliases += selection.alias is not None
            depth = _walk(selection.selection_set, fragments, seen, shape)
            if not selection.name.value.startswith("__"):
                deepest = max(deepest, 1 + depth)
            continue
        if isinstance(selection, FragmentSpreadNode):
            shape.fragments.add(selection.name.value)
        inner, inner_seen = _inner(selection, fragments, seen)
        deepest = max(deepest, _walk(inner, fragments, inner_seen, shape))
    return deepest


def _refusals(settings: LimitSettings, shape: Shape) -> Iterator[tuple[LimitName, int, str]]:
    checks: list[tuple[LimitName, int, str]] = [
        ("max_depth", shape.depth, "Query depth {m} exceeds the maximum of {a}."),
        ("max_aliases", shape.aliases, "{m} aliases found. Allowed: {a}."),
        ("max_root_fields", shape.root_fields, "{m} root fields found. Allowed: {a}."),
        ("max_selections", shape.widest_selection, "{m} fields in one selection. Allowed: {a}."),
        (
            "max_directives_per_field",
            shape.most_directives_on_a_field,
            "{m} directives on one field. Allowed: {a}.",
        ),
        ("max_directives", shape.directives, "{m} directives found. Allowed: {a}."),
        ("max_fragments", len(shape.fragments), "{m} fragments found. Allowed: {a}."),
    ]
    for name, measured, message in checks:
        if exceeded(settings, name, measured):
            yield name, measured, message.format(m=measured, a=getattr(settings, name))


def limits_rule(settings: LimitSettings) -> type[ValidationRule]:
    """A validation rule enforcing the shape limits on every operation of a document."""

    class OperationLimitsRule(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.fragments = {
                d.name.value: d
                for d in context.document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }

        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> Any:
            shape = measure(node, self.fragments)
            for name, measured, message in _refusals(settings, shape):
                allowed = getattr(settings, name)
                self.report_error(limit_error(name, allowed, measured, message, node))
            # Fields below are not visited again: the measure saw them all.
            return self.SKIP

    return OperationLimitsRule


class OperationLimits(SchemaExtension):
    """The ``limits`` stage: adds the shape rule to validation. The rule class is made once,
    so validation results stay cached."""

    def __init__(self, rule: type[ValidationRule]) -> None:
        self.rule = rule

    def on_operation(self) -> Iterator[None]:
        rules = self.execution_context.validation_rules
        self.execution_context.validation_rules = (*rules, self.rule)
        yield

    @classmethod
    def factory(cls, settings: LimitSettings) -> Callable[[], SchemaExtension] | None:
        """The stage's unit, or None when every shape limit is off."""
        names: tuple[LimitName, ...] = (
            "max_depth",
            "max_aliases",
            "max_root_fields",
            "max_selections",
            "max_directives_per_field",
            "max_directives",
            "max_fragments",
        )
        if not any(getattr(settings, name) for name in names):
            return None
        rule = limits_rule(settings)
        return lambda: cls(rule)


def nesting_depth(value: object, limit: int) -> int:
    """How deeply ``value`` (decoded JSON) nests, counted up to ``limit + 1`` at most.

    >>> nesting_depth({"a": [1, {"b": []}]}, 10)
    4
    """
    depth = 0
    level: list[object] = [value]
    while level and depth <= limit:
        children: list[object] = []
        for item in level:
            if isinstance(item, dict):
                children.extend(item.values())
            elif isinstance(item, list):
                children.extend(item)
        if children or any(isinstance(item, dict | list) for item in level):
            depth += 1
        level = children
    return depth
