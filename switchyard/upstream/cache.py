"""The upstream response cache: answers kept as long as the upstream says, per caller if private.

A REST ``GET`` answer is kept when its ``Cache-Control`` gives it a lifetime
(``max-age``, or ``s-maxage`` for answers every caller shares) and says neither
``no-store`` nor ``no-cache`` (no revalidation: such an answer is never served
from the cache); ``Vary: *`` is never kept. ``private`` answers are kept per
caller, under a key that adds who the caller is, and are never served to
anyone else; a private answer to an anonymous caller is not kept. gRPC answers
carry no such header: ``grpc_ttl`` gives a method's answers a lifetime.

The key is the upstream, the request and the forwarded headers, so an answer
to a call that carried the caller's identity or token is only ever served to
the same identity. Entries are an envelope (stored headers, when it was made,
until when it is fresh) and the answer: JSON answers as orjson bytes, gRPC
answers as serialized protobuf. A hit hands the stored headers with their
``Age`` to the request's header rules, so a cached answer's remaining lifetime
is what ``Cache-Control`` rules see. Other kinds a graph adds (the demo's XML)
are not cached.

The store is an LRU in process memory bounded by bytes (``max_bytes``), or
Redis (``backend = "redis"``) shared by every replica: one ``MGET`` per
lookup, ``SET ... PX`` per answer, each bounded by ``redis_timeout``. A Redis
that fails or does not answer in time is a miss (logged, at most every 10 s);
requests never wait for it beyond that.

A hit still counts as a call for the request's cost (``WorkMeter``), so what a
request is charged does not depend on what others asked before it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import orjson
from google.protobuf.message import Message
from redis.asyncio import Redis
from redis.exceptions import RedisError

from switchyard.lru import ByteLRU
from switchyard.redis_client import fail_fast_redis
from switchyard.upstream.call import CallScope, GrpcRequest, RestRequest, UpstreamRequest
from switchyard.upstream.coalescing import forwarded_headers, read_key
from switchyard.upstream.headers import CacheControl, HeaderCapture, Headers, age_of
from switchyard.upstream.settings import CacheSettings, UpstreamSettings
from switchyard.upstream.transport import Transport

logger = logging.getLogger("switchyard.upstream.cache")

NOT_STORED_HEADERS = frozenset(
    {"age", "connection", "content-length", "date", "keep-alive", "server", "set-cookie",
     "transfer-encoding"}
)  # fmt: skip
"""Headers of an answer that are not kept with it."""
ENTRY_OVERHEAD = 256
"""Bytes an in-memory entry is counted for beyond its own (key, envelope, bookkeeping)."""
REDIS_CLIENT_NAME = "switchyard-cache"
REDIS_MAX_CONNECTIONS = 16
WARNING_INTERVAL = 10.0
"""Seconds between two warnings that the cache's Redis fails."""

Clock = Callable[[], float]


class CacheStore(Protocol):
    """Where entries live: bytes under string keys, each for ``ttl`` seconds."""

    def may_hold(self) -> bool:
        """False when a lookup cannot find anything (an empty memory store): skip it."""
        ...

    async def get_many(self, keys: Sequence[str], timeout: float) -> list[bytes | None]: ...

    async def put(self, key: str, value: bytes, ttl: float, timeout: float) -> None: ...

    async def aclose(self) -> None: ...


class MemoryStore:
    """An LRU in this process, bounded by the bytes of its entries."""

    def __init__(self, max_bytes: int, clock: Clock = time.time) -> None:
        self._entries = ByteLRU[str, tuple[float, bytes]](max_bytes)
        self.clock = clock

    def may_hold(self) -> bool:
        return len(self._entries) > 0

    async def get_many(self, keys: Sequence[str], timeout: float) -> list[bytes | None]:
        now = self.clock()
        found: list[bytes | None] = []
        for key in keys:
            entry = self._entries.get(key)
            found.append(None if entry is None or entry[0] <= now else entry[1])
        return found

    async def put(self, key: str, value: bytes, ttl: float, timeout: float) -> None:
        weight = len(key) + len(value) + ENTRY_OVERHEAD
        self._entries.put(key, (self.clock() + ttl, value), weight=weight)

    @property
    def size(self) -> int:
        """Bytes the entries are counted for."""
        return self._entries.size

    async def aclose(self) -> None:
        return None


