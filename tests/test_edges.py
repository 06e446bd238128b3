"""Edges check keys before any call, fail only the keys a failed call was for, count items."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from switchyard import BadUserInput, ConnectionRecord, Service
from switchyard.cost import WorkMeter
from switchyard.edges import BatchEdge, LoaderCache, PagedEdge, PageKey, decimal_id, load_pages
from switchyard.upstream import CallScope, UpstreamRejected

SERVICE = Service("things")


@dataclass
class Context:
    """What edges read from ``info.context``."""

    work: WorkMeter = field(default_factory=WorkMeter)
    scope: CallScope = field(default_factory=CallScope)

    def __post_init__(self) -> None:
        self.loaders = LoaderCache({"things": object()}, self.scope, work=self.work)  # type: ignore[dict-item]


def batch_edge(asked: list[list[str]], **options: Any) -> BatchEdge[str, str]:
    async def fetch(upstream: Any, keys: list[str], scope: CallScope) -> Mapping[str, str]:
        asked.append(keys)
        return {key: f"thing {key}" for key in keys}

    return BatchEdge("things", service=SERVICE, fetch=fetch, **options)


async def test_a_key_the_parser_refuses_is_bad_user_input_and_never_asked_for() -> None:
    asked: list[list[str]] = []
    edge = batch_edge(asked, parse_key=decimal_id)
    context = Context()
    with pytest.raises(BadUserInput):
        await edge.load(context, "1,2")
    assert await edge.load(context, "7") == "thing 7"
    assert asked == [["7"]]


async def test_a_parser_raising_value_error_refuses_the_key_too() -> None:
    asked: list[list[str]] = []
    edge = batch_edge(asked, parse_key=lambda key: str(int(key)))
    context = Context()
    with pytest.raises(BadUserInput, match=r"^Invalid ID\.$"):
        await edge.load(context, "seven")
    assert await edge.load(context, "007") == "thing 7"  # a parser may also normalize
    assert asked == [["7"]]


async def test_a_parent_reference_that_cannot_parse_is_null_without_a_call() -> None:
    asked: list[list[str]] = []
    edge = batch_edge(asked, parse_key=decimal_id)
    resolver = edge.field(key=lambda parent: parent["ref"]).base_resolver.wrapped_func

    @dataclass
    class Info:
        context: Context

    info = Info(Context())
    assert await resolver({"ref": "1,2,3"}, info) is None
    assert await resolver({"ref": None}, info) is None
    assert await resolver({"ref": "3"}, info) == "thing 3"
    assert asked == [["3"]]


async def test_priming_under_a_key_that_cannot_parse_stores_nothing() -> None:
    asked: list[list[str]] = []
    edge = batch_edge(asked, parse_key=decimal_id)
    context = Context()
    edge.prime(context, "x y", "primed")
    edge.prime(context, "5", "primed 5")
    assert await edge.load(context, "5") == "primed 5"
    assert asked == []


async def test_a_failed_call_fails_only_its_own_keys() -> None:
    async def fetch(ids: list[str], first: int, after: str | None) -> Mapping[str, Any]:
        if after == "bad":
            raise UpstreamRejected("things", "GET /things", "400: invalid cursor")
        return {parent: {"page": parent, "first": first} for parent in ids}

    keys = [
        PageKey("1", 2, None),
        PageKey("2", 2, None),
        PageKey("3", 1, "bad"),
        PageKey("4", 1, "ok"),
    ]
    pages = await load_pages(keys, fetch)
    assert pages[keys[0]] == {"page": "1", "first": 2}
    assert pages[keys[1]] == {"page": "2", "first": 2}
    assert isinstance(pages[keys[2]], UpstreamRejected)
    assert pages[keys[3]] == {"page": "4", "first": 1}


async def test_cancellation_is_not_a_keys_answer() -> None:
    async def fetch(ids: list[str], first: int, after: str | None) -> Mapping[str, Any]:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await load_pages([PageKey("1", 1, None)], fetch)


def paged_edge(asked: list[tuple[list[str], int, str | None]]) -> PagedEdge[ConnectionRecord]:
    async def fetch(
        upstream: Any, ids: list[str], first: int, after: str | None, scope: CallScope
    ) -> Mapping[str, Any]:
        asked.append((ids, first, after))
        if after == "bad":
            raise UpstreamRejected("things", "GET /things", "400: invalid cursor")
        return {parent: [f"{parent}.{n}" for n in range(first)] for parent in ids}

    def convert(page: list[str] | None) -> ConnectionRecord:
        return ConnectionRecord.of(
            page or [], end_cursor=None, has_next_page=False, total_count=None
        )

    return PagedEdge("pages", service=SERVICE, fetch=fetch, convert=convert, parse_key=decimal_id)


async def test_pages_count_their_items_and_a_bad_parent_id_has_an_empty_page() -> None:
    asked: list[tuple[list[str], int, str | None]] = []
    edge = paged_edge(asked)
    context = Context()
    pages = await asyncio.gather(
        edge.load(context, "1", 3, None),
        edge.load(context, "2", 3, None),
        edge.load(context, "3", 2, "c"),
        edge.load(context, "4", 2, "bad"),
        edge.load(context, "not an id", 3, None),
        return_exceptions=True,
    )
    assert [len(p.edges) for p in pages[:3]] == [3, 3, 2]  # type: ignore[union-attr]
    assert isinstance(pages[3], UpstreamRejected)
    assert pages[4].edges == []  # type: ignore[union-attr]
    assert sorted(asked, key=str) == sorted(
        [(["1", "2"], 3, None), (["3"], 2, "c"), (["4"], 2, "bad")], key=str
    )
    assert context.work.items == 3 + 3 + 2  # what came back; the failed call brought nothing


def test_decimal_ids() -> None:
    assert decimal_id("0") == "0"
    assert decimal_id("9223372036854775807") == "9223372036854775807"
    too_long = "1" * 20
    for bad in ("", "1,2", " 1", "1 ", "+1", "-1", "1e3", "\u0661", too_long, 7, None):
        with pytest.raises(BadUserInput):
            decimal_id(bad)


def batch_resolver(edge: BatchEdge[str, str]) -> Any:
    return edge.field(key=lambda parent: parent).base_resolver.wrapped_func.__switchyard_batch__


async def test_keys_asked_in_one_tick_make_one_call_and_are_cached() -> None:
    asked: list[list[str]] = []
    edge = batch_edge(asked, parse_key=decimal_id, max_batch=2)
    resolve_all = batch_resolver(edge)
    context = Context()
    first, second, one = await asyncio.gather(
        resolve_all(context, ["1", "2", None, "1"], {}),
        resolve_all(context, ["3", "2"], {}),
        edge.load(context, "3"),
    )
    assert first == ["thing 1", "thing 2", None, "thing 1"]
    assert second == ["thing 3", "thing 2"]
    assert one == "thing 3"
    assert asked == [["1", "2"], ["3"]]  # one tick, max_batch keys per call
    assert await resolve_all(context, ["2", "3"], {}) == ["thing 2", "thing 3"]
    assert len(asked) == 2


async def test_a_whole_call_that_failed_is_not_cached() -> None:
    asked: list[list[str]] = []

    async def fetch(upstream: Any, keys: list[str], scope: CallScope) -> Mapping[str, str]:
        asked.append(keys)
        if len(asked) == 1:
            raise UpstreamRejected("things", "GET /things", "400: no")
        return {key: f"thing {key}" for key in keys}

    edge: BatchEdge[str, str] = BatchEdge("things", service=SERVICE, fetch=fetch)
    resolve_all = batch_resolver(edge)
    context = Context()
    failed = await resolve_all(context, ["1", "2"], {})
    assert [type(value) for value in failed] == [UpstreamRejected, UpstreamRejected]
    retried = await asyncio.gather(edge.load(context, "3"), edge.load(context, "1"))
    assert list(retried) == ["thing 3", "thing 1"]
    assert await resolve_all(context, ["1", "2"], {}) == ["thing 1", "thing 2"]
    assert asked == [["1", "2"], ["3", "1"], ["2"]]


async def test_a_cancelled_waiter_leaves_the_call_to_the_others() -> None:
    asked: list[list[str]] = []
    edge = batch_edge(asked)
    resolve_all = batch_resolver(edge)
    context = Context()
    cancelled = asyncio.ensure_future(resolve_all(context, ["1"], {}))
    await asyncio.sleep(0)
    cancelled.cancel()
    assert await resolve_all(context, ["1", "2"], {}) == ["thing 1", "thing 2"]
    assert cancelled.cancelled()
    assert await edge.load(context, "1") == "thing 1"
