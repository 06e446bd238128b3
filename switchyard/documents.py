"""The ``parse``, ``limits`` and ``validate`` stages: each query text parsed, checked and validated
once, within the limits.

    DocumentCache(max_bytes=64 * 1024 * 1024)

Documents are kept by their text in one LRU bounded by bytes, not entries: a
parsed document weighs up to about ``AST_BYTES_PER_CHARACTER`` bytes per
character of its text (measured with tracemalloc on dense queries), so many
small documents or a few large ones fit in the same memory. Before parsing,
the text's size is checked (``max_document_bytes``); the parser itself stops at
``max_tokens`` (graphql-core counts comments too), so an oversized document is
never read to its end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from graphql import DocumentNode, GraphQLError, GraphQLSchema, parse, validate
from strawberry.extensions import SchemaExtension

from switchyard.limits import LimitSettings, OperationLimits, exceeded, limit_error
from switchyard.lru import ByteLRU

VALIDATION_MAX_ERRORS = 20
"""graphql-core stops validating there: an invalid document costs no more than that."""
AST_BYTES_PER_CHARACTER = 128
ENTRY_OVERHEAD_BYTES = 2048
DEFAULT_CACHE_BYTES = 64 * 1024 * 1024


@dataclass(slots=True)
class CachedDocument:
    document: DocumentNode
    validated: dict[tuple[Any, ...], list[GraphQLError]] = field(default_factory=dict)
    """Validation errors by the tuple of rules they were found with."""


class DocumentCache:
    """Parsed documents and their validation results by query text, bounded by bytes.

    >>> cache = DocumentCache(max_bytes=1_000_000)
    >>> document = cache.parse("{ a }", {})
    >>> cache.parse("{ a }", {}) is document, len(cache)
    (True, 1)
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self._entries = ByteLRU[str, CachedDocument](max_bytes)
        self._pinned: dict[str, CachedDocument] = {}
        """Documents kept whatever the LRU evicts (trusted documents), looked up on a miss."""

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        return self._entries.size

    def parse(self, query: str, options: dict[str, Any]) -> DocumentNode:
        """The document of ``query``; a syntax error is raised, and not kept."""
        entry = self._entries.get(query) or (self._pinned.get(query) if self._pinned else None)
        if entry is not None:
            return entry.document
        document = parse(query, **options)
        weight = ENTRY_OVERHEAD_BYTES + AST_BYTES_PER_CHARACTER * len(query)
        self._entries.put(query, CachedDocument(document), weight=weight)
        return document

    def cached(self, query: str) -> DocumentNode | None:
        """The document of ``query`` if it was parsed and is still kept; never parses."""
        entry = self._entries.get(query) or (self._pinned.get(query) if self._pinned else None)
        return entry.document if entry is not None else None

    def pin(self, query: str) -> DocumentNode:
        """Parse ``query`` (no token limit: it is trusted) and keep it for good."""
        entry = self._pinned.get(query)
        if entry is None:
            entry = self._pinned[query] = CachedDocument(parse(query))
        return entry.document

    def validate(
        self,
        schema: GraphQLSchema,
        query: str,
        document: DocumentNode,
        rules: Sequence[Any],
        limits: OperationLimits | None = None,
        *,
        hide_suggestions: bool = False,
    ) -> list[GraphQLError]:
        """The limits' refusals for ``document``, else ``validate``'s errors; found once per
        set of rules."""
        key = tuple(rules)
        entry = self._entries.get(query) or (self._pinned.get(query) if self._pinned else None)
        if entry is not None and entry.document is document:
            errors = entry.validated.get(key)
            if errors is None:
                errors = _validate(schema, document, key, limits, hide_suggestions)
                entry.validated[key] = errors
            return errors
        return _validate(schema, document, key, limits, hide_suggestions)


class CachedDocuments(SchemaExtension):
    """The ``parse`` and ``validate`` stages over one ``DocumentCache``."""

    def __init__(
        self,
        cache: DocumentCache,
        limits: LimitSettings,
        shape: OperationLimits | None,
        *,
        hide_suggestions: bool,
    ) -> None:
        self.cache = cache
        self.limits = limits
        self.shape = shape
        self.hide_suggestions = hide_suggestions

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        query = context.query
        if query is not None and context.graphql_document is None:
            context.graphql_document = self._parse(query)
        yield

    def _parse(self, query: str) -> DocumentNode:
        limits = self.limits
        # Characters are at most 4 bytes: counting bytes is needed only near the limit.
        if len(query) * 4 > limits.max_document_bytes:
            size = len(query.encode())
            if exceeded(limits, "max_document_bytes", size):
                raise limit_error(
                    "max_document_bytes",
                    limits.max_document_bytes,
                    size,
                    f"The document has {size} bytes; the limit is {limits.max_document_bytes}.",
                )
        max_tokens = limits.max_tokens if "max_tokens" not in limits.warn else 0
        options = {"max_tokens": max_tokens} if max_tokens else {}
        try:
            return self.cache.parse(query, options)
        except GraphQLError as error:
            if max_tokens and error.message == _too_many_tokens(max_tokens):
                raise limit_error(
                    "max_tokens",
                    max_tokens,
                    max_tokens + 1,
                    f"The document has more than {max_tokens} tokens; parsing stopped there.",
                ) from None
            raise

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is not None and context.query is not None:
            context.pre_execution_errors = self.cache.validate(
                context.schema._schema,
                context.query,
                context.graphql_document,
                context.validation_rules,
                self.shape,
                hide_suggestions=self.hide_suggestions,
            )
        yield

    @classmethod
    def factory(
        cls, cache: DocumentCache, limits: LimitSettings, *, hide_suggestions: bool
    ) -> Callable[[], SchemaExtension]:
        """``hide_suggestions`` (production): graphql-core does not even compute them."""
        shape = OperationLimits.from_settings(limits)
        return lambda: cls(cache, limits, shape, hide_suggestions=hide_suggestions)


def _validate(
    schema: GraphQLSchema,
    document: DocumentNode,
    rules: tuple[Any, ...],
    limits: OperationLimits | None,
    hide_suggestions: bool,
) -> list[GraphQLError]:
    refusals = limits.check(document) if limits is not None else []
    if refusals:
        return refusals
    return validate(
        schema,
        document,
        rules,
        max_errors=VALIDATION_MAX_ERRORS,
        hide_suggestions=hide_suggestions,
    )


def _too_many_tokens(max_tokens: int) -> str:
    # graphql-core's wording (3.3), the one way its parser says it stopped at the limit.
    return f"Syntax Error: Document contains more than {max_tokens} tokens. Parsing aborted."
