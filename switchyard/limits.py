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
the operation here, on the parsed document before validation (the verdict is
cached with it), variables' nesting when the body is decoded, and the
response's bytes and error count when it is shaped. 0 turns a limit off.

The shape is measured in one walk, through fragments::

    >>> from graphql import parse
    >>> document = parse("{ a { b { c } } x: a @skip(if: true) { b } }")
    >>> shape = measure(document.definitions[0], {})
    >>> shape.depth, shape.aliases, shape.root_fields, shape.directives
    (3, 1, 2, 1)
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from pydantic import BaseModel, ConfigDict, Field

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
    "max_repeated_fields",
    "max_directives_per_field",
    "max_directives",
    "max_fragments",
    "max_variable_depth",
    "max_response_bytes",
    "max_errors",
]


class LimitSettings(BaseModel):
    """``[limits]``: what one request may ask; 0 turns a limit off.

    The defaults were chosen with ``python -m bench.limits``: the worst documents
    they admit parse, pass the limits and validate in under 50 ms on a shared
    2-core machine (graphql-core parses about 100 tokens a millisecond, and its
    overlapping-fields rule is quadratic in fields of one name, hence
    ``max_repeated_fields``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_body_bytes: int = Field(256 * 1024, ge=0, description="request body (413)")
    max_header_count: int = Field(100, ge=0, description="request headers (431)")
    max_header_bytes: int = Field(32 * 1024, ge=0, description="all request headers (431)")
    max_document_bytes: int = Field(64 * 1024, ge=0, description="the query text")
    max_tokens: int = Field(2000, ge=0, description="lexical tokens, comments included")
    max_depth: int = Field(15, ge=0, description="nested fields (introspection not counted)")
    max_aliases: int = Field(30, ge=0, description="aliased fields, fragments included")
    max_root_fields: int = Field(20, ge=0, description="fields at the operation's root")
    max_selections: int = Field(50, ge=0, description="fields in one selection set")
    max_repeated_fields: int = Field(
        5, ge=0, description="fields of one response name in one selection set"
    )
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
    """What the limits measure of one operation (or of one selection set in it)."""

    depth: int = 0
    aliases: int = 0
    fields: int = 0
    """Fields at this level, those of fragments spread here included (root fields, at the root)."""
    widest_selection: int = 0
    names: Counter[str] = field(default_factory=Counter)
    """Response names at this level, fragments' included."""
    most_repeated: int = 0
    """The most fields sharing one response name in any one selection set: graphql-core's
    check that such fields merge compares them pairwise."""
    directives: int = 0
    most_directives_on_a_field: int = 0
    fragments: frozenset[str] = frozenset()

    @property
    def root_fields(self) -> int:
        return self.fields

    def add_below(self, child: Shape) -> None:
        """What a field's own selection set holds."""
        self.aliases += child.aliases
        self.directives += child.directives
        self.widest_selection = max(self.widest_selection, child.widest_selection)
        self.most_repeated = max(self.most_repeated, child.most_repeated)
        self.most_directives_on_a_field = max(
            self.most_directives_on_a_field, child.most_directives_on_a_field
        )
        self.fragments |= child.fragments

    def add_alongside(self, part: Shape) -> None:
        """What a fragment brings to the level it is spread at."""
        self.add_below(part)
        self.fields += part.fields
        self.names.update(part.names)
        self.depth = max(self.depth, part.depth)


def measure(
    operation: OperationDefinitionNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> Shape:
    """The shape of ``operation``, each fragment counted wherever it is spread.

    Each fragment is measured once and its shape reused, so fragments spreading
    each other twice over cannot make the measure exponential; a cycle (which
    validation reports) counts as empty.
    """
    shape = _Measure(fragments).selection_set(operation.selection_set)
    shape.directives += len(operation.directives or ())
    return shape


class _Measure:
    def __init__(self, fragments: Mapping[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments
        self.measured: dict[str, Shape] = {}
        self.entered: set[str] = set()

    def selection_set(self, selection_set: SelectionSetNode) -> Shape:
        shape = Shape()
        for selection in selection_set.selections:
            directives = len(selection.directives or ())
            shape.directives += directives
            if isinstance(selection, FieldNode):
                shape.fields += 1
                shape.names[(selection.alias or selection.name).value] += 1
                shape.aliases += selection.alias is not None
                shape.most_directives_on_a_field = max(shape.most_directives_on_a_field, directives)
                below = Shape()
                if selection.selection_set is not None:
                    below = self.selection_set(selection.selection_set)
                    shape.add_below(below)
                if not selection.name.value.startswith("__"):
                    shape.depth = max(shape.depth, 1 + below.depth)
            elif isinstance(selection, InlineFragmentNode):
                shape.add_alongside(self.selection_set(selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                shape.add_alongside(self.fragment(name))
                shape.fragments |= {name}
        shape.widest_selection = max(shape.widest_selection, shape.fields)
        if shape.names:
            shape.most_repeated = max(shape.most_repeated, max(shape.names.values()))
        return shape

    def fragment(self, name: str) -> Shape:
        known = self.measured.get(name)
        if known is not None:
            return known
        definition = self.fragments.get(name)
        if definition is None or name in self.entered:
            return Shape()
        self.entered.add(name)
        shape = self.measured[name] = self.selection_set(definition.selection_set)
        self.entered.discard(name)
        return shape


def _refusals(settings: LimitSettings, shape: Shape) -> Iterator[tuple[LimitName, int, str]]:
    checks: list[tuple[LimitName, int, str]] = [
        ("max_depth", shape.depth, "Query depth {m} exceeds the maximum of {a}."),
        ("max_aliases", shape.aliases, "{m} aliases found. Allowed: {a}."),
        ("max_root_fields", shape.root_fields, "{m} root fields found. Allowed: {a}."),
        ("max_selections", shape.widest_selection, "{m} fields in one selection. Allowed: {a}."),
        (
            "max_repeated_fields",
            shape.most_repeated,
            "{m} fields of one name in one selection. Allowed: {a}.",
        ),
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


class OperationLimits:
    """The ``limits`` stage: the shape of a parsed document, checked before graphql-core's
    validation (its overlapping-fields rule is quadratic in fields of one name), so a
    refused document costs a linear walk and nothing more."""

    SHAPE_LIMITS: tuple[LimitName, ...] = (
        "max_depth",
        "max_aliases",
        "max_root_fields",
        "max_selections",
        "max_repeated_fields",
        "max_directives_per_field",
        "max_directives",
        "max_fragments",
    )

    def __init__(self, settings: LimitSettings) -> None:
        self.settings = settings

    @classmethod
    def from_settings(cls, settings: LimitSettings) -> OperationLimits | None:
        """The stage's unit, or None when every shape limit is off."""
        if not any(getattr(settings, name) for name in cls.SHAPE_LIMITS):
            return None
        return cls(settings)

    def check(self, document: DocumentNode) -> list[GraphQLError]:
        """The refusals of every operation in ``document`` (empty when it is within limits)."""
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        errors = []
        for definition in document.definitions:
            if isinstance(definition, OperationDefinitionNode):
                shape = measure(definition, fragments)
                for name, measured, message in _refusals(self.settings, shape):
                    allowed = getattr(self.settings, name)
                    errors.append(limit_error(name, allowed, measured, message, definition))
        return errors


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
