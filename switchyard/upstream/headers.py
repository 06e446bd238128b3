"""Upstream response headers: how they travel up the layers and what reaches the client.

Every HTTP answer's headers are handed to ``CallScope.on_response_headers`` by
the transport, error statuses included (a 503's ``Retry-After``). A layer that
needs them (the cache, coalescing) gives the layers below a ``HeaderCapture``
of its own and, once it has the answer, hands what it captured (or, from the
cache, what it stored) to the scope it was given::

    capture = HeaderCapture()
    answer = await inner.handle(request, capture.scope(scope))
    capture.forward(scope)

The request's own sink is a ``ResponseHeaders`` (on ``RequestContext``), which
applies the ``[response_headers]`` rules to the client's response::

    [response_headers]
    cache_control = "most_restrictive"     # or "off"
    retry_after = "largest"                # or "off"
    pass_through = { reviews = ["x-reviews-version"] }
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from switchyard.upstream.call import CallScope
from switchyard.upstream.errors import parse_retry_after

Headers = Mapping[str, str]

NOT_PASSED = frozenset(
    {
        "cache-control",  # the cache_control rule's
        "retry-after",  # the retry_after rule's
        "connection",
        "content-encoding",
        "content-length",
        "content-type",
        "host",
        "keep-alive",
        "proxy-authenticate",
        "set-cookie",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
"""Headers ``pass_through`` may not name: the gateway's own, hop-by-hop, and cookies."""


class SettableHeaders(Protocol):
    """A response's headers (Starlette's ``MutableHeaders``, a dict)."""

    def __contains__(self, name: object) -> bool: ...

    def __getitem__(self, name: str) -> str: ...

    def __setitem__(self, name: str, value: str) -> None: ...


# Cache-Control ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CacheControl:
    """The directives of one ``Cache-Control`` header that a cache acts on.

    >>> CacheControl.parse('private, max-age=60, s-maxage="30"')
    CacheControl(max_age=60, s_maxage=30, no_store=False, no_cache=False, private=True, ...)
    """

    max_age: int | None = None
    s_maxage: int | None = None
    no_store: bool = False
    no_cache: bool = False
    private: bool = False
    public: bool = False
    must_revalidate: bool = False

    @classmethod
    def parse(cls, value: str | None) -> CacheControl | None:
        """The directives of ``value``; None without a header. Unknown directives are ignored,
        a malformed lifetime counts as 0 (stale at once)."""
        if value is None:
            return None
        found: dict[str, str | None] = {}
        for part in value.split(","):
            name, _, argument = part.strip().partition("=")
            name = name.strip().lower()
            if name:
                found[name] = argument.strip().strip('"') if argument else None
        return cls(
            max_age=_seconds(found, "max-age"),
            s_maxage=_seconds(found, "s-maxage"),
            no_store="no-store" in found,
            no_cache="no-cache" in found,
            private="private" in found,
            public="public" in found,
            must_revalidate="must-revalidate" in found or "proxy-revalidate" in found,
        )

    def lifetime(self, *, shared: bool) -> int | None:
        """Seconds the answer stays fresh from when it was made (``s-maxage`` first in a
        shared cache); None when it says nothing of it."""
        if shared and self.s_maxage is not None:
            return self.s_maxage
        return self.max_age


def _seconds(found: Mapping[str, str | None], name: str) -> int | None:
    if name not in found:
        return None
    argument = found[name]
    if argument is None or not argument.isdigit():
        return 0
    return int(argument)


def age_of(headers: Headers) -> int:
    """The ``Age`` header's seconds (0 without a valid one)."""
    value = headers.get("age", "").strip()
    return int(value) if value.isdigit() else 0


# Capture: headers through the layers ------------------------------------------------------


class HeaderCapture:
    """A layer's own sink: the headers of the last answer the layers below it received."""

    __slots__ = ("headers", "upstream")

    def __init__(self) -> None:
        self.upstream: str | None = None
        self.headers: Headers | None = None

    def __call__(self, upstream: str, headers: Headers) -> None:
        self.upstream = upstream
        self.headers = headers

    def scope(self, scope: CallScope) -> CallScope:
        """``scope`` with this capture as its header sink."""
        return dataclasses.replace(scope, on_response_headers=self)

    def forward(self, scope: CallScope) -> None:
        """Hand what was captured to ``scope``'s own sink, if both exist."""
        sink = scope.on_response_headers
        if sink is not None and self.upstream is not None and self.headers is not None:
            sink(self.upstream, self.headers)


# Rules: what reaches the client ---------------------------------------------------------


