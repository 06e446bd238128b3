"""``EstimateCache``: estimates and measuring plans of recent operations, reused."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from graphql import DocumentNode, GraphQLSchema

from switchyard.cost.model import CostModel
from switchyard.cost.report import CostReport
from switchyard.cost.walk import _measure_data, _Walk, estimate_cost

DEFAULT_ESTIMATE_CACHE_SIZE = 512


class EstimateCache:
    """Estimates and measuring plans of recent operations, by document, operation and variables.

    Both depend only on those (and the model), and with a parser cache the
    same document object comes back for the same text, so a repeated
    operation skips the estimate walk and reuses the per-type plans its
    actual cost is measured with. Each entry holds its document, so the
    ``id`` in its key cannot be reused by another document while it lives.

    Given to ``CostAnalysis``, one for all requests::

        cache = EstimateCache(maxsize=256)
        CostAnalysis(settings, model=model, cache=cache)
    """

    def __init__(self, maxsize: int = DEFAULT_ESTIMATE_CACHE_SIZE) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[tuple[Any, ...], tuple[DocumentNode, Any]] = OrderedDict()

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
        if entry is not None and entry[0] is document:
            self._entries.move_to_end(key)
            return entry[1]
        value = compute()
        self._entries[key] = (document, value)
        if len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)
        return value
