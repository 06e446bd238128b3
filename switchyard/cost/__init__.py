"""What an operation costs, per the GraphQL Cost Directives specification (IBM, GraphQL Foundation).

The estimate is static: it needs the schema's ``@cost``/``@listSize`` and the
operation, not the backends::

    model = CostModel.from_sdl(strawberry_schema.as_str())
    query = parse("{ users(first: 5) { edges { node { name } } } }")
    report = estimate_cost(model, graphql_schema, query)
    report.cost             # 1 (users) + 1 (edges) + 5 x 1 (node) = 7
    print(explain(report))  # the same, field by field

The estimate follows the rules in ``walk``; the actual cost walks the
response instead, and is never less than the work the request did (one point
per upstream call, one per item received, counted by ``work.WorkMeter``
whether or not the data survived null propagation). ``CostAnalysis`` is the
Strawberry extension that estimates before any resolver runs and measures
after. Weights are strings in the specification and may be fractional; sums
are exact (``Decimal``) and ``cost`` rounds up to whole points.

The modules, each importing only those listed before it:

- ``annotations``: ``@cost`` and ``@listSize`` as Strawberry schema directives, for graphs.
- ``directives``: the SDL of ``@cost`` and ``@listSize``, ``build_cost_schema``.
- ``errors``: ``CostError`` and the refusals ``SlicingArgumentError`` and ``CostLimitExceeded``.
- ``model``: ``CostModel``, the weights and list sizes a schema declares.
- ``report``: ``FieldCost`` and ``CostReport``, shown by ``explain`` and ``as_json``.
- ``walk``: ``estimate_cost`` and ``actual_cost``, and the rules they follow.
- ``cache``: ``EstimateCache``, estimates of repeated operations.
- ``settings``: ``CostSettings``, the ``[cost]`` config section.
- ``work``: ``WorkMeter``, the upstream calls and items of one request, ``work_of``.
- ``measurement``: ``CostMeasurement`` on the request context, ``measurement_of``.
- ``extension``: ``CostAnalysis``.
"""

from switchyard.cost.annotations import Cost, ListSize, cost, list_size
from switchyard.cost.cache import DEFAULT_ESTIMATE_CACHE_BYTES, EstimateCache
from switchyard.cost.directives import COST_DIRECTIVES_SDL, build_cost_schema
from switchyard.cost.errors import (
    CostError,
    CostLimitExceeded,
    SlicingArgumentError,
)
from switchyard.cost.extension import ActualHook, CostAnalysis, EstimateHook
from switchyard.cost.measurement import COST_ATTRIBUTE, CostMeasurement, measurement_of
from switchyard.cost.model import (
    COMPOSITE_WEIGHT,
    DEFAULT_LIST_SIZE,
    LEAF_WEIGHT,
    CostModel,
    SizeRule,
)
from switchyard.cost.report import CostReport, FieldCost, as_json, explain
from switchyard.cost.settings import DEFAULT_MAX_COST, DEFAULT_MODE, CostSettings
from switchyard.cost.walk import actual_cost, estimate_cost
from switchyard.cost.work import WORK_ATTRIBUTE, WorkMeter, work_of

__all__ = [
    "COMPOSITE_WEIGHT",
    "COST_ATTRIBUTE",
    "COST_DIRECTIVES_SDL",
    "DEFAULT_ESTIMATE_CACHE_BYTES",
    "DEFAULT_LIST_SIZE",
    "DEFAULT_MAX_COST",
    "DEFAULT_MODE",
    "LEAF_WEIGHT",
    "WORK_ATTRIBUTE",
    "ActualHook",
    "Cost",
    "CostAnalysis",
    "CostError",
    "CostLimitExceeded",
    "CostMeasurement",
    "CostModel",
    "CostReport",
    "CostSettings",
    "EstimateCache",
    "EstimateHook",
    "FieldCost",
    "ListSize",
    "SizeRule",
    "SlicingArgumentError",
    "WorkMeter",
    "actual_cost",
    "as_json",
    "build_cost_schema",
    "cost",
    "estimate_cost",
    "explain",
    "list_size",
    "measurement_of",
    "work_of",
]
