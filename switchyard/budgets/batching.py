"""Commands that arrive together go to Redis together: one pipelined round trip per tick.

A budget check is one Redis command per GraphQL request, and redis-py's
per-command path (pool checkout, retry wrapper, parser, observability hooks)
costs more CPU than the script it runs. ``Pipeliner`` queues the commands
issued during one turn of the event loop and sends them as one
non-transactional pipeline on one redis-py connection (``redis.asyncio``;
replies parsed, commands packed, by hiredis), so that cost is paid once per
batch rather than once per check::

    pipeliner = Pipeliner(redis_client("redis://cache:6379/0"), timeout=0.25)
    replies = await asyncio.gather(pipeliner.call("INCR", "a"), pipeliner.call("INCR", "b"))
    await pipeliner.aclose()

At most ``max_in_flight`` batches are out at once, each on a connection of
the pipeliner's own small pool: redis-py connections, made by the client's
``ConnectionPool`` (address, TLS, AUTH, database, client name), without the
pool's per-checkout bookkeeping. What arrives meanwhile goes out in the next
batch. Each round trip has its own deadline (``timeout``; opening a
connection, at least ``CONNECT_TIMEOUT``), and what goes wrong stays in its batch:

- no answer in time, or a broken connection: that batch's commands fail with
  ``RedisUnavailable`` (whether Redis ran them is unknown, so they are never
  sent again); the connection is dropped and the next batch opens a new one.
- an error reply fails only its own command (``RedisRefused``), except
  ``NOSCRIPT``, answered by sending the script itself (``EVAL``), and the
  replies of a server that is no longer the primary (``READONLY``,
  ``MASTERDOWN``): Redis ran nothing, so the idle connections are dropped (a
  failover behind the same address now reaches the new primary) and those
  commands are sent once more on a fresh connection.
- ``LOADING`` (a Redis still reading its data from disk) fails the batch as
  refused: Redis ran none of it.

On Redis Cluster the client is redis-py's ``RedisCluster``: its pipeline
splits a batch by node and follows ``MOVED``/``ASK`` itself; a broken node
connection or a ``READONLY`` makes the client rediscover the cluster's topology.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import hiredis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import (
    AskError,
    BusyLoadingError,
    ClusterDownError,
    MasterDownError,
    MovedError,
    NoScriptError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger("switchyard.budgets")
T = TypeVar("T")

# hiredis's stub types the command as a 1-tuple.
_pack = cast(Callable[[tuple[Any, ...]], bytes], hiredis.pack_command)

DEFAULT_MAX_IN_FLIGHT = 4
"""Batches out at once, one pooled connection each (per node on a cluster)."""
DEFAULT_MAX_PENDING = 10_000
"""Commands that may wait for a batch; beyond that they fail at once."""
MAX_BATCH = 1_000
"""Commands in one pipeline; more wait for the next."""
CONNECT_TIMEOUT = 1.0
"""Seconds (at least) to open a connection or learn a cluster's topology."""

_ROLE_ERRORS = (ReadOnlyError, MasterDownError)
_ERROR_CODES: dict[type[BaseException], str] = {
    ReadOnlyError: "READONLY",
    BusyLoadingError: "LOADING",
    MasterDownError: "MASTERDOWN",
    NoScriptError: "NOSCRIPT",
    MovedError: "MOVED",
    AskError: "ASK",
    TryAgainError: "TRYAGAIN",
    ClusterDownError: "CLUSTERDOWN",
}


class RedisUnavailable(Exception):
    """No answer: Redis is unreachable, too slow, or the connection broke (outcome unknown)."""


class RedisRefused(Exception):
    """Redis answered with an error (``READONLY`` even after reconnecting, ``WRONGTYPE``...)."""


class Command:
    """One command of a batch; ``script`` is the Lua source behind an ``EVALSHA``."""

    __slots__ = ("args", "future", "script")

    def __init__(
        self,
        args: tuple[Any, ...],
        future: asyncio.Future[Any] | None = None,
        script: str | None = None,
    ) -> None:
        self.args = args
        self.future = future
        self.script = script

    @property
    def abandoned(self) -> bool:
        """Whether its caller gave up before it was sent (a fire-and-forget command never is)."""
        return self.future is not None and self.future.done()

    def resolve(self, reply: Any) -> None:
        if self.future is not None and not self.future.done():
            self.future.set_result(reply)

    def fail(self, error: Exception) -> None:
        if self.future is None:
            logger.debug("a budget command sent without waiting failed: %s", error)
        elif not self.future.done():
            self.future.set_exception(error)


Collect = Callable[[list[Command]], list[Command]]


