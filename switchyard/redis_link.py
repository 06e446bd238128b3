"""``RedisLink``: one connection to Redis per process, every command pipelined on it.

The budget check is one Redis command per GraphQL request, and its CPU is
paid on every request. redis-py's command path (pool checkout, retry wrapper,
parser, observability hooks) costs 100-230 µs of CPU per command on a 2-core
test machine, several percent of a 5 ms request. Pipelining all of a process's
commands over one connection, as StackExchange.Redis and ioredis do, costs
15-60 µs: one write per command, and one read for all the replies that arrived
together (``bench/redis_link.py`` measures both side by side). Replies are
parsed by hiredis, Redis's own C parser; URLs by redis-py::

    link = RedisLink.from_url("redis://:secret@cache:6379/0", timeout=0.25)
    await link.execute("INCR", "hits")  # 1
    await link.aclose()

Replies come back in the order commands were sent, so a caller that gives up
(cancelled) leaves its slot in the queue and its reply is dropped. A command
without a reply within ``timeout`` breaks the connection for every command on
it, since a stalled Redis stalls them all; the next command reconnects.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

import hiredis
from redis.asyncio.connection import parse_url

CommandArgument = str | bytes | int | float
DEFAULT_CLIENT_NAME = "switchyard"
DEFAULT_MAX_PENDING = 10_000

# hiredis's stub types the command as a 1-tuple.
_pack = cast(Callable[[tuple[CommandArgument, ...]], bytes], hiredis.pack_command)


class RedisError(Exception):
    """Redis did not give the answer asked for."""


class RedisUnavailable(RedisError):
    """No answer: Redis is unreachable, too slow, or the connection broke."""


class RedisReplyError(RedisError):
    """Redis answered with an error reply (``NOSCRIPT``, ``WRONGPASS``, ``WRONGTYPE``...)."""


@dataclass(frozen=True, slots=True)
class RedisAddress:
    """Where Redis is and how to log in; ``str()`` never shows the password."""

    host: str = "127.0.0.1"
    port: int = 6379
    path: str | None = None
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    tls_ca_file: str | None = None
    tls_verify: Literal["required", "optional", "none"] = "required"
    tls_check_hostname: bool = True
    tls_cert_file: str | None = None
    tls_key_file: str | None = None

    @classmethod
    def from_url(cls, url: str) -> RedisAddress:
        """``redis://[user:password@]host[:port][/db]``, ``rediss://...`` (TLS) or ``unix://path``.

        TLS options are redis-py's query parameters: ``ssl_ca_certs`` (a CA
        bundle), ``ssl_cert_reqs`` (``required``, ``optional`` or ``none``),
        ``ssl_check_hostname``, and ``ssl_certfile``/``ssl_keyfile`` for a
        client certificate::

            rediss://cache:6380/0?ssl_ca_certs=/etc/ssl/private-ca.pem

        >>> str(RedisAddress.from_url("redis://app:s3cret@cache:6380/2"))
        'cache:6380/2'
        """
        options: dict[str, Any] = dict(parse_url(url))
        verify = str(options.get("ssl_cert_reqs") or "required").lower()
        if verify not in ("required", "optional", "none"):
            raise ValueError("ssl_cert_reqs must be required, optional or none")
        return cls(
            host=options.get("host") or "127.0.0.1",
            port=int(options.get("port") or 6379),
            path=options.get("path"),
            db=int(options.get("db") or 0),
            username=options.get("username"),
            password=options.get("password"),
            tls=url.startswith("rediss://"),
            tls_ca_file=options.get("ssl_ca_certs"),
            tls_verify=cast(Literal["required", "optional", "none"], verify),
            tls_check_hostname=bool(options.get("ssl_check_hostname", verify != "none")),
            tls_cert_file=options.get("ssl_certfile"),
            tls_key_file=options.get("ssl_keyfile"),
        )

    def tls_context(self) -> ssl.SSLContext | None:
        """The TLS settings of a ``rediss://`` address (system CAs unless told otherwise)."""
        if not self.tls:
            return None
        context = ssl.create_default_context(cafile=self.tls_ca_file)
        context.check_hostname = self.tls_check_hostname and self.tls_verify != "none"
        context.verify_mode = {
            "required": ssl.CERT_REQUIRED,
            "optional": ssl.CERT_OPTIONAL,
            "none": ssl.CERT_NONE,
        }[self.tls_verify]
        if self.tls_cert_file is not None:
            context.load_cert_chain(self.tls_cert_file, self.tls_key_file)
        return context

    def __str__(self) -> str:
        where = f"unix:{self.path}" if self.path else f"{self.host}:{self.port}"
        return f"{where}/{self.db}"

    def __repr__(self) -> str:
        return f"RedisAddress({str(self)!r})"


class _RespProtocol(asyncio.Protocol):
    """One connection: commands written as they come, replies matched to them in order."""

    def __init__(self) -> None:
        self._reader = hiredis.Reader(replyError=RedisReplyError)
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._transport: asyncio.Transport | None = None
        self.closed = False

    @property
    def pending(self) -> int:
        return len(self._waiting)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def send(self, packed: bytes) -> asyncio.Future[Any]:
        assert self._transport is not None
        future = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        self._transport.write(packed)
        return future

    def data_received(self, data: bytes) -> None:
        self._reader.feed(data)
        while True:
            try:
                reply = self._reader.gets()
            except hiredis.ProtocolError as exc:
                self.abort(RedisUnavailable(f"unreadable reply from Redis: {exc}"))
                return
            if reply is False:
                return
            if not self._waiting:
                self.abort(RedisUnavailable("a reply from Redis that nothing asked for"))
                return
            future = self._waiting.popleft()
            if future.done():  # its caller gave up
                continue
            if isinstance(reply, RedisReplyError):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail_waiting(RedisUnavailable("the connection to Redis was closed"))

    def abort(self, error: RedisError) -> None:
        """Fail every command still waiting with ``error`` and drop the connection."""
        self._fail_waiting(error)
        if self._transport is not None:
            self._transport.abort()

    def close(self) -> None:
        self._fail_waiting(RedisUnavailable("the Redis link was closed"))
        if self._transport is not None:
            self._transport.close()

    def _fail_waiting(self, error: RedisError) -> None:
        self.closed = True
        while self._waiting:
            future = self._waiting.popleft()
            if not future.done():
                future.set_exception(error)


