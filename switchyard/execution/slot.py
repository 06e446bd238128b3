"""A position in an answer being filled: where a null lands when an error reaches it."""

from __future__ import annotations

from typing import Any


class Slot:
    """A position in the answer that holds an object or a list: where a null can land."""

    __slots__ = ("container", "key", "nullable", "parent")

    def __init__(self, parent: Slot | None, container: Any, key: str | int, nullable: bool) -> None:
        self.parent = parent
        self.container = container
        self.key = key
        self.nullable = nullable