class Pipeliner:
    """Sends the commands of each event-loop tick to Redis as one pipeline.

    ``collect``, if given, sees each batch just before it is sent and returns
    the commands to send instead (the budget store adds its refunds there).
    The pipeliner owns ``client`` and closes it in ``aclose``.
    """

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        timeout: float,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        max_pending: int = DEFAULT_MAX_PENDING,
        collect: Collect | None = None,
    ) -> None:
        self.client = client
        self.timeout = timeout
        self.max_in_flight = max_in_flight
        self.max_pending = max_pending
        self.round_trips = 0
        """Pipelines sent so far (for tests and benchmarks)."""
        self._collect = collect
        self._queue: list[Command] = []
        self._scheduled = False
        self._wanted = False
        self._in_flight = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._generation = 0
        self._closed = False
        self._idle: list[AbstractConnection] = []
        self._connect_within = max(timeout, CONNECT_TIMEOUT)

    def call(self, *args: Any, script: str | None = None) -> asyncio.Future[Any]:
        """Queue one command; its reply (or ``RedisUnavailable``/``RedisRefused``) comes back."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self._closed:
            future.set_exception(RedisUnavailable("the budget store was closed"))
        elif len(self._queue) >= self.max_pending:
            future.set_exception(
                RedisUnavailable(f"{self.max_pending} commands already wait for Redis")
            )
        else:
            self._queue.append(Command(args, future, script))
            self.wake()
        return future

    def wake(self) -> None:
        """Send a batch at the end of this tick, even if nothing is queued (``collect`` may add).

        With ``max_in_flight`` batches out, it goes as soon as one of them is back.
        """
        self._wanted = True
        if not self._scheduled and not self._closed:
            self._start()

    async def aclose(self) -> None:
        """Send what is queued, wait for the batches out (each within ``timeout``), then close."""
        self._closed = True
        while True:
            if (self._queue or self._wanted) and not self._scheduled:
                self._start()
            if not self._tasks:
                break
            await asyncio.wait(set(self._tasks))
        for connection in self._idle:
            await connection.disconnect()
        await self.client.aclose()

    def _start(self) -> None:
        """A task that forms its batch when it first runs: after every command of this tick."""
        if self._in_flight >= self.max_in_flight:
            return
        self._scheduled = True
        self._in_flight += 1
        task = asyncio.get_running_loop().create_task(self._batch())
        self._tasks.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._in_flight -= 1
        if (self._queue or self._wanted) and not self._closed and not self._scheduled:
            self._start()

    async def _batch(self) -> None:
        self._scheduled = False
        self._wanted = False
        batch: list[Command] = []
        while self._queue and not batch:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            batch = [command for command in batch if not command.abandoned]
        if self._collect is not None:
            try:
                batch = self._collect(batch)
            except Exception as exc:  # a bug; still, no caller may wait forever
                logger.exception("budget batch could not be formed")
                for command in batch:
                    command.fail(RedisRefused(describe(exc)))
                return
        if batch:
            await self._send(batch)

    async def _send(self, batch: list[Command]) -> None:
        generation = self._generation
        todo = batch
        reconnected = False
        try:
            while todo:
                replies = await self._round_trip(todo)
                again: list[Command] = []
                broken = role_changed = False
                for command, reply in zip(todo, replies, strict=True):
                    if not isinstance(reply, Exception):
                        command.resolve(reply)
                    elif isinstance(reply, NoScriptError) and command.args[0] == "EVALSHA":
                        assert command.script is not None
                        command.args = ("EVAL", command.script, *command.args[2:])
                        again.append(command)
                    elif _role_error(reply) and not reconnected:
                        role_changed = True
                        again.append(command)
                    elif isinstance(reply, RedisConnectionError | RedisTimeoutError):
                        broken = True  # a cluster node's connection broke: unknown outcome
                        command.fail(RedisUnavailable(describe(reply)))
                    else:
                        command.fail(RedisRefused(self._explain(reply)))
                if broken:
                    await self._reset(generation)
                if role_changed:
                    reconnected = True
                    await self._reset(generation, role_changed=True)
                todo = again
        except asyncio.CancelledError:
            for command in todo:
                command.fail(RedisUnavailable("the budget store was closed"))
            raise
        except BusyLoadingError as exc:
            # A Redis still loading its data answers every command so; it ran none.
            for command in todo:
                command.fail(RedisRefused(describe(exc)))
        except (RedisConnectionError, RedisTimeoutError, RedisClusterException, TimeoutError,
                OSError) as exc:  # fmt: skip
            # Redis may or may not have run them: failing is safe, sending again is not.
            reason = describe(exc)
            if isinstance(exc, TimeoutError):
                reason = f"no reply from Redis within {self.timeout} s"
            for command in todo:
                command.fail(RedisUnavailable(reason))
            await self._reset(generation)
        except Exception as exc:
            for command in todo:
                command.fail(RedisRefused(describe(exc)))

    async def _round_trip(self, commands: list[Command]) -> list[Any]:
        """Every command's reply, or the error reply in its place; raises if none came."""
        client = self.client
        if isinstance(client, RedisCluster):
            # Learning the topology (CLUSTER SLOTS, COMMAND) is not one round trip: it has
            # its own bound. Once it is known this returns at once.
            async with asyncio.timeout(self._connect_within):
                await client.initialize()
            self.round_trips += 1
            pipeline = client.pipeline(transaction=False)
            for command in commands:
                pipeline.execute_command(*command.args)
            replies: list[Any] = await self._within_deadline(pipeline.execute(raise_on_error=False))
            return replies
        connection = await self._connection(client)
        self.round_trips += 1
        try:
            return await self._within_deadline(_pipelined(connection, commands))
        finally:
            self._idle.append(connection)

    async def _connection(self, client: Redis) -> AbstractConnection:
        """A connection of the pipeliner's own small pool (redis-py's), connected and clean.

        One batch holds one connection, so there are never more than
        ``max_in_flight``; they are made by the client's ``ConnectionPool``
        (address, password, TLS, client name) without its per-checkout bookkeeping.
        """
        idle = self._idle
        pool = client.connection_pool
        connection = idle.pop() if idle else pool.make_connection()  # type: ignore[no-untyped-call]
        try:
            if connection.is_connected and await _stale(connection):
                await connection.disconnect(nowait=True)  # Redis closed it (a restart)
            if not connection.is_connected:
                # Connecting (TCP, TLS, AUTH, CLIENT SETNAME) takes a few round trips: a
                # bound of its own, so that a busy event loop does not look like an outage.
                async with asyncio.timeout(self._connect_within):
                    await connection.connect()
        except BaseException:
            # Cut short mid-handshake it may look connected without being ready: reset it.
            await connection.disconnect(nowait=True)
            idle.append(connection)
            raise
        return connection

    async def _within_deadline(self, operation: Awaitable[T]) -> T:
        """``operation``, or ``TimeoutError`` when it takes longer than ``timeout``.

        Lighter than ``asyncio.timeout``, and lenient to a busy event loop: the
        cancellation waits behind the callbacks already due, so a reply that
        arrived in time is read even if the loop could not get to it at once
        (the deadline is for a late Redis, not for a busy gateway). A
        connection cancelled mid-reply is dropped by redis-py.
        """
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        expired = finished = False

        def expire() -> None:
            nonlocal expired
            if not finished:
                expired = True
                task.cancel()

        timer = loop.call_at(loop.time() + self.timeout, loop.call_soon, expire)
        try:
            return await operation
        except asyncio.CancelledError:
            if not expired:
                raise
            task.uncancel()
            raise TimeoutError from None
        finally:
            finished = True
            timer.cancel()

    def _explain(self, error: Exception) -> str:
        reason = describe(error)
        if isinstance(error, AskError) and not isinstance(self.client, RedisCluster):
            reason += " (a Redis Cluster node: set redis_cluster = true)"  # MOVED, ASK
        return reason

    async def _reset(self, generation: int, *, role_changed: bool = False) -> None:
        """Drop connections that lead to the wrong server, so the next command reconnects.

        A broken standalone connection is already dropped by redis-py; after a
        role change every idle one goes too. A cluster client forgets its
        topology (once per failure, not once per batch that saw it).
        """
        client = self.client
        if isinstance(client, RedisCluster):
            if generation == self._generation:
                self._generation += 1
                await client.aclose()  # the next command rediscovers the cluster
        elif role_changed:
            for connection in self._idle:
                await connection.disconnect(nowait=True)


