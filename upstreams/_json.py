"""Shape checks for JSON answers: a contract violation becomes UpstreamProtocolError."""

from __future__ import annotations

from typing import Any

from switchyard.upstream import CallScope, RestRequest, Upstream, UpstreamProtocolError

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


async def pages_per_parent(
    upstream: Upstream,
    path: str,
    ids_param: str,
    parent_ids: list[str],
    first: int,
    after: str | None,
    scope: CallScope,
) -> dict[str, Page]:
    """One page per parent id: ``GET path?<ids_param>=1,2&first=N`` answering ``results``.

    The contract accepts ``after`` only with a single parent id.
    """
    if after is not None and len(parent_ids) != 1:
        raise ValueError(f"after is accepted only with a single id in {ids_param}")
    params = {ids_param: ",".join(parent_ids), "first": str(first)}
    if after is not None:
        params["after"] = after
    request = RestRequest(path, params)
    answer = expect_object(await upstream.call(request, scope), upstream.name, request.operation)
    results = answer.get("results")
    if not isinstance(results, dict):
        raise UpstreamProtocolError(upstream.name, request.operation, "answer has no 'results'")
    return results


async def records_by_id(
    upstream: Upstream, path: str, items_key: str, ids: list[str], scope: CallScope
) -> dict[str, JsonObject]:
    """``GET path?ids=1,2`` answering ``{items_key: [...]}``, by id; unknown ids are absent."""
    request = RestRequest(path, {"ids": ",".join(ids)})
    answer = expect_object(await upstream.call(request, scope), upstream.name, request.operation)
    items = expect_list(answer, items_key, upstream.name, request.operation)
    return index_by_id(items, upstream.name, request.operation)


async def page_of(
    upstream: Upstream, path: str, items_key: str, params: dict[str, str], scope: CallScope
) -> Page:
    """One page: ``GET path?first=N&after=C...`` answering ``items_key``, ``pageInfo``..."""
    request = RestRequest(path, params)
    page = expect_object(await upstream.call(request, scope), upstream.name, request.operation)
    expect_list(page, items_key, upstream.name, request.operation)
    return page