class RedisLink:
    """One pipelined connection to Redis, opened on first use and reopened after a failure.

    Every failure to get an answer is a ``RedisUnavailable``; an error reply
    is a ``RedisReplyError``. Concurrent callers share one connection attempt.
    """

    def __init__(
        self,
        address: RedisAddress,
        *,
        timeout: float = 0.25,
        client_name: str = DEFAULT_CLIENT_NAME,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self.address = address
        self.timeout = timeout
        self.client_name = client_name
        self.max_pending = max_pending
        # Made once: loading the CA bundle reads files, which must not happen per reconnect.
        self._ssl = address.tls_context()
        self._protocol: _RespProtocol | None = None
        self._connecting: asyncio.Task[_RespProtocol] | None = None
        self._closed = False

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisLink:
        return cls(RedisAddress.from_url(url), **options)

    def __repr__(self) -> str:
        return f"RedisLink({str(self.address)!r})"

    async def execute(self, *command: CommandArgument) -> Any:
        """Send one command and wait for its reply (bulk strings come back as ``bytes``)."""
        protocol = self._protocol
        if protocol is None or protocol.closed:
            protocol = await self._connected()
        if protocol.pending >= self.max_pending:
            raise RedisUnavailable(f"{self.max_pending} commands already wait for Redis")
        future = protocol.send(_pack(command))
        timer = asyncio.get_running_loop().call_later(self.timeout, self._expire, protocol, future)
        try:
            return await future
        finally:
            timer.cancel()

    async def ping(self) -> bool:
        try:
            return bool(await self.execute("PING"))
        except RedisError:
            return False

    async def aclose(self) -> None:
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
        if self._protocol is not None:
            self._protocol.close()

    def _expire(self, protocol: _RespProtocol, future: asyncio.Future[Any]) -> None:
        if not future.done():
            protocol.abort(RedisUnavailable(f"no reply from Redis within {self.timeout} s"))

    async def _connected(self) -> _RespProtocol:
        if self._closed:
            raise RedisUnavailable("the Redis link was closed")
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.create_task(self._connect())
            self._connecting.add_done_callback(_retrieve_exception)
        connecting = self._connecting
        try:
            # Shielded: one caller giving up must not cancel the attempt the others wait on.
            return await asyncio.shield(connecting)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if connecting.cancelled() and not (task is not None and task.cancelling()):
                raise RedisUnavailable("the Redis link was closed") from None
            raise

    async def _connect(self) -> _RespProtocol:
        loop = asyncio.get_running_loop()
        address = self.address
        protocol: _RespProtocol | None = None
        try:
            async with asyncio.timeout(self.timeout):
                if address.path is not None:
                    _, protocol = await loop.create_unix_connection(_RespProtocol, address.path)
                else:
                    _, protocol = await loop.create_connection(
                        _RespProtocol, address.host, address.port, ssl=self._ssl
                    )
                await self._handshake(protocol)
        except (OSError, TimeoutError, RedisError) as exc:
            if protocol is not None:
                protocol.close()
            reason = exc if isinstance(exc, RedisReplyError) else type(exc).__name__
            raise RedisUnavailable(f"cannot connect to Redis at {address}: {reason}") from None
        except asyncio.CancelledError:  # the link is being closed
            if protocol is not None:
                protocol.close()
            raise
        self._protocol = protocol
        return protocol

    async def _handshake(self, protocol: _RespProtocol) -> None:
        """Log in and pick the database, pipelined; naming the client is a courtesy."""
        address = self.address
        required: list[asyncio.Future[Any]] = []
        if address.password is not None:
            login: tuple[str, ...] = (address.password,)
            if address.username:
                login = (address.username, address.password)
            required.append(protocol.send(_pack(("AUTH", *login))))
        if address.db:
            required.append(protocol.send(_pack(("SELECT", address.db))))
        # Managed services may forbid CLIENT; that must not cost the connection.
        naming = protocol.send(_pack(("CLIENT", "SETNAME", self.client_name)))
        replies = await asyncio.gather(*required, naming, return_exceptions=True)
        for reply in replies[:-1]:
            if isinstance(reply, BaseException):
                raise reply


def _retrieve_exception(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # every waiter may have given up: keep asyncio from logging it


class RedisScript:
    """A Lua script run by its SHA1 (``EVALSHA``), sent whole only when Redis lacks it.

    ``NOSCRIPT`` (a restarted or failed-over Redis, ``SCRIPT FLUSH``) is answered
    with ``EVAL``, which also puts the script back in Redis's cache.
    """

    def __init__(self, link: RedisLink, source: str) -> None:
        self.link = link
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, keys: Sequence[str], args: Sequence[CommandArgument]) -> Any:
        try:
            return await self.link.execute("EVALSHA", self.sha, len(keys), *keys, *args)
        except RedisReplyError as error:
            if not str(error).startswith("NOSCRIPT"):
                raise
        return await self.link.execute("EVAL", self.source, len(keys), *keys, *args)
