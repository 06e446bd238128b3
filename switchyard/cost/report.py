"""The estimate of one operation, field by field, and how it is presented.

Sums are exact (``Decimal``); ``CostReport.cost`` rounds up to whole points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from switchyard.cost.model import LEAF_WEIGHT


@dataclass(frozen=True, slots=True)
class FieldCost:
    """One field of the estimate: ``cost = weight + multiplier x sum(children costs)``."""

    path: str
    """Response keys from the root: ``users.edges.node``."""
    coordinate: str
    """Where the field is defined: ``UserEdge.node``."""
    type: str
    weight: Decimal
    """The field's own cost: its weight plus argument and directive costs, at least 0."""
    multiplier: int
    """How many times the children count (the list size, or 1)."""
    cost: Decimal
    children: tuple[FieldCost, ...] = ()


@dataclass(frozen=True, slots=True)
class CostReport:
    """The estimate of one operation, field by field."""

    operation: str
    """``query``, ``mutation`` or ``subscription``."""
    operation_name: str | None
    root_weight: Decimal
    fields: tuple[FieldCost, ...]
    total: Decimal

    @property
    def cost(self) -> int:
        """Whole points, rounded up."""
        return math.ceil(self.total)


def explain(report: CostReport) -> str:
    """The estimate as an indented tree: ``cost = weight + multiplier x children``.

    >>> from switchyard.cost import CostModel, build_cost_schema, estimate_cost
    >>> schema = build_cost_schema('type Query { me: User } type User { name: String }')
    >>> print(explain(estimate_cost(CostModel.from_schema(schema), schema, "{ me { name } }")))
    query cost 1
      me  Query.me: User  1 = 1 + 0
        name  User.name: String  0
    """
    lines = [f"{report.operation} {report.operation_name or ''}".rstrip() + f" cost {report.cost}"]
    if report.root_weight:
        lines.append(f"  ({report.root_weight} for the {report.operation} itself)")

    def add(cost: FieldCost, depth: int) -> None:
        key = cost.path.rsplit(".", 1)[-1]
        line = f"{'  ' * depth}{key}  {cost.coordinate}: {cost.type}  {_number(cost.cost)}"
        if cost.children or cost.cost != cost.weight:
            children = _number(sum((c.cost for c in cost.children), LEAF_WEIGHT))
            times = f"{cost.multiplier} x " if cost.multiplier != 1 else ""
            line += f" = {_number(cost.weight)} + {times}{children}"
        lines.append(line)
        for child in cost.children:
            add(child, depth + 1)

    for field_cost in report.fields:
        add(field_cost, 1)
    return "\n".join(lines)


def as_json(report: CostReport) -> dict[str, Any]:
    """The estimate as JSON, for ``extensions`` (``X-Switchyard-Cost: explain``).

    >>> from switchyard.cost import CostModel, build_cost_schema, estimate_cost
    >>> schema = build_cost_schema('type Query { me: User } type User { name: String }')
    >>> as_json(estimate_cost(CostModel.from_schema(schema), schema, "{ me { name } }"))["cost"]
    1
    """

    def field_json(cost: FieldCost) -> dict[str, Any]:
        return {
            "path": cost.path,
            "field": cost.coordinate,
            "type": cost.type,
            "weight": _json_number(cost.weight),
            "multiplier": cost.multiplier,
            "cost": _json_number(cost.cost),
            "children": [field_json(child) for child in cost.children],
        }

    return {
        "operation": report.operation,
        "operationName": report.operation_name,
        "cost": report.cost,
        "rootWeight": _json_number(report.root_weight),
        "fields": [field_json(f) for f in report.fields],
    }


def _number(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)
