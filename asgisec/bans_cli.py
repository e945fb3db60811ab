"""``asgisec bans``: list, add and remove bans in the configured shared storage.

    asgisec bans list
    asgisec bans add 203.0.113.9 [--for 1h]   # an address or CIDR; no --for: until removed
    asgisec bans remove 203.0.113.9

Bans live where the rate limits do (``RATE_LIMIT_STORAGE_URI``): with Redis, every asgisec
process sharing it enforces a ban within a second. With ``memory://`` each process keeps its
own table that no other process can reach, so the command refuses (exit status 2) and says
so. A Redis that cannot be reached is exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import time
from datetime import UTC, datetime
from typing import Any

from .bans import BANS_KEY, normalise_entry, parse_duration

__all__ = ["register"]


def register(commands: Any) -> None:
    bans = commands.add_parser(
        "bans",
        help="list, add or remove banned client addresses (shared through Redis)",
        description="Manage the bans that every asgisec process sharing "
        "RATE_LIMIT_STORAGE_URI enforces.",
    )
    actions = bans.add_subparsers(title="actions", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="show the bans in force")
    add = actions.add_parser("add", help="ban an address or network")
    add.add_argument("ip", metavar="IP", help="an address (203.0.113.9) or network (10.0.0.0/8)")
    add.add_argument(
        "--for",
        dest="duration",
        metavar="DURATION",
        help="how long: 90s, 15m, 1h, 7d (default: until removed)",
    )
    remove = actions.add_parser("remove", help="lift a ban")
    remove.add_argument("ip", metavar="IP")
    for parser in (listing, add, remove):
        parser.add_argument("--env-file", metavar="FILE", help="read variables from FILE too")
    listing.set_defaults(handler=_list)
    add.set_defaults(handler=_add)
    remove.set_defaults(handler=_remove)


def _client(args: argparse.Namespace) -> Any:
    from .cli import StartupError, load_config  # noqa: PLC0415 - cli imports this module
    from .ratelimit.redis import client_from_url  # noqa: PLC0415 - the redis extra

    uri = load_config(args.env_file).rate_limit.rate_limit_storage_uri
    if uri.startswith("memory://"):
        raise StartupError(
            "bans need shared storage: RATE_LIMIT_STORAGE_URI is memory://, which every "
            "process keeps to itself; set it to a Redis URL (redis://host:6379/0)"
        )
    client, extra = client_from_url(uri, timeout=5.0, connect_timeout=5.0)
    return client, extra


def _entry(text: str) -> str:
    from .cli import StartupError  # noqa: PLC0415

    try:
        return normalise_entry(text)
    except ValueError:
        raise StartupError(f"{text!r} is not an IP address or CIDR network") from None


async def _run(args: argparse.Namespace, action: Any) -> int:
    from .errors import BackendError  # noqa: PLC0415

    client, extra = _client(args)
    try:
        await action(client)
    except (OSError, ConnectionError, TimeoutError) as exc:
        raise BackendError(f"cannot reach Redis ({type(exc).__name__}: {exc})") from None
    except Exception as exc:
        if type(exc).__module__.startswith("redis"):
            if type(exc).__name__ in ("ConnectionError", "TimeoutError"):
                raise BackendError(f"cannot reach Redis ({exc})") from None
            raise BackendError(f"Redis refused the command ({type(exc).__name__})") from None
        raise
    finally:
        for each in (client, *extra):
            await each.aclose()
    return 0


def _when(until: float) -> str:
    if math.isinf(until):
        return "until removed"
    left = max(0, int(until - time.time()))
    try:
        stamp = datetime.fromtimestamp(until, UTC).isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError):  # past year 9999: written by hand, or by
        return f"until Unix time {until:.6g} (centuries left)"  # a huge AUTO_BAN_DURATION
    return f"until {stamp} ({left} s left)"


def _list(args: argparse.Namespace) -> int:
    async def action(client: Any) -> None:
        await client.zremrangebyscore(BANS_KEY, "-inf", time.time())
        rows = await client.zrange(BANS_KEY, 0, -1, withscores=True)
        if not rows:
            print("no bans in force")
        for member, score in rows:
            name = member.decode() if isinstance(member, bytes) else str(member)
            print(f"{name}\t{_when(float(score))}")

    return asyncio.run(_run(args, action))


def _add(args: argparse.Namespace) -> int:
    from .cli import StartupError  # noqa: PLC0415

    entry = _entry(args.ip)
    seconds = None
    if args.duration is not None:
        try:
            seconds = parse_duration(args.duration)
        except ValueError as exc:
            raise StartupError(f"--for: {exc}") from None
    until = math.inf if seconds is None else time.time() + seconds

    async def action(client: Any) -> None:
        await client.zadd(BANS_KEY, {entry: until})
        print(f"banned {entry} {_when(until)}")

    return asyncio.run(_run(args, action))


def _remove(args: argparse.Namespace) -> int:
    entry = _entry(args.ip)

    async def action(client: Any) -> None:
        removed = await client.zrem(BANS_KEY, entry)
        print(f"removed the ban on {entry}" if removed else f"{entry} was not banned")

    return asyncio.run(_run(args, action))
