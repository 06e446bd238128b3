"""Compression of answers: gzip always, brotli and zstd when installed and the client accepts them.

``CompressionMiddleware`` (pure ASGI, the first unit of the ``http`` stage)
compresses a whole answer of a compressible media type (JSON, text, scripts)
of at least ``minimum_size`` bytes, in the coding the client prefers by
``Accept-Encoding`` among those available: ``zstd`` (the ``zstandard``
package), ``br`` (``brotli``), ``gzip`` (the standard library). It sets
``Content-Encoding``, ``Content-Length`` and ``Vary: Accept-Encoding``, and
weakens a strong ``ETag`` (the compressed bytes are another representation).
An answer that is already encoded, streamed (several body messages), or a
request without an acceptable coding passes through untouched.

GraphiQL's assets are compressed once: ``precompress`` writes ``.gz`` (and
``.br``, ``.zst`` when available) beside each file at ``switchyard ide fetch``,
and ``precompressed_response`` serves the variant a client accepts (files
fetched before keep one compressed copy in memory from their first serve)::

    [compression]
    enabled = true
    minimum_size = 1024      # bytes; smaller answers are sent as they are
"""

from __future__ import annotations

import gzip
import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import FileResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COMPRESSIBLE = (
    b"application/json",
    b"application/graphql-response+json",
    b"text/",
    b"application/javascript",
    b"image/svg+xml",
)
SUFFIXES = {"gzip": ".gz", "br": ".br", "zstd": ".zst"}
PREFERENCE = ("zstd", "br", "gzip")
"""Codings in the order the gateway prefers them when the client accepts several equally."""


