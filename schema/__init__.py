"""The unified graph over the demo platform: types, root fields and (later) directives."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import strawberry
from strawberry.extensions import SchemaExtension

from schema.query import Query


def build_schema(
    extensions: Sequence[type[SchemaExtension] | Callable[[], SchemaExtension]] = (),
    **options: Any,
) -> strawberry.Schema:
    """The gateway's schema; ``extensions`` are the GraphQL-level stages the runtime adds.

    >>> print(build_schema().as_str())
    """
    return strawberry.Schema(query=Query, extensions=list(extensions), **options)
