"""Offset pagination behind opaque cursors, shared by the REST and gRPC services.

window = paginate(total=1000, first=20, after=None)
items[window.start:window.stop]; window.end_cursor; window.has_next_page
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
_CURSOR_PREFIX = "offset:"


class InvalidCursor(ValueError):
    """The client sent a cursor this service never issued."""


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{offset}".encode()).decode("ascii")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        raise InvalidCursor("invalid cursor") from None
    digits = text.removeprefix(_CURSOR_PREFIX)
    if not text.startswith(_CURSOR_PREFIX) or not digits.isdigit():
        raise InvalidCursor("invalid cursor")
    return int(digits)


@dataclass(frozen=True, slots=True)
class Window:
    """The slice ``[start, stop)`` of a list of ``total`` items."""

    start: int
    stop: int
    total: int

    @property
    def has_next_page(self) -> bool:
        """False for an empty page, as the contract fixes for ``first: 0``."""
        return self.start < self.stop < self.total

    @property
    def end_cursor(self) -> str | None:
        """The continuation after this page; ``None`` for an empty page."""
        return encode_cursor(self.stop) if self.stop > self.start else None

    def page_info(self) -> dict[str, object]:
        return {"endCursor": self.end_cursor, "hasNextPage": self.has_next_page}


def paginate(total: int, first: int, after: str | None) -> Window:
    """The window for ``first`` items after the cursor ``after`` (from the start when None).

    Raises ``InvalidCursor`` for a cursor that does not decode or points past the end.
    """
    start = 0 if after is None else decode_cursor(after)
    if start > total:
        raise InvalidCursor("invalid cursor")
    return Window(start, min(start + first, total), total)
