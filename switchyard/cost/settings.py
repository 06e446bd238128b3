"""Typed settings of the ``[cost]`` config section."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from switchyard.cost.model import DEFAULT_LIST_SIZE

DEFAULT_MODE: Literal["measure"] = "measure"
DEFAULT_MAX_COST = 1000
"""Shopify's single-query cap."""


class CostSettings(BaseModel):
    """The ``[cost]`` config section.

    >>> CostSettings(mode="enforce", max_cost=500).max_cost
    500
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["off", "measure", "enforce"] = Field(
        DEFAULT_MODE,
        description="off: no analysis; measure: estimate, decide as enforce would, report "
        "(extensions.cost.wouldRefuse, one info line), never refuse; enforce: refuse above "
        "max_cost, above the caller's budget, and for want of points (429)",
    )
    max_cost: int = Field(DEFAULT_MAX_COST, ge=1, description="most points one operation may cost")
    default_list_size: int = Field(
        DEFAULT_LIST_SIZE, ge=0, description="items assumed of a list without @listSize"
    )