class CompressionSettings(BaseModel):
    """``[compression]``: answers compressed for clients that accept it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    minimum_size: int = Field(1024, ge=0, description="bytes; smaller answers are not compressed")
    gzip_level: int = Field(6, ge=1, le=9)
    brotli_quality: int = Field(4, ge=0, le=11)
    zstd_level: int = Field(3, ge=1, le=22)


Compressor = Callable[[bytes], bytes]


def compressors(settings: CompressionSettings | None = None) -> dict[str, Compressor]:
    """The codings this process can produce: gzip, plus br and zstd when installed."""
    settings = settings or CompressionSettings()
    found: dict[str, Compressor] = {}
    zstandard = _optional("zstandard")
    if zstandard is not None:
        level = settings.zstd_level
        found["zstd"] = lambda data: bytes(zstandard.ZstdCompressor(level=level).compress(data))
    brotli = _optional("brotli")
    if brotli is not None:
        quality = settings.brotli_quality
        found["br"] = lambda data: bytes(brotli.compress(data, quality=quality))
    gzip_level = settings.gzip_level
    found["gzip"] = lambda data: gzip.compress(data, compresslevel=gzip_level, mtime=0)
    return found


def _optional(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def choose(accept_encoding: str, available: dict[str, Any]) -> str | None:
    """The coding to answer in: the client's highest q among ``available``, ties by the
    gateway's preference; None for identity.

    >>> choose("gzip, deflate, br;q=0.5", {"gzip": 1, "br": 1})
    'gzip'
    >>> choose("*;q=0.1, gzip;q=0", {"gzip": 1}) is None
    True
    """
    weights: dict[str, float] = {}
    for part in accept_encoding.lower().split(","):
        coding, _, parameters = part.strip().partition(";")
        coding = coding.strip()
        if not coding:
            continue
        q = 1.0
        parameters = parameters.strip()
        if parameters.startswith("q="):
            try:
                q = float(parameters[2:])
            except ValueError:
                q = 0.0
        weights[coding] = q
    best: str | None = None
    best_q = 0.0
    for coding in PREFERENCE:
        if coding not in available:
            continue
        q = weights.get(coding, weights.get("*", 0.0))
        if q > best_q:
            best, best_q = coding, q
    return best


class CompressionMiddleware:
    """Compresses whole answers of compressible types above ``minimum_size`` bytes."""

    def __init__(self, app: ASGIApp, settings: CompressionSettings) -> None:
        self.app = app
        self.minimum_size = settings.minimum_size
        self.compressors = compressors(settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        accept = b""
        for name, value in scope["headers"]:
            if name == b"accept-encoding":
                accept = value
                break
        coding = choose(accept.decode("latin-1"), self.compressors) if accept else None
        if coding is None:
            await self.app(scope, receive, send)
            return
        await self.app(scope, receive, _Responder(send, coding, self))


class _Responder:
    __slots__ = ("coding", "middleware", "send", "start")

    def __init__(self, send: Send, coding: str, middleware: CompressionMiddleware) -> None:
        self.send = send
        self.coding = coding
        self.middleware = middleware
        self.start: Message | None = None

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self.start = message
            return
        if kind != "http.response.body" or self.start is None:
            if self.start is not None:  # another extension's message (pathsend): as it is
                start, self.start = self.start, None
                await self.send(start)
            await self.send(message)
            return
        start, self.start = self.start, None
        body: bytes = message.get("body", b"")
        more = message.get("more_body", False)
        headers = MutableHeaders(raw=start["headers"])
        if not more and self._compressible(headers, start["status"], len(body)):
            body = self.middleware.compressors[self.coding](body)
            headers["content-encoding"] = self.coding
            headers["content-length"] = str(len(body))
            headers.add_vary_header("Accept-Encoding")
            etag = headers.get("etag")
            if etag is not None and not etag.startswith("W/"):
                headers["etag"] = "W/" + etag
            message = {**message, "body": body}
        await self.send(start)
        await self.send(message)

    def _compressible(self, headers: MutableHeaders, status: int, size: int) -> bool:
        if size < self.middleware.minimum_size or status in (204, 206, 304):
            return False
        if "content-encoding" in headers:
            return False
        content_type = headers.get("content-type", "").encode("latin-1")
        return content_type.startswith(COMPRESSIBLE)


# Precompressed files (GraphiQL's assets) ------------------------------------------------------


def precompress(paths: list[Path]) -> list[Path]:
    """Write each file's compressed variants beside it (``.gz``, ``.br``, ``.zst`` as
    available); returns what was written."""
    written: list[Path] = []
    available = compressors()
    for path in paths:
        data = path.read_bytes()
        for coding, compress in available.items():
            target = path.with_name(path.name + SUFFIXES[coding])
            temporary = target.with_name(f".{target.name}.tmp")
            temporary.write_bytes(compress(data))
            temporary.chmod(0o644)
            os.replace(temporary, target)
            written.append(target)
    return written


_IDENTITY_ONLY = frozenset({"content-length", "content-type", "etag", "last-modified"})
"""Headers of the identity file that do not describe its compressed variant."""
_FIRST_SERVE: dict[tuple[str, str, int, int], bytes] = {}
"""Compressed copies of files that have no variant on disk, by path, coding, mtime and size."""


def precompressed_response(
    path: Path,
    request_headers: Headers,
    headers: dict[str, str],
    media_type: str | None,
) -> Response | None:
    """The file at ``path`` in the coding the client accepts (its variant on disk, else a
    copy compressed at first serve and kept), or None for identity."""
    accept = request_headers.get("accept-encoding")
    if not accept:
        return None
    available = compressors()
    on_disk = {
        coding: path.with_name(path.name + suffix)
        for coding, suffix in SUFFIXES.items()
        if path.with_name(path.name + suffix).is_file()
    }
    coding = choose(accept, {**available, **on_disk})
    if coding is None:
        return None
    kept = {k: v for k, v in headers.items() if k.lower() not in _IDENTITY_ONLY}
    encoded = {**kept, "content-encoding": coding, "vary": "Accept-Encoding"}
    variant = on_disk.get(coding)
    if variant is not None:
        return FileResponse(variant, headers=encoded, media_type=media_type)
    stat = path.stat()
    key = (str(path), coding, stat.st_mtime_ns, stat.st_size)
    body = _FIRST_SERVE.get(key)
    if body is None:
        body = _FIRST_SERVE[key] = available[coding](path.read_bytes())
    return Response(body, headers=encoded, media_type=media_type)
