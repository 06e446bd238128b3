"""The Redis client of a store that must never hold a request up (the upstream cache, APQ).

Every command is bounded by ``timeout`` and never retried; a pool at most
``max_connections`` wide, waited on at most ``timeout``: a slow or absent Redis
becomes a miss for the caller, never a stall.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

MIN_CONNECT_TIMEOUT = 0.5
"""Seconds a new connection may take, even where commands get less."""


def fail_fast_redis(url: str, *, timeout: float, max_connections: int, client_name: str) -> Redis:
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=max(timeout, MIN_CONNECT_TIMEOUT),
        client_name=client_name,
        retry=Retry(NoBackoff(), 0),
    )
    return Redis(connection_pool=pool)
