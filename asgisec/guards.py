"""Request guards: the per-request deadline, the concurrency cap, the websocket Origin check.

Sans-IO where it can be: :class:`ConcurrencyLimit` and :class:`WebsocketOrigins` only decide.
:class:`Deadlines` is the one piece that touches the event loop, because a deadline has to
interrupt the app: it keeps every running request in one dict, in deadline order (every request
gets the same timeout, so insertion order is deadline order), and keeps a single timer armed at
the earliest deadline. A request costs a dict insert and delete, not a timer of its own
(``asyncio.timeout`` per request would cost more than the rest of the pipeline).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

__all__ = ["ConcurrencyLimit", "Deadline", "Deadlines", "WebsocketOrigins"]


class Deadline:
    """One running request: when it must end, and the task to cancel if it does not."""

    __slots__ = ("cancelling", "expired", "task", "when")

    def __init__(self, when: float, task: asyncio.Task[object]) -> None:
        self.when = when
        self.task = task
        self.cancelling = task.cancelling()  # cancellations already pending are not ours
        self.expired = False

    def ours(self) -> bool:
        """After the app ended: True when the deadline (and nothing else) cancelled it.

        Takes back asgisec's cancellation, as ``asyncio.timeout`` does, so the task can go on
        to send the 504 and a server's own cancellation is never swallowed.
        """
        if not self.expired:
            return False
        return self.task.uncancel() <= self.cancelling


class Deadlines:
    """Cancels the requests that run past ``timeout`` seconds, with one timer for them all.

    Tied to the event loop of the requests it sees; a request on another loop starts afresh
    (servers run one loop per process; tests may run several one after the other).
    """

    __slots__ = ("loop", "running", "timeout", "timer")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.loop: asyncio.AbstractEventLoop | None = None
        self.running: dict[Deadline, None] = {}
        self.timer: asyncio.TimerHandle | None = None

    def enter(self) -> Deadline | None:
        """Start the clock for the current task (None outside a task: nothing to cancel).

        Outside asyncio (a trio server, or a coroutine stepped by hand) there is no loop to
        time with: the request runs without a deadline rather than failing.
        """
        try:
            task = asyncio.current_task()
        except RuntimeError:  # no running loop
            return None
        if task is None:
            return None
        loop = task.get_loop()
        if loop is not self.loop:
            self.loop, self.running, self.timer = loop, {}, None
        deadline = Deadline(loop.time() + self.timeout, task)
        self.running[deadline] = None
        if self.timer is None:
            self.timer = loop.call_at(deadline.when, self._sweep)
        return deadline

    def leave(self, deadline: Deadline | None) -> None:
        if deadline is not None:
            self.running.pop(deadline, None)

    def _sweep(self) -> None:
        self.timer = None
        loop = self.loop
        if loop is None:
            return
        now = loop.time()
        running = self.running
        while running:
            first = next(iter(running))
            if first.when > now:
                self.timer = loop.call_at(first.when, self._sweep)
                return
            del running[first]
            first.expired = True
            first.task.cancel()


class ConcurrencyLimit:
    """At most ``limit`` requests hold a slot at once. Exact: used only on the event loop."""

    __slots__ = ("in_use", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0

    def acquire(self) -> bool:
        if self.in_use >= self.limit:
            return False
        self.in_use += 1
        return True

    def release(self) -> None:
        self.in_use -= 1


_DEFAULT_PORTS = {b"http": b":80", b"https": b":443", b"ws": b":80", b"wss": b":443"}


def _authority(value: bytes, scheme: bytes) -> bytes:
    value = value.lower()
    default = _DEFAULT_PORTS.get(scheme)
    if default is not None and value.endswith(default):
        return value[: -len(default)]
    return value


class WebsocketOrigins:
    """Which pages may open a websocket here: the cross-site websocket hijacking check.

    A browser always sends ``Origin`` on a websocket handshake and the server must check it
    (RFC 6455 §10.2): CORS does not apply to websockets. Allowed: the listed origins (``*``:
    any), the page's own origin (``Origin`` naming the request's Host), and clients that send
    no Origin at all, which are not browsers and so carry no victim's cookies.
    """

    __slots__ = ("allow_all", "origins")

    def __init__(self, origins: Iterable[str]) -> None:
        listed = tuple(origins)
        self.allow_all = "*" in listed
        self.origins = frozenset(o.encode("ascii") for o in listed if o != "*")

    def allows(self, origin: bytes | None, host: bytes | None) -> bool:
        if origin is None or self.allow_all:
            return True
        if origin.lower() in self.origins:
            return True
        scheme, sep, authority = origin.partition(b"://")
        if not sep or host is None:
            return False
        scheme = scheme.lower()
        return _authority(authority, scheme) == _authority(host, scheme)