async def _pipelined(connection: AbstractConnection, commands: list[Command]) -> list[Any]:
    """What redis-py's ``Pipeline`` does, without its per-batch bookkeeping.

    One write, then each reply in turn (an error reply in its command's
    place). A connection that breaks or is cancelled mid-way (the deadline) is
    dropped by redis-py, so no late reply reaches a later batch.
    """
    # hiredis (Redis's own C library, redis-py's parser here) packs a command in a
    # fraction of the time redis-py's pure-Python packer takes.
    await connection.send_packed_command(b"".join([_pack(command.args) for command in commands]))
    replies: list[Any] = []
    for _ in commands:
        try:
            replies.append(await connection.read_response())
        except ResponseError as error:
            replies.append(error)
    return replies


async def _stale(connection: AbstractConnection) -> bool:
    """Whether an idle connection was closed by Redis, or has bytes no one asked for."""
    try:
        can_read = getattr(connection, "can_read", None) or connection.can_read_destructive
        return bool(await can_read())
    except (RedisConnectionError, OSError):
        return True


def _role_error(error: Exception) -> bool:
    """The server stopped being a writable primary (Redis 6 wraps the code in a script error)."""
    return isinstance(error, _ROLE_ERRORS) or (
        isinstance(error, ResponseError) and "READONLY" in str(error)
    )


def describe(error: BaseException) -> str:
    """An error with its Redis code (``READONLY You can't write...``); never a password."""
    if isinstance(error, TimeoutError):
        return "no reply from Redis in time"
    text = str(error).strip()
    code = getattr(error, "status_code", None) or _ERROR_CODES.get(type(error), "")
    if code and not text.startswith(code):
        text = f"{code} {text}"
    if not isinstance(error, RedisError | OSError):
        text = f"{type(error).__name__}: {text}"
    return text or type(error).__name__
