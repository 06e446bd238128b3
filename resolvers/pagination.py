"""Checks on connection arguments shared by every paginated field."""

from __future__ import annotations

from typing import NamedTuple

from resolvers.errors import BadUserInput

MAX_PAGE_SIZE = 100


def check_first(first: int | None) -> int:
    """``first`` may be 0 to 100 (contract); anything else, null too, is the client's error."""
    if first is None or not 0 <= first <= MAX_PAGE_SIZE:
        shown = "null" if first is None else first
        raise BadUserInput(f"first must be between 0 and {MAX_PAGE_SIZE}, got {shown}")
    return first


class PageRequest(NamedTuple):
    first: int
    after: str | None


def page_request(first: int | None, after: str | None) -> PageRequest | None:
    """The checked page arguments, or None for ``first: 0``: an empty page, answered without
    calling (gRPC's ``page_size`` 0 would even mean "the service's default")."""
    first = check_first(first)
    if first == 0:
        return None
    return PageRequest(first, after or None)
