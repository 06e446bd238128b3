"""A position in an answer being filled: where a null lands when an error reaches it.

A slot is a plain tuple ``(parent, container, key, nullable)``: the parent's slot (None
at the root), the dict or list holding the position, its key or index, and whether a
null may land there. One is made for every object and list of an answer, and a tuple
costs a tenth of an instance. Slots are told apart by identity (``id``), never by value.
"""

from __future__ import annotations

from typing import Any, Final, TypeAlias

Slot: TypeAlias = tuple["Slot | None", Any, "str | int", bool]

PARENT: Final = 0
CONTAINER: Final = 1
KEY: Final = 2
NULLABLE: Final = 3
