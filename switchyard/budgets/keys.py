"""Whose bucket a request spends from: the authenticated client, else the client's IP address.

X-Forwarded-For is believed only when the direct peer is a trusted proxy, and
then only up to the first hop from the right that is not itself trusted: hops
further left were written by the client and may be forged::

    client_key(None, "10.0.0.5", "6.6.6.6, 203.0.113.7", ["10.0.0.0/8"])
    # 'ip:203.0.113.7' (6.6.6.6 may be spoofed by the client)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
UNKNOWN_PEER = "unknown"


def client_key(
    caller_client_id: str | None,
    peer_ip: str | None,
    forwarded_for_header: str | None,
    trusted_proxies: Sequence[IPNetwork | str],
) -> str:
    """The bucket key: ``caller_client_id`` when authenticated, else ``ip:<client ip>``.

    >>> client_key("partner-app", "10.0.0.5", None, [])
    'partner-app'
    >>> client_key(None, "10.0.0.5", "203.0.113.7", ["10.0.0.0/8"])
    'ip:203.0.113.7'
    >>> client_key(None, "198.51.100.9", "203.0.113.7", ["10.0.0.0/8"])
    'ip:198.51.100.9'

    A malformed X-Forwarded-For is ignored as a whole, and the peer is used.
    """
    if caller_client_id:
        return caller_client_id
    peer = _parse_ip(peer_ip or "")
    if peer is None:
        return f"ip:{peer_ip or UNKNOWN_PEER}"
    networks = [ipaddress.ip_network(n) if isinstance(n, str) else n for n in trusted_proxies]
    if not forwarded_for_header or not _trusted(peer, networks):
        return f"ip:{peer}"
    hops: list[IPAddress] = []
    for text in forwarded_for_header.split(","):
        hop = _parse_hop(text)
        if hop is None:
            return f"ip:{peer}"
        hops.append(hop)
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            return f"ip:{hop}"
    # Every hop is a proxy of ours: the leftmost is the closest thing to a client.
    return f"ip:{hops[0]}"


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
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; key them as IPv4.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
