"""The Redis backend: every bucket of a request decided in one Lua call, on Redis's clock.

One request is one ``EVALSHA`` of ``lua/consume.lua``: the script reads every bucket, admits
the request only if all of them do, charges all or none, sets each key's TTL to the time the
bucket needs to be full again, and replies with everything the response headers need. The
clock is Redis ``TIME``, so worker processes and machines never disagree about "now".

Keys are ``asgisec:v1:{<identity>}:<bucket key>``: versioned, and the identity is a hash tag,
so all keys of one call live in one Redis Cluster slot (no CROSSSLOT, S25).

Calls arriving in the same event-loop tick are coalesced: they go out together as one pipeline
(one round trip), at most ``max_inflight`` pipelines at a time. ``NOSCRIPT`` (after ``SCRIPT
FLUSH``, a restart or a failover) is answered by re-sending those calls with ``EVAL``, which
also puts the script back in that node's cache (S9). Every failure reaches the caller as one
:class:`~asgisec.errors.BackendError`; what to do then is :mod:`.resilient`'s job.

redis-py is imported only when this backend is built: ``import asgisec`` never needs it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

from ..config import mask_secret
from ..errors import BackendError, ConfigError
from .backend import Decision
from .bucket import Bucket, BucketResult

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

__all__ = [
    "KEY_PREFIX",
    "SCRIPT",
    "SCRIPT_SHA",
    "RedisBackend",
    "decision_from_reply",
    "redis_key",
    "script_arguments",
]

SCRIPT = resources.files(__package__).joinpath("lua/consume.lua").read_text("utf-8")
SCRIPT_SHA = hashlib.sha1(SCRIPT.encode()).hexdigest()  # noqa: S324 - Redis names scripts so
KEY_PREFIX = "asgisec:v1:"  # bump the version when the stored format changes

_VARIABLE = "RATE_LIMIT_STORAGE_URI"
_INSTALL = 'pip install "asgisec[redis]"'
# '{' and '}' would end the hash tag early; '%' is escaped too so the mapping stays one-to-one.
_TAG_ESCAPES = str.maketrans({"%": "%25", "{": "%7B", "}": "%7D"})
_FIELDS = 5  # allowed, tat_us, remaining, reset_us, retry_us per bucket (BucketResult's order)
# Loop turns from a deadline to a reply already in the socket reaching its caller: the poll
# that reads it, the task that parses it, and one spare. Microseconds on an idle loop.
_SETTLE_HOPS = 4


def redis_key(identity: str, bucket: Bucket) -> str:
    """``asgisec:v1:{<identity>}:<bucket key>``; an empty identity still makes a hash tag."""
    tag = identity.translate(_TAG_ESCAPES) or "%"
    return f"{KEY_PREFIX}{{{tag}}}:{bucket.key}"


def script_arguments(
    identity: str, buckets: Sequence[Bucket], cost: int, now_us: int | None = None
) -> tuple[list[str], list[int | str]]:
    """KEYS and ARGV of one script call (the layout is documented in ``consume.lua``)."""
    keys = [redis_key(identity, bucket) for bucket in buckets]
    args: list[int | str] = [cost, "" if now_us is None else now_us]
    for bucket in buckets:
        args += (bucket.interval_us, bucket.tau_us, bucket.amount)
    return keys, args


def decision_from_reply(reply: object, count: int) -> Decision:
    """Turn the script's flat integer reply for ``count`` buckets into a :class:`Decision`."""
    if (
        not isinstance(reply, list)
        or len(reply) != 2 + _FIELDS * count
        or not all(type(value) is int for value in reply)
    ):
        raise BackendError(f"unexpected reply from the rate-limit script: {reply!r:.200}")
    results = [
        BucketResult(bool(reply[i]), reply[i + 1], reply[i + 2], reply[i + 3], reply[i + 4])
        for i in range(2, len(reply), _FIELDS)
    ]
    return Decision(bool(reply[0]), results)


class _Call(NamedTuple):
    keys: list[str]
    args: list[int | str]
    future: asyncio.Future[object]


