"""Checks on connection arguments shared by every paginated field."""

from __future__ import annotations

from resolvers.errors import BadUserInput

MAX_PAGE_SIZE = 100


def check_first(first: int | None) -> int:
    """``first`` may be 0 to 100 (contract); anything else, null too, is the client's error."""
    if first is None or not 0 <= first <= MAX_PAGE_SIZE:
        shown = "null" if first is None else first
        raise BadUserInput(f"first must be between 0 and {MAX_PAGE_SIZE}, got {shown}")
    return first
