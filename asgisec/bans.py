"""Containment: the static blocklist, bans with an expiry, and auto-ban after repeated findings.

:class:`BanList` answers "is this client refused?" from memory, on every request, without
I/O: ``BLOCKED_IPS`` networks plus bans (an address or network with an expiry). With Redis
configured (``RATE_LIMIT_STORAGE_URI``), :class:`SharedState` keeps the bans in one sorted
set, ``asgisec:v1:bans`` (member: the address or network; score: when the ban ends, Unix
seconds), and a background task in every process reloads it once a second, so a ban added by
``asgisec bans add`` or by another instance's auto-ban is enforced everywhere within a second.
The same task adds this process's counters to the hash ``asgisec:v1:counters`` (HINCRBY,
batched) and reads the fleet's totals back, for ``/health`` and ``/metrics``.

The request path never waits on Redis: it only reads the in-memory table and appends to
in-memory deltas.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
import time
from collections import OrderedDict
from typing import Any

from .clients import IPNetwork, _parse_ip

__all__ = ["BANS_KEY", "COUNTERS_KEY", "AutoBan", "BanList", "SharedState", "parse_duration"]

BANS_KEY = "asgisec:v1:bans"
COUNTERS_KEY = "asgisec:v1:counters"
STRIKES_PREFIX = "asgisec:v1:strikes:"
SYNC_INTERVAL = 1.0  # seconds between reloads: a new ban is enforced fleet-wide within this
_MAX_TRACKED = 10_000  # clients whose recent findings the memory auto-ban remembers

logger = logging.getLogger("asgisec.bans")

_UNITS = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}
# Ten years: longer is "until removed" (no --for), and an end date stays a date (year < 9999).
MAX_DURATION = 3_650 * 86_400


def parse_duration(text: str) -> int:
    """``90``, ``90s``, ``15m``, ``1h``, ``7d`` → seconds, at most ten years; raises ValueError."""
    text = text.strip().lower()
    number, unit = (text[:-1], text[-1]) if text and text[-1] in _UNITS else (text, "s")
    if not number.isdigit() or int(number) < 1:
        raise ValueError(f"a duration such as 90s, 15m, 1h or 7d, not {text!r}")
    if len(number) > 12 or int(number) * _UNITS[unit] > MAX_DURATION:
        raise ValueError(
            f"{text!r} is more than ten years (3650d); leave --for out to ban until removed"
        )
    return int(number) * _UNITS[unit]


def normalise_entry(entry: str) -> str:
    """``10.0.0.1`` → ``10.0.0.1``; ``10.0.0.0/8`` kept; ``::FFFF:1.2.3.4`` → ``1.2.3.4``."""
    network = ipaddress.ip_network(entry.strip(), strict=False)
    if network.num_addresses == 1:
        address = network.network_address
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(address)
    return str(network)


def plain_address(client: str) -> str:
    """``::ffff:1.2.3.4`` → ``1.2.3.4``, ``2001:DB8::1`` → ``2001:db8::1``; else unchanged."""
    if ":" not in client:
        return client
    address = _parse_ip(client)
    return client if address is None else str(address)


class BanList:
    """Who is refused, from memory. Exact addresses in a dict, networks in a short tuple."""

    __slots__ = ("active", "addresses", "networks", "static")

    def __init__(self, blocked: tuple[str, ...] = ()) -> None:
        self.static: tuple[IPNetwork, ...] = tuple(
            ipaddress.ip_network(entry.strip(), strict=False) for entry in blocked
        )
        self.addresses: dict[str, float] = {}  # address → when the ban ends (Unix seconds)
        self.networks: dict[IPNetwork, float] = {}
        self.active = bool(self.static)

    def ban(self, entry: str, until: float) -> None:
        key = normalise_entry(entry)
        if "/" in key:
            self.networks[ipaddress.ip_network(key)] = until
        else:
            self.addresses[key] = until
        self.active = True

    def unban(self, entry: str) -> None:
        key = normalise_entry(entry)
        self.addresses.pop(key, None)
        with contextlib.suppress(ValueError):
            self.networks.pop(ipaddress.ip_network(key), None)
        self._settle()

    def replace(self, entries: dict[str, float]) -> None:
        """Take the shared table as the whole truth (what another process removed goes)."""
        self.addresses.clear()
        self.networks.clear()
        for entry, until in entries.items():
            with contextlib.suppress(ValueError):
                self.ban(entry, until)
        self._settle()

    def _settle(self) -> None:
        self.active = bool(self.static or self.addresses or self.networks)

    def refuses(self, client: str) -> str | None:
        """``"blocked"`` (BLOCKED_IPS), ``"banned"`` (a ban in force) or None.

        Bans are kept under :func:`normalise_entry`'s spelling; a client named otherwise (a
        dual-stack server's ``::ffff:1.2.3.4``, an IPv6 address in capitals) is looked up
        under that spelling too.
        """
        key = client
        until = self.addresses.get(key)
        if until is None and self.addresses and ":" in client:
            key = plain_address(client)
            until = self.addresses.get(key)
        if until is not None:
            if until > time.time():
                return "banned"
            del self.addresses[key]
            self._settle()
        if not self.static and not self.networks:
            return None
        address = _parse_ip(client)
        if address is None:
            return None
        for network in self.static:
            if address in network:
                return "blocked"
        now = time.time()
        for network, ends in self.networks.items():
            if address in network and ends > now:
                return "banned"
        return None

    def listing(self) -> dict[str, float]:
        now = time.time()
        entries = {k: v for k, v in self.addresses.items() if v > now}
        entries.update({str(k): v for k, v in self.networks.items() if v > now})
        return entries


class AutoBan:
    """``threshold`` findings from one client within ``window`` seconds → a ban (memory)."""

    __slots__ = ("duration", "recent", "threshold", "window")

    def __init__(self, threshold: int, window: int, duration: int) -> None:
        self.threshold = threshold
        self.window = window
        self.duration = duration
        self.recent: OrderedDict[str, list[float]] = OrderedDict()

    def strike(self, client: str, now: float) -> bool:
        """Record a finding; True when this one reaches the threshold."""
        times = self.recent.pop(client, None) or []
        times = [t for t in times if t > now - self.window]
        times.append(now)
        if len(times) >= self.threshold:
            return True
        self.recent[client] = times
        if len(self.recent) > _MAX_TRACKED:
            self.recent.popitem(last=False)  # the least recently seen client is forgotten
        return False


class SharedState:
    """Bans and counters shared through Redis by a background task (see the module doc)."""

    def __init__(self, uri: str, bans: BanList, counters: Any, auto_ban: AutoBan | None) -> None:
        from .ratelimit.redis import client_from_url  # noqa: PLC0415 - the redis extra

        self.client, self._also_close = client_from_url(uri, timeout=1.0, connect_timeout=1.0)
        self.bans = bans
        self.counters = counters
        self.auto_ban = auto_ban
        self.fleet: dict[str, int] = {}
        self.strikes: list[str] = []  # clients with a finding since the last sync
        self._sent: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._failing = False

    def start(self) -> None:
        """Start the sync task on the running loop (first request), once."""
        if self._task is None and not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def aclose(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        with contextlib.suppress(Exception):
            await self.sync()  # the last deltas
        for client in (self.client, *self._also_close):
            with contextlib.suppress(Exception):
                await client.aclose()

    async def _run(self) -> None:
        while True:
            try:
                await self.sync()
                if self._failing:
                    logger.warning("shared bans and counters: Redis reachable again")
                self._failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the boundary: keep serving from the last table
                if not self._failing:
                    logger.warning(
                        "shared bans and counters: Redis failed (%s)", type(exc).__name__
                    )
                self._failing = True
            await asyncio.sleep(SYNC_INTERVAL)

    def _deltas(self) -> tuple[dict[str, int], dict[str, int]]:
        now: dict[str, int] = self.counters.flat()
        deltas = {k: v - self._sent.get(k, 0) for k, v in now.items()}
        return {k: v for k, v in deltas.items() if v}, now

    async def sync(self) -> None:
        """Send this process's new counts and strikes; load the bans and the fleet's totals."""
        deltas, now = self._deltas()
        strikes, self.strikes = self.strikes, []
        pipe = self.client.pipeline(transaction=False)
        for field, delta in deltas.items():
            pipe.hincrby(COUNTERS_KEY, field, delta)
        auto = self.auto_ban
        if auto is None:
            strikes = []
        for client in strikes:
            key = STRIKES_PREFIX + client
            pipe.incr(key)
            pipe.expire(key, auto.window if auto else 1, nx=True)
        pipe.zremrangebyscore(BANS_KEY, "-inf", time.time())
        pipe.zrange(BANS_KEY, 0, -1, withscores=True)
        pipe.hgetall(COUNTERS_KEY)
        replies = await pipe.execute()
        self._sent = now
        offset = len(deltas)
        new_bans = []
        for index, client in enumerate(strikes):
            count = replies[offset + 2 * index]
            if auto is not None and int(count) >= auto.threshold:
                new_bans.append(client)
        if new_bans and auto is not None:
            until = time.time() + auto.duration
            await self.client.zadd(BANS_KEY, dict.fromkeys(new_bans, until))
            for client in new_bans:
                self.bans.ban(client, until)
        table = replies[-2]
        entries = {_text(member): float(score) for member, score in table}
        for client in new_bans:
            entries[client] = time.time() + (auto.duration if auto else 0)
        self.bans.replace(entries)
        self.fleet = {_text(k): int(v) for k, v in replies[-1].items()}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def until_for(seconds: int | None) -> float:
    return math.inf if seconds is None else time.time() + seconds