class ResponseHeaderRules(BaseModel):
    """``[response_headers]``: which upstream response headers shape the client's response."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cache_control: Literal["off", "most_restrictive"] = Field(
        "off",
        description="most_restrictive: the response's Cache-Control is the most restrictive "
        "of the calls' (no-store when a call sent none, or the response has errors)",
    )
    retry_after: Literal["off", "largest"] = Field(
        "off", description="largest: the response's Retry-After is the largest of the calls'"
    )
    pass_through: dict[str, list[str]] = Field(
        default_factory=dict,
        description="upstream name -> headers of its answers copied to the response",
    )

    @field_validator("pass_through")
    @classmethod
    def _passable(cls, rules: dict[str, list[str]]) -> dict[str, list[str]]:
        normalized: dict[str, list[str]] = {}
        for upstream, names in rules.items():
            lowered = [name.strip().lower() for name in names]
            for name in lowered:
                if not name or not all(c.isalnum() or c in "-_" for c in name):
                    raise ValueError(f"{upstream}: {name!r} is not a header name")
                if name in NOT_PASSED:
                    raise ValueError(f"{upstream}: {name} cannot be passed through")
            normalized[upstream] = lowered
        return normalized

    @property
    def active(self) -> bool:
        return self.cache_control != "off" or self.retry_after != "off" or bool(self.pass_through)

    def collector(self, clock: Callable[[], float] = time.time) -> ResponseHeaders | None:
        """A request's collector, or None when no rule is on (no headers are collected)."""
        return ResponseHeaders(self, clock) if self.active else None


class ResponseHeaders:
    """The upstream answers' headers of one request, and the rules that turn them into the
    client's response headers. It is the request scope's ``on_response_headers``."""

    __slots__ = ("_clock", "_passed", "cache_controls", "calls", "passed", "retry_after", "rules")

    def __init__(self, rules: ResponseHeaderRules, clock: Callable[[], float] = time.time) -> None:
        self.rules = rules
        self._clock = clock
        self._passed = rules.pass_through
        self.calls = 0
        """Answers seen."""
        self.cache_controls: list[tuple[CacheControl | None, int]] = []
        """Each answer's Cache-Control (None: it sent none) and Age."""
        self.retry_after: float | None = None
        self.passed: dict[str, list[str]] = {}
        """Values of the headers passed through, by name, in the order first seen."""

    def __call__(self, upstream: str, headers: Headers) -> None:
        self.calls += 1
        rules = self.rules
        if rules.cache_control != "off":
            self.cache_controls.append(
                (CacheControl.parse(headers.get("cache-control")), age_of(headers))
            )
        if rules.retry_after != "off":
            seconds = parse_retry_after(headers.get("retry-after"), self._clock())
            if seconds is not None and (self.retry_after is None or seconds > self.retry_after):
                self.retry_after = seconds
        names = self._passed.get(upstream)
        if names:
            for name in names:
                value = headers.get(name)
                if value is not None:
                    values = self.passed.setdefault(name, [])
                    if value not in values:
                        values.append(value)

    def apply(self, response_headers: SettableHeaders, *, failed: bool) -> None:
        """Set the client's response headers by the rules; ``failed``: the response has errors."""
        if self.rules.cache_control != "off" and self.cache_controls:
            response_headers["cache-control"] = combine_cache_control(
                self.cache_controls, failed=failed
            )
        if self.retry_after is not None:
            seconds = math.ceil(self.retry_after)
            existing = ""
            if "retry-after" in response_headers:
                existing = response_headers["retry-after"]
            if not (existing.isdigit() and int(existing) >= seconds):
                response_headers["retry-after"] = str(seconds)
        for name, values in self.passed.items():
            response_headers[name] = ", ".join(values)


def combine_cache_control(
    controls: Iterable[tuple[CacheControl | None, int]], *, failed: bool = False
) -> str:
    """The most restrictive policy of the calls' ``(Cache-Control, Age)``.

    ``no-store`` if any call said so, sent none, or ``failed``; else ``no-cache`` if
    any said so; else the shortest remaining lifetime (``s-maxage`` counts, an
    answer without one has none left), ``private`` if any was, ``must-revalidate``
    if any asked.

    >>> combine_cache_control([(CacheControl(max_age=60), 0),
    ...                        (CacheControl(max_age=30, private=True), 10)])
    'private, max-age=20'
    """
    controls = list(controls)
    if failed or any(c is None or c.no_store for c, _ in controls):
        return "no-store"
    present = [(c, age) for c, age in controls if c is not None]
    private = any(c.private for c, _ in present)
    directives = ["private"] if private else []
    if any(c.no_cache for c, _ in present):
        return ", ".join([*directives, "no-cache"])
    remaining = 0
    for index, (control, age) in enumerate(present):
        lifetimes = [x for x in (control.max_age, control.s_maxage) if x is not None]
        left = max(0, min(lifetimes) - age) if lifetimes else 0
        remaining = left if index == 0 else min(remaining, left)
    directives.append(f"max-age={remaining}")
    if any(c.must_revalidate for c, _ in present):
        directives.append("must-revalidate")
    return ", ".join(directives)
