"""API keys of machine clients, known to the gateway only by their SHA-256 hashes.

    keys = ApiKeys(settings.api_keys)
    entry = keys.find("demo-key-please-change")   # ApiKeySettings, or None

To put a new key in the config, store ``hash_api_key(key)`` (or
``printf %s "$KEY" | sha256sum``) as its ``hash``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from switchyard.auth.settings import ApiKeySettings

HASH_PREFIX = "sha256:"


def hash_api_key(key: str) -> str:
    """The ``sha256:<hex>`` form the config stores for ``key``."""
    return HASH_PREFIX + hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    """Finds the configured entry of a presented key in constant time."""

    def __init__(self, entries: Sequence[ApiKeySettings]) -> None:
        self._entries = [
            (bytes.fromhex(entry.hash.removeprefix(HASH_PREFIX)), entry) for entry in entries
        ]

    def __bool__(self) -> bool:
        return bool(self._entries)

    def find(self, key: str) -> ApiKeySettings | None:
        presented = hashlib.sha256(key.encode()).digest()
        found = None
        # Every entry is compared, so the time taken does not tell which one matched.
        for digest, entry in self._entries:
            if hmac.compare_digest(presented, digest):
                found = entry
        return found
