"""Whose bucket a request spends from, as a key no client can choose.

``bucket_key`` names one bucket per client and tier::

    api_key    key:<tier>:<client id>
    jwt        jwt:<tier>:<issuer>:sub:<subject>  (:<claim>:<value> with [auth.jwt] client_claim)
    anonymous  ip:<tier>:<client address>         (IPv6: its /64, ip:<tier>:2001:db8:1:2::/64)

The tier is part of the key, so two callers with different tiers never share a
bucket and one tier's capacity never clamps another's. Every part that is not
a short run of plain characters (``[A-Za-z0-9._@+-]``, at most 64) is replaced
by ``~`` and a digest of it, so a key is always short, never holds ``{``,
``}``, ``:`` or spaces from a client, and two different values never share one.

The client address is the TCP peer. Only when the peer is one of
``trusted_proxies`` is ``X-Forwarded-For`` read, from the right: the first
entry that is not itself a trusted proxy is the client, and it must parse as
an IP address. Entries further left were written by the client and may be
forged, so they are never read::

    client_address("10.0.0.5", ["6.6.6.6, 203.0.113.7"], ["10.0.0.0/8"])
    # IPv4Address('203.0.113.7') (6.6.6.6 may be spoofed by the client)

A malformed entry reached before any untrusted one stops the walk: the client
is then the last address that parsed (a trusted proxy), so a broken header
can share a bucket but never open a new one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from switchyard.caller import Caller

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
UNKNOWN_PEER = "unknown"
IPV6_CLIENT_PREFIX = 64
"""An IPv6 client is its /64: one host typically holds the whole of it."""
MAX_FORWARDED_HOPS = 32
"""Entries of X-Forwarded-For read from the right, at most: no chain of proxies is longer."""
DEFAULT_CLIENT_CLAIM = "sub"

_PLAIN = re.compile(r"[A-Za-z0-9._@+-]{1,64}")


def bucket_key(
    caller: Caller,
    peer_ip: str | None,
    forwarded_for: Sequence[str] | str | None,
    trusted_proxies: Sequence[IPNetwork | str],
    *,
    bearer_token: str | None = None,
    client_claim: str | None = None,
) -> str:
    """The key of ``caller``'s bucket (see the module's docs).

    >>> from switchyard.caller import ANONYMOUS
    >>> bucket_key(Caller(client_id="partner", tier="pro", method="api_key"), "10.0.0.5", None, [])
    'key:pro:partner'
    >>> bucket_key(ANONYMOUS, "10.0.0.5", "203.0.113.7", ["10.0.0.0/8"])
    'ip:anonymous:203.0.113.7'
    >>> bucket_key(ANONYMOUS, "2001:db8:1:2:aaaa::9", None, [])
    'ip:anonymous:2001:db8:1:2::/64'
    >>> bucket_key(ANONYMOUS, "198.51.100.9", "'; DROP TABLE x; --", ["198.51.100.0/24"])
    'ip:anonymous:198.51.100.9'
    """
    tier = _part(caller.tier)
    if caller.method == "api_key":
        return f"key:{tier}:{_part(caller.client_id)}"
    if caller.method == "jwt":
        return f"jwt:{tier}:{_jwt_identity(caller, bearer_token, client_claim)}"
    address = client_address(peer_ip, forwarded_for, trusted_proxies)
    return f"ip:{tier}:{UNKNOWN_PEER if address is None else _address_part(address)}"


def client_address(
    peer_ip: str | None,
    forwarded_for: Sequence[str] | str | None,
    trusted_proxies: Sequence[IPNetwork | str],
) -> IPAddress | None:
    """The client's address: the peer, or what trusted proxies say of it (module docs).

    ``forwarded_for`` is the X-Forwarded-For header, or each of its lines when
    it came several times (read as one list, as HTTP joins them). None when the
    peer is unknown or not an address.
    """
    peer = _parse_ip(peer_ip or "")
    if peer is None or not forwarded_for:
        return peer
    networks = [ipaddress.ip_network(n) if isinstance(n, str) else n for n in trusted_proxies]
    if not _trusted(peer, networks):
        return peer
    lines = [forwarded_for] if isinstance(forwarded_for, str) else list(forwarded_for)
    hops = ",".join(lines).split(",")
    closest = peer
    for text in reversed(hops[-MAX_FORWARDED_HOPS:]):
        hop = _parse_hop(text)
        if hop is None:
            return closest
        if not _trusted(hop, networks):
            return hop
        closest = hop
    # Every hop read is a proxy of ours: the left-most is the closest thing to a client.
    return closest


def _jwt_identity(caller: Caller, bearer_token: str | None, client_claim: str | None) -> str:
    """``<issuer>:<claim>:<value>`` from the (already verified) token's claims."""
    claims = _claims(bearer_token) if bearer_token else {}
    issuer = claims.get("iss")
    issuer_part = _part(issuer) if isinstance(issuer, str) and issuer else ""
    claim = client_claim or DEFAULT_CLIENT_CLAIM
    value = claims.get(claim)
    if isinstance(value, str) and value:
        return f"{issuer_part}:{_part(claim)}:{_part(value)}"
    if client_claim is None and caller.subject:
        return f"{issuer_part}:sub:{_part(caller.subject)}"
    # No subject (a client's own token): the client it was issued to.
    return f"{issuer_part}:client:{_part(caller.client_id)}"


def _claims(token: str) -> Mapping[str, Any]:
    """The payload of a compact JWS the authenticator has verified for this request."""
    try:
        payload = token.split(".")[1]
        data = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return {}
    return data if isinstance(data, dict) else {}


def _part(value: str) -> str:
    """``value`` when it is plain and short, else ``~`` and 32 hex digits of its SHA-256.

    >>> _part("partner-app"), _part("'; DROP")
    ('partner-app', '~a8d0e8574bd482d0d99e1af42a43ec43')
    """
    if _PLAIN.fullmatch(value):
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    return "~" + digest[:32]


def _address_part(address: IPAddress) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        network = ipaddress.IPv6Network((int(address), IPV6_CLIENT_PREFIX), strict=False)
        return str(network)
    return str(address)


def _trusted(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(address in network for network in networks)


def _parse_hop(hop: str) -> IPAddress | None:
    """One X-Forwarded-For entry; some proxies append a port (``1.2.3.4:80``, ``[::1]:80``)."""
    hop = hop.strip()
    if hop.startswith("["):
        hop = hop[1:].partition("]")[0]
    elif hop.count(":") == 1:
        hop = hop.partition(":")[0]
    return _parse_ip(hop)


def _parse_ip(text: str) -> IPAddress | None:
    if len(text) > 64:  # longer than any address, with a zone
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; key them as IPv4.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
