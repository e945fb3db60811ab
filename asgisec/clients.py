"""Who the client is: the peer address, or a forwarded one only when the peer is a trusted proxy.

Every part of asgisec that needs a client address (rate limits now; logs, detection and bans
later) asks this one resolver, so they all agree and none can be fooled separately.

``X-Forwarded-For`` is a list each proxy appends to, so only its right end is written by
proxies we trust; everything to the left may be written by the client. The resolver walks it
from the right, skipping trusted proxies, and takes the first address that is not one: a
client behind a trusted proxy cannot choose its identity by sending the header itself
(slowapi #255), and a client talking to us directly is identified by its socket, whatever
headers it sends. Garbage never raises: an unparsable hop ends the walk at the last hop that
was understood.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

__all__ = ["ClientResolver", "rate_limit_identity"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    """``10.0.0.0/8``, ``127.0.0.1``, ``::1`` → networks; raises ValueError on anything else."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


@lru_cache(maxsize=4096)
def _parse_ip(text: str) -> IPAddress | None:
    """An address from a forwarded hop: ``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``, ``::1``."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _forwarded_for(values: list[bytes]) -> list[str]:
    """The ``for=`` parameters of RFC 7239 ``Forwarded`` headers, in order."""
    hops = []
    for value in values:
        for element in value.decode("latin-1").split(","):
            found = ""
            for pair in element.split(";"):
                key, _, param = pair.partition("=")
                if key.strip().lower() == "for":
                    found = param
            hops.append(found)  # an element without for= is an unknown hop
    return hops


class ClientResolver:
    """Resolves the client address of a request, trusting forwarded headers only from proxies."""

    __slots__ = ("header", "proxies", "trusts_anyone")

    def __init__(
        self, trusted_proxies: Iterable[str] = (), header: str = "x-forwarded-for"
    ) -> None:
        self.proxies = parse_networks(trusted_proxies)
        self.trusts_anyone = bool(self.proxies)
        self.header = header  # "x-forwarded-for" or "forwarded"

    def is_trusted(self, address: IPAddress | None) -> bool:
        return address is not None and any(address in network for network in self.proxies)

    def resolve(self, peer: str | None, forwarded: list[bytes] | None) -> str:
        """The client address for a request from ``peer`` carrying ``forwarded`` header values.

        ``forwarded`` are the raw values of the configured header (``X-Forwarded-For`` or
        ``Forwarded``), in the order received; None when absent.
        """
        if peer is None:
            return "unknown"
        if not self.trusts_anyone or not forwarded:
            return peer
        current = _parse_ip(peer)
        if not self.is_trusted(current):
            return peer
        if self.header == "forwarded":
            hops = _forwarded_for(forwarded)
        else:
            hops = [hop for value in forwarded for hop in value.decode("latin-1").split(",")]
        for hop in reversed(hops):
            address = _parse_ip(hop)
            if address is None:
                break  # unreadable: stop at the last hop we understood
            current = address
            if not self.is_trusted(address):
                break
        return str(current) if current is not None else peer

    def forwarded_proto(self, peer: str | None, values: list[bytes] | None) -> bytes | None:
        """How the client reached the nearest trusted proxy (``b"https"``, ``b"http"``...).

        ``values`` are the raw ``X-Forwarded-Proto`` values, or the ``Forwarded`` values when
        the proxies write that header (``proto=``). Only the right-most entry counts, the one
        the proxy that connected to us wrote; None when the peer is not a trusted proxy or
        said nothing readable, so the connection's own scheme stands.
        """
        if not values or not self.trusts_anyone or peer is None:
            return None
        if not self.is_trusted(_parse_ip(peer)):
            return None
        last = values[-1].rsplit(b",", 1)[-1]
        if self.header == "forwarded":
            proto = b""
            for pair in last.split(b";"):
                key, _, param = pair.partition(b"=")
                if key.strip().lower() == b"proto":
                    proto = param
            last = proto
        proto = last.strip().strip(b'"').lower()
        return proto if proto in (b"http", b"https", b"ws", b"wss") else None


@lru_cache(maxsize=65536)
def rate_limit_identity(address: str, ipv6_prefix: int = 64) -> str:
    """The bucket owner for an address: IPv4 as is, IPv6 grouped by its /``ipv6_prefix``.

    One IPv6 subscriber usually holds a whole /64; keying on the /128 would hand an attacker
    2**64 fresh buckets (and unbounded memory, S17).
    """
    if ":" not in address or ipv6_prefix >= 128:
        return address
    try:
        network = ipaddress.IPv6Network(f"{address}/{ipv6_prefix}", strict=False)
    except ValueError:
        return address
    return str(network)
