"""Signing keys from a JWKS URL, fetched on the event loop with httpx and cached.

pyjwt's ``PyJWKClient`` fetches with blocking urllib; here the fetch is async
and only pyjwt's key parsing (``PyJWK``) is used::

    jwks = JwksClient(JwksSettings(url="https://issuer.example/.well-known/jwks.json"))
    key = await jwks.key("2024-05")   # PyJWK, or None when the set does not have it

The set is refetched when a token names an unknown ``kid`` or the keys are older
than ``max_age``, at most once per ``cooldown``; concurrent requests share one
fetch. A fetch that fails (endpoint down, slow, garbage) keeps the keys held.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson
from jwt import PyJWK, PyJWKError, PyJWTError

from switchyard.auth.settings import JwksSettings

logger = logging.getLogger("switchyard.auth")

MAX_JWKS_BYTES = 1024 * 1024


class JwksUnavailable(Exception):
    """A fetch of the key set failed; the message is for the log."""


class JwksClient:
    """The cached key set of one JWKS URL."""

    def __init__(
        self,
        settings: JwksSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self._algorithms = frozenset(settings.algorithms)
        self._clock = clock
        self._transport = transport
        self._by_kid: dict[str, PyJWK] = {}
        self._without_kid: list[PyJWK] = []
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._attempts = 0
        self._lock = asyncio.Lock()

    @property
    def loaded(self) -> bool:
        """Whether a fetch has ever succeeded."""
        return self._fetched_at is not None

    async def key(self, kid: str) -> PyJWK | None:
        """The key with this ``kid``, refetching the set first if it is unknown or old."""
        if kid not in self._by_kid or self._is_old():
            await self.refresh()
        return self._by_kid.get(kid)

    async def keys_without_kid(self, algorithm: str) -> list[PyJWK]:
        """Keys a token without ``kid`` may be tried against: those bound to ``algorithm``."""
        if not self.loaded or self._is_old():
            await self.refresh()
        candidates = [*self._without_kid, *self._by_kid.values()]
        return [key for key in candidates if key.algorithm_name == algorithm]

    async def refresh(self) -> None:
        """Fetch the set now unless the cooldown forbids it; keep the old keys on failure."""
        attempts = self._attempts
        async with self._lock:
            if self._attempts != attempts:
                return  # another request fetched while this one waited
            now = self._clock()
            attempted = self._attempted_at
            if attempted is not None and now - attempted < self.settings.cooldown:
                return
            self._attempted_at = now
            try:
                by_kid, without_kid = await self._fetch()
            except JwksUnavailable as exc:
                logger.warning(
                    "JWKS fetch failed, keeping %d keys: %s",
                    len(self._by_kid) + len(self._without_kid),
                    exc,
                    extra={"stage": "http"},
                )
            else:
                self._by_kid, self._without_kid = by_kid, without_kid
                self._fetched_at = now
            finally:
                self._attempts += 1

    def _is_old(self) -> bool:
        fetched = self._fetched_at
        return fetched is not None and self._clock() - fetched > self.settings.max_age

    async def _fetch(self) -> tuple[dict[str, PyJWK], list[PyJWK]]:
        url = self.settings.url
        try:
            async with (
                asyncio.timeout(self.settings.timeout),
                httpx.AsyncClient(
                    timeout=self.settings.timeout,
                    transport=self._transport,
                    follow_redirects=False,
                    trust_env=False,
                ) as client,
            ):
                response = await client.get(url, headers={"accept": "application/json"})
        except TimeoutError:
            raise JwksUnavailable(f"{url}: no answer in {self.settings.timeout}s") from None
        except httpx.HTTPError as exc:
            raise JwksUnavailable(f"{url}: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise JwksUnavailable(f"{url}: status {response.status_code}")
        if len(response.content) > MAX_JWKS_BYTES:
            raise JwksUnavailable(f"{url}: answer larger than {MAX_JWKS_BYTES} bytes")
        try:
            document = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise JwksUnavailable(f"{url}: answer is not JSON") from None
        return self._parse(document)

    def _parse(self, document: Any) -> tuple[dict[str, PyJWK], list[PyJWK]]:
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise JwksUnavailable(f"{self.settings.url}: answer has no `keys` list")
        by_kid: dict[str, PyJWK] = {}
        without_kid: list[PyJWK] = []
        for entry in entries:
            key = self._usable_key(entry)
            if key is None:
                continue
            if key.key_id is None:
                without_kid.append(key)
            else:
                by_kid[key.key_id] = key
        if not by_kid and not without_kid:
            raise JwksUnavailable(f"{self.settings.url}: no usable signing key")
        return by_kid, without_kid

    def _usable_key(self, entry: Any) -> PyJWK | None:
        # Symmetric ("oct") keys are refused: a JWKS is public, so a secret in it is no secret.
        if not isinstance(entry, dict) or entry.get("kty") == "oct":
            return None
        if entry.get("use", "sig") != "sig" or not isinstance(entry.get("kid", ""), str):
            return None
        try:
            key = PyJWK(entry)
        except (PyJWKError, PyJWTError, ValueError, TypeError):
            return None
        return key if key.algorithm_name in self._algorithms else None
