"""Shape checks for JSON answers: a contract violation becomes UpstreamProtocolError."""

from __future__ import annotations

from typing import Any

from upstreams.errors import UpstreamProtocolError

JsonObject = dict[str, Any]
Page = dict[str, Any]
"""A REST page: the items under their key, plus ``pageInfo`` and ``totalCount``."""


def expect_object(answer: Any, upstream: str, operation: str) -> JsonObject:
    if not isinstance(answer, dict):
        raise UpstreamProtocolError(upstream, operation, "answer is not a JSON object")
    return answer


def expect_list(answer: JsonObject, key: str, upstream: str, operation: str) -> list[JsonObject]:
    items = answer.get(key)
    if not isinstance(items, list):
        raise UpstreamProtocolError(upstream, operation, f"answer has no list {key!r}")
    return items


def index_by_id(items: list[JsonObject], upstream: str, operation: str) -> dict[str, JsonObject]:
    try:
        return {str(item["id"]): item for item in items}
    except (KeyError, TypeError) as exc:
        raise UpstreamProtocolError(upstream, operation, "an item has no id") from exc