class RedisStore:
    """Entries in Redis (redis-py's asyncio client), shared by every replica."""

    def __init__(self, client: Redis) -> None:
        self.client = client

    @classmethod
    def from_url(cls, url: str, *, timeout: float) -> RedisStore:
        return cls(
            fail_fast_redis(
                url,
                timeout=timeout,
                max_connections=REDIS_MAX_CONNECTIONS,
                client_name=REDIS_CLIENT_NAME,
            )
        )

    def may_hold(self) -> bool:
        return True

    async def get_many(self, keys: Sequence[str], timeout: float) -> list[bytes | None]:
        async with asyncio.timeout(timeout):
            values = await self.client.mget(keys)
        return [value.encode() if isinstance(value, str) else value for value in values]

    async def put(self, key: str, value: bytes, ttl: float, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            await self.client.set(key, value, px=max(1, int(ttl * 1000)))

    async def aclose(self) -> None:
        await self.client.aclose()


def encode_entry(
    codec: str, payload: bytes, headers: Mapping[str, str], stored: float, expires: float
) -> bytes:
    """One entry: a JSON line (codec, headers, when stored, until when fresh), then the answer."""
    envelope = {"c": codec, "h": dict(headers), "s": stored, "e": expires}
    return orjson.dumps(envelope) + b"\n" + payload


def decode_entry(raw: bytes) -> tuple[dict[str, Any], bytes]:
    head, _, payload = raw.partition(b"\n")
    envelope: dict[str, Any] = orjson.loads(head)
    return envelope, payload


def caller_key(scope: CallScope) -> str | None:
    """Who the caller is, for private answers; None for an anonymous one."""
    identity = scope.identity
    if identity is None:
        return None
    who = (identity.client_id, identity.subject, tuple(sorted(identity.scopes)))
    return hashlib.sha256(repr(who).encode()).hexdigest()[:32]


class ResponseCache(Transport):
    """Answers of ``inner`` kept in ``store`` while fresh.

    ``hits``, ``misses`` and ``stored`` count lookups and entries written.
    ``clock`` (seconds since the epoch) says when an entry is stale; tests move it.
    """

    def __init__(
        self,
        name: str,
        inner: Transport,
        store: CacheStore,
        *,
        json_answers: bool,
        grpc_ttl: Mapping[str, float] | None = None,
        max_ttl: float = 3600.0,
        key_prefix: str = "switchyard:cache",
        redis_timeout: float = 0.1,
        clock: Clock = time.time,
    ) -> None:
        self.name = name
        self.inner = inner
        self.store = store
        self.json_answers = json_answers
        self.grpc_ttl = dict(grpc_ttl or {})
        self.max_ttl = max_ttl
        self.key_prefix = key_prefix
        self.timeout = redis_timeout
        self.clock = clock
        self.hits = 0
        self.misses = 0
        self.stored = 0
        self._warned = 0.0

    @classmethod
    def around(
        cls, name: str, settings: UpstreamSettings, inner: Transport, clock: Clock = time.time
    ) -> Transport:
        """``inner`` behind a cache as ``[upstreams.NAME.cache]`` says; ``inner`` itself when
        nothing of this upstream could be cached (off, or a kind without a known codec)."""
        cache: CacheSettings = settings.cache
        json_answers = settings.kind == "rest"
        if not cache.enabled or not (json_answers or (settings.kind == "grpc" and cache.grpc_ttl)):
            return inner
        store: CacheStore
        if cache.backend == "redis":
            store = RedisStore.from_url(cache.redis_url, timeout=cache.redis_timeout)
        else:
            store = MemoryStore(cache.max_bytes, clock)
        return cls(
            name,
            inner,
            store,
            json_answers=json_answers,
            grpc_ttl=cache.grpc_ttl,
            max_ttl=cache.max_ttl,
            key_prefix=cache.key_prefix,
            redis_timeout=cache.redis_timeout,
            clock=clock,
        )

    def set_clock(self, clock: Clock) -> None:
        """Read time from ``clock`` (the memory store too)."""
        self.clock = clock
        if isinstance(self.store, MemoryStore):
            self.store.clock = clock

    def _cacheable(self, request: UpstreamRequest) -> bool:
        if isinstance(request, RestRequest):
            return self.json_answers and request.method == "GET"
        if isinstance(request, GrpcRequest):
            return self._grpc_ttl(request) is not None
        return False

    def _grpc_ttl(self, request: GrpcRequest) -> float | None:
        ttl = self.grpc_ttl.get(request.operation)
        return self.grpc_ttl.get(request.method) if ttl is None else ttl

    def key(self, request: UpstreamRequest, scope: CallScope) -> str:
        """The shared key of ``request`` in ``scope`` (a private one adds the caller)."""
        what = repr((read_key(request), forwarded_headers(scope))).encode()
        digest = hashlib.sha256(what).hexdigest()[:40]
        # One hash tag: the shared and the private key are in one Redis Cluster slot.
        return "{" + f"{self.key_prefix}:{self.name}:{digest}" + "}"

    async def handle(self, request: UpstreamRequest, scope: CallScope) -> Any:
        if not self._cacheable(request):
            return await self.inner.handle(request, scope)
        key: str | None = None
        caller = caller_key(scope)
        if self.store.may_hold():
            key = self.key(request, scope)
            keys = [key] if caller is None else [key, f"{key}:{caller}"]
            for raw in await self._lookup(keys, scope):
                if raw is not None:
                    hit = self._answer(raw, request, scope)
                    if hit is not None:
                        self.hits += 1
                        return hit[0]
        self.misses += 1
        capture = HeaderCapture()
        try:
            answer = await self.inner.handle(request, capture.scope(scope))
        finally:
            capture.forward(scope)
        await self._keep(request, scope, answer, capture.headers, key, caller)
        return answer

    def _answer(self, raw: bytes, request: UpstreamRequest, scope: CallScope) -> tuple[Any] | None:
        try:
            envelope, payload = decode_entry(raw)
            now = self.clock()
            if envelope["e"] <= now:
                return None
            if envelope["c"] == "proto":
                assert isinstance(request, GrpcRequest)
                answer = request.response_type.FromString(payload)
            else:
                answer = orjson.loads(payload)
            headers: dict[str, str] = envelope["h"]
        except Exception:  # an entry this version cannot read is a miss
            logger.warning("unreadable cache entry", extra={"upstream": self.name})
            return None
        sink = scope.on_response_headers
        if sink is not None:
            sink(self.name, {**headers, "age": str(max(0, int(now - envelope["s"])))})
        return (answer,)

    def lifetime(self, request: UpstreamRequest, headers: Headers | None) -> tuple[float, bool]:
        """How long the answer may be kept (0: not at all) and whether it is per caller."""
        if isinstance(request, GrpcRequest):
            return min(self._grpc_ttl(request) or 0.0, self.max_ttl), False
        if headers is None:
            return 0.0, False
        control = CacheControl.parse(headers.get("cache-control"))
        if control is None or control.no_store or control.no_cache:
            return 0.0, False
        if headers.get("vary", "").strip() == "*":
            return 0.0, False
        lifetime = control.lifetime(shared=not control.private)
        if lifetime is None:
            return 0.0, control.private
        return min(float(lifetime - age_of(headers)), self.max_ttl), control.private

    async def _keep(
        self,
        request: UpstreamRequest,
        scope: CallScope,
        answer: Any,
        headers: Headers | None,
        key: str | None,
        caller: str | None,
    ) -> None:
        ttl, private = self.lifetime(request, headers)
        if ttl <= 0 or (private and caller is None):
            return
        if isinstance(answer, Message):
            codec, payload = "proto", answer.SerializeToString()
        else:
            try:
                codec, payload = "json", orjson.dumps(answer)
            except TypeError:
                return
        kept = {
            name.lower(): value
            for name, value in (headers or {}).items()
            if name.lower() not in NOT_STORED_HEADERS
        }
        now = self.clock()
        key = key or self.key(request, scope)
        if private:
            key = f"{key}:{caller}"
        entry = encode_entry(codec, payload, kept, now, now + ttl)
        try:
            await self.store.put(key, entry, ttl, self._timeout(scope))
        except (RedisError, OSError, TimeoutError) as exc:
            self._warn("storing", exc)
            return
        self.stored += 1

    async def _lookup(self, keys: list[str], scope: CallScope) -> list[bytes | None]:
        try:
            return await self.store.get_many(keys, self._timeout(scope))
        except (RedisError, OSError, TimeoutError) as exc:
            self._warn("reading", exc)
            return []

    def _timeout(self, scope: CallScope) -> float:
        remaining = scope.remaining()
        return self.timeout if remaining is None else max(0.001, min(self.timeout, remaining))

    def _warn(self, doing: str, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._warned >= WARNING_INTERVAL or not self._warned:
            self._warned = now
            logger.warning(
                "upstream cache: %s failed, answering without it: %s: %s",
                doing,
                type(exc).__name__,
                exc,
                extra={"upstream": self.name},
            )

    async def check(self, timeout: float) -> bool:
        return await self.inner.check(timeout)

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            await self.store.aclose()
