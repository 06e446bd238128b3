"""``EstimateCache``: estimates and measuring plans of recent operations, reused."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from graphql import DocumentNode, GraphQLSchema

from switchyard.cost.model import CostModel
from switchyard.cost.report import CostReport
from switchyard.cost.walk import _measure_data, _Walk, estimate_cost
from switchyard.lru import ByteLRU

DEFAULT_ESTIMATE_CACHE_BYTES = 16 * 1024 * 1024
PLAN_BYTES_PER_CHARACTER = 64
"""An estimate or a measuring plan holds a few objects per field: bytes per character of
the document's text, an upper bound measured with tracemalloc."""
ENTRY_OVERHEAD_BYTES = 1024


class EstimateCache:
    """Estimates and measuring plans of recent operations, by document, operation and variables.

    Both depend only on those (and the model), and with a document cache the
    same document object comes back for the same text, so a repeated
    operation skips the estimate walk and reuses the per-type plans its
    actual cost is measured with. Entries are bounded by their estimated
    bytes, and refer to their document weakly: the document cache alone
    decides how long a document lives, and an entry whose document is gone
    (so that its ``id`` could be reused) is never returned.

    Given to ``CostAnalysis``, one for all requests::

        cache = EstimateCache(max_bytes=16 * 1024 * 1024)
        CostAnalysis(settings, model=model, cache=cache)
    """

    def __init__(self, max_bytes: int = DEFAULT_ESTIMATE_CACHE_BYTES) -> None:
        self._entries = ByteLRU[tuple[Any, ...], tuple[weakref.ref[DocumentNode], Any]](max_bytes)

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
        if entry is not None and entry[0]() is document:
            return entry[1]
        value = compute()
        text = len(document.loc.source.body) if document.loc else 0
        weight = ENTRY_OVERHEAD_BYTES + PLAN_BYTES_PER_CHARACTER * text + len(variables_key)
        self._entries.put(key, (weakref.ref(document), value), weight=weight)
        return value