def _backend_error(exc: BaseException) -> BackendError:
    error = BackendError(f"Redis: {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


class RedisBackend:
    """Token buckets in Redis (standalone, Sentinel or Cluster), one script call per request.

    ``client`` is a ``redis.asyncio.Redis`` or ``RedisCluster``; build it with
    :meth:`from_url`, which also turns off redis-py's retries (a retried script may charge a
    request twice, and retries turn a dead Redis into seconds of latency).
    """

    #: Every call is bounded by ``timeout`` here (see :meth:`_expire`), so the failure policy
    #: adds no timeout of its own around it.
    bounds_calls = True

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        timeout: float = 0.05,  # 50 ms: a healthy Redis answers in well under 1 ms
        max_batch: int = 256,  # calls per pipeline: ~40 KB of commands, one TCP window
        max_inflight: int = 4,  # pipelines in flight; while all are busy, calls wait and merge
        batch_timeout: float = 2.0,  # bounds one pipeline end to end, a fresh connect included
        also_close: Sequence[Any] = (),  # clients to close with this one (Sentinel's)
    ) -> None:
        from redis.exceptions import NoScriptError  # noqa: PLC0415 - optional dependency

        if timeout <= 0 or batch_timeout <= 0 or max_batch < 1 or max_inflight < 1:
            raise ValueError("timeouts must be positive, max_batch and max_inflight at least 1")
        self.client = client
        self.timeout = timeout
        self.max_batch = max_batch
        self.max_inflight = max_inflight
        self.batch_timeout = batch_timeout
        self._also_close = tuple(also_close)
        self._noscript = NoScriptError
        self._pending: list[_Call] = []
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._replies = 0  # pipelines Redis has answered: a sign of life for _expire

    # ------------------------------------------------------------------ the protocol

    async def consume(self, identity: str, buckets: Sequence[Bucket], cost: int = 1) -> Decision:
        """Check all ``buckets`` of ``identity`` and charge ``cost`` to all, or to none."""
        return await self.consume_at(identity, buckets, cost, now_us=None)

    async def consume_at(
        self, identity: str, buckets: Sequence[Bucket], cost: int = 1, *, now_us: int | None
    ) -> Decision:
        """:meth:`consume` deciding at ``now_us`` instead of Redis ``TIME``: for tests only.

        ``now_us=None`` is exactly :meth:`consume`. Production code never passes a time: the
        point of the script is that no client clock is involved.
        """
        if not buckets:
            return Decision(True, ())
        if self._closed:
            raise BackendError("the Redis backend is closed")
        keys, args = script_arguments(identity, buckets, cost, now_us)
        future = self._submit(keys, args)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        timer = loop.call_at(deadline, self._expire, future, deadline, self._replies, True)
        try:
            reply = await future
        finally:
            timer.cancel()  # a re-armed timer finds the future done and does nothing
        return decision_from_reply(reply, len(buckets))

    def _expire(
        self, future: asyncio.Future[object], deadline: float, replies: int, first: bool
    ) -> None:
        """The call's deadline: fail it, unless the lateness is this event loop's own.

        On a saturated server the loop reaches Redis's reply late (a few loop iterations of
        tens of ms each), and even this timer runs late. Neither is Redis being slow: if
        Redis answered any call since this one was made, or this timer itself ran at least
        half a timeout late, the call gets one more ``timeout``. A dead or paused Redis
        answers nothing, and an idle loop runs timers on time: those calls fail at
        ``timeout`` as configured.

        Either way the call fails only after :meth:`_settle` has let the loop read what is
        already in the socket: after a stall, the reply and the deadline fall due in the same
        loop iteration, and the timer runs before the task that reads the reply.
        """
        if future.done():
            return
        loop = future.get_loop()
        now = loop.time()
        if first and (self._replies != replies or now - deadline >= self.timeout / 2):
            later = now + self.timeout
            loop.call_at(later, self._expire, future, later, self._replies, False)
            return
        self._settle(future, _SETTLE_HOPS)

    def _settle(self, future: asyncio.Future[object], hops: int) -> None:
        """Fail ``future`` unless a reply received by now reaches it within ``hops`` turns."""
        if future.done():
            return
        if hops:
            future.get_loop().call_soon(self._settle, future, hops - 1)
            return
        future.set_exception(BackendError(f"Redis did not answer within {self.timeout:g} s"))

    async def warm_up(self) -> None:
        """Open the connections and load the script before the first request (lifespan start).

        Otherwise the first requests of each worker pay for the TCP connect, redis-py's
        handshake (and a cluster's topology discovery) inside their ``timeout``: on a busy
        machine that is over 50 ms, so a healthy Redis fails them, the failure policy decides
        them locally (fail-open admits what the shared limit refuses) and three of them open
        the circuit for a cool-down. One ``SCRIPT LOAD`` per pipeline that may be in flight
        opens as many connections as the calls will use. Bounded by ``batch_timeout``;
        raises :class:`~asgisec.errors.BackendError` when Redis cannot be reached.
        """
        try:
            async with asyncio.timeout(self.batch_timeout):
                await asyncio.gather(
                    *(self.client.script_load(SCRIPT) for _ in range(self.max_inflight))
                )
        except Exception as exc:  # the boundary: whatever redis-py or the socket raised
            raise _backend_error(exc) from exc

    async def aclose(self) -> None:
        """Fail queued calls, stop in-flight pipelines, close every connection."""
        self._closed = True
        pending, self._pending = self._pending, []
        for call in pending:
            if not call.future.done():
                call.future.set_exception(BackendError("the Redis backend is closed"))
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.client.aclose()
        for client in self._also_close:
            await client.aclose()

    # ------------------------------------------------------------------ coalescing

    def _submit(self, keys: list[str], args: list[int | str]) -> asyncio.Future[object]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[object] = loop.create_future()
        self._pending.append(_Call(keys, args, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)  # after every task of this tick has queued its call
        return future

    def _flush(self) -> None:
        self._scheduled = False
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        while self._pending and len(self._tasks) < self.max_inflight:
            head = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            batch = [call for call in head if not call.future.done()]  # callers gone: skip
            if batch:
                task = loop.create_task(self._run(batch))
                self._tasks.add(task)
                task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._pending and not self._scheduled and not self._closed:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    async def _run(self, batch: list[_Call]) -> None:
        try:
            async with asyncio.timeout(self.batch_timeout):
                replies = await self._pipeline(batch, "EVALSHA")
                self._replies += 1
                missing = [
                    i for i, reply in enumerate(replies) if isinstance(reply, self._noscript)
                ]
                if missing:  # script cache flushed, server restarted or failed over: S9
                    again = await self._pipeline([batch[i] for i in missing], "EVAL")
                    for i, reply in zip(missing, again, strict=True):
                        replies[i] = reply
        except asyncio.CancelledError:
            for call in batch:
                if not call.future.done():
                    call.future.set_exception(BackendError("the Redis backend is closed"))
            raise
        except Exception as exc:  # the boundary: whatever redis-py or the socket raised
            for call in batch:
                if not call.future.done():
                    call.future.set_exception(_backend_error(exc))
            return
        for call, reply in zip(batch, replies, strict=True):
            if call.future.done():
                continue
            if isinstance(reply, BaseException):
                call.future.set_exception(_backend_error(reply))
            else:
                call.future.set_result(reply)

    async def _pipeline(self, batch: Sequence[_Call], command: str) -> list[object]:
        body = SCRIPT_SHA if command == "EVALSHA" else SCRIPT
        pipe = self.client.pipeline(transaction=False)
        for call in batch:
            pipe.execute_command(command, body, len(call.keys), *call.keys, *call.args)
        replies = list(await pipe.execute(raise_on_error=False))
        if len(replies) != len(batch):
            raise BackendError(f"{len(replies)} replies to a pipeline of {len(batch)}")
        return replies

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_url(
        cls,
        uri: str,
        *,
        timeout: float = 0.05,  # RATE_LIMIT_BACKEND_TIMEOUT's default
        connect_timeout: float = 1.0,  # a TLS handshake across regions; callers never wait it
    ) -> RedisBackend:
        """Build the backend for ``redis://``, ``rediss://``, ``redis+cluster://`` or
        ``redis+sentinel://`` (see :func:`client_from_url`). Raises ``ConfigError``."""
        client, extra = client_from_url(uri, timeout=timeout, connect_timeout=connect_timeout)
        return cls(client, timeout=timeout, also_close=extra)


def client_from_url(
    uri: str, *, timeout: float, connect_timeout: float
) -> tuple[Redis | RedisCluster, tuple[Any, ...]]:
    """A redis-py asyncio client for ``uri`` and any helper clients to close with it.

    - ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` for TLS (redis-py's query
      parameters such as ``ssl_ca_certs`` and ``ssl_cert_reqs`` apply);
    - ``redis+cluster://[[user]:password@]host:port[,host:port...]`` (Redis Cluster seeds);
    - ``redis+sentinel://[[user]:password@]host:port[,host:port...]/service[/db]``; the
      password is the data nodes'; ``?sentinel_password=`` authenticates to Sentinel.

    Cluster URLs take ``?ssl=true`` and ``?ssl_ca_certs=PATH`` for TLS.
    """
    masked = mask_secret(uri)
    try:
        from redis.asyncio import Redis  # noqa: PLC0415 - optional dependency
        from redis.asyncio.retry import Retry  # noqa: PLC0415
        from redis.backoff import NoBackoff  # noqa: PLC0415
    except ImportError:
        raise ConfigError(_VARIABLE, masked, _INSTALL) from None

    common: dict[str, Any] = {
        # A stalled read (paused Redis) frees its connection after this long. Not `timeout`:
        # on a busy loop a read times out before the loop gets to the reply, and the
        # connection is dropped on a healthy Redis; calls are bounded by `timeout` anyway.
        "socket_timeout": max(timeout, connect_timeout),
        "socket_connect_timeout": connect_timeout,
        "retry": Retry(NoBackoff(), 0),  # never re-send a script: it may have run
    }
    parts = urlsplit(uri)
    try:
        if parts.scheme in ("redis", "rediss"):
            if not parts.path.strip("/").isdigit() and parts.path not in ("", "/"):
                raise ConfigError(_VARIABLE, masked, "a database number as the path: /0")
            return Redis.from_url(uri, **common, **_stale_check()), ()
        userinfo, _, hostlist = parts.netloc.rpartition("@")
        user, _, password = userinfo.partition(":")
        auth: dict[str, Any] = {
            "username": unquote(user) or None,
            "password": unquote(password) or None,
        }
        if parts.scheme == "redis+cluster":
            from redis.asyncio.cluster import ClusterNode, RedisCluster  # noqa: PLC0415

            if parts.path.strip("/"):
                raise ConfigError(_VARIABLE, masked, "no database in a cluster URL")
            options = _query_options(parts.query, ("ssl", "ssl_ca_certs"), masked)
            nodes = [ClusterNode(host, port) for host, port in _hosts(hostlist, 6379, masked)]
            cluster = RedisCluster(startup_nodes=nodes, **auth, **common, **options)
            return cluster, ()
        if parts.scheme == "redis+sentinel":
            from redis.asyncio.sentinel import Sentinel  # noqa: PLC0415

            path = [p for p in parts.path.split("/") if p]
            if not path or len(path) > 2 or (len(path) == 2 and not path[1].isdigit()):
                raise ConfigError(_VARIABLE, masked, "redis+sentinel://host:port/service[/db]")
            options = _query_options(parts.query, ("sentinel_password",), masked)
            sentinel_auth = {"password": options.get("sentinel_password")}
            sentinel = Sentinel(
                _hosts(hostlist, 26379, masked),
                sentinel_kwargs={**common, **sentinel_auth},
                **common,
            )
            db = int(path[1]) if len(path) == 2 else 0
            master = sentinel.master_for(unquote(path[0]), db=db, **auth, **_stale_check())
            return master, tuple(sentinel.sentinels)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:  # redis-py's own URL and option checks
        raise ConfigError(_VARIABLE, masked, f"a valid Redis URL ({exc})") from None
    raise ConfigError(
        _VARIABLE, masked, "redis://, rediss://, redis+cluster:// or redis+sentinel://"
    )


def _stale_check() -> dict[str, Any]:
    """Options that let the pool notice a connection the server closed (a restart).

    redis-py >= 7 skips its "is this pooled socket still open?" check while maintenance
    notifications are left on "auto", so the first call after a Redis restart fails; turning
    them off (they need RESP3 and a Redis Enterprise proxy anyway) restores the check.
    """
    try:
        from redis.maint_notifications import MaintNotificationsConfig  # noqa: PLC0415
    except ImportError:  # redis-py < 7: the check is always on
        return {}
    return {"maint_notifications_config": MaintNotificationsConfig(enabled=False)}


def _query_options(query: str, allowed: tuple[str, ...], masked: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for name, values in parse_qs(query, keep_blank_values=True).items():
        if name not in allowed:
            raise ConfigError(_VARIABLE, masked, f"query parameters among {', '.join(allowed)}")
        value = values[-1]
        options[name] = value.lower() in ("1", "true", "yes", "on") if name == "ssl" else value
    return options


def _hosts(hostlist: str, default_port: int, masked: str) -> list[tuple[str, int]]:
    """``h1:p1,[::1]:p2,h3`` → ``[(h1, p1), ("::1", p2), (h3, default_port)]``."""
    hosts = []
    for item in (part.strip() for part in hostlist.split(",")):
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port = rest.removeprefix(":")
        elif item.count(":") == 1:
            host, port = item.split(":")
        else:
            host, port = item, ""
        if not host or (port and not port.isdigit()):
            raise ConfigError(_VARIABLE, masked, "host:port[,host:port...] after the scheme")
        hosts.append((host, int(port) if port else default_port))
    return hosts
