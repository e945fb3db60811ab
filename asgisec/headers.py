"""Security response headers, compiled once into ready ``(bytes, bytes)`` blocks.

Two blocks are built at start-up: one for plain HTTP and one for HTTPS, which differ only by
Strict-Transport-Security (browsers ignore HSTS over HTTP, and sending it there is what helmet
#451 complains of). The policy is set-if-absent: a header the application already set wins and
is never duplicated (Secweb sends both the app's and its own X-Frame-Options).
"""

from __future__ import annotations

from .config import HeadersConfig

__all__ = ["HeaderPolicy", "hsts_value"]

Header = tuple[bytes, bytes]


def hsts_value(config: HeadersConfig) -> str:
    value = f"max-age={config.hsts_max_age}"
    if config.hsts_include_subdomains:
        value += "; includeSubDomains"
    if config.hsts_preload:
        value += "; preload"
    return value


class HeaderPolicy:
    """The precompiled header blocks and the set of their names (lower-case bytes)."""

    __slots__ = ("enabled", "http", "https", "names")

    def __init__(self, config: HeadersConfig) -> None:
        self.enabled = config.enable_security_headers
        block: list[Header] = [(b"x-content-type-options", b"nosniff")]
        for name, value in (
            (b"content-security-policy", config.csp_policy),
            (b"x-frame-options", config.x_frame_options),
            (b"referrer-policy", config.referrer_policy),
            (b"permissions-policy", config.permissions_policy),
            (b"cross-origin-opener-policy", config.cross_origin_opener_policy),
            (b"cross-origin-resource-policy", config.cross_origin_resource_policy),
            (b"cache-control", config.cache_control),
        ):
            if value:
                block.append((name, value.encode("latin-1")))
        if not self.enabled:
            block = []
        self.http: tuple[Header, ...] = tuple(block)
        if self.enabled and config.hsts_max_age > 0:
            block.append((b"strict-transport-security", hsts_value(config).encode("latin-1")))
        self.https: tuple[Header, ...] = tuple(block)
        self.names = frozenset(name for name, _ in self.https)

    def block(self, https: bool) -> tuple[Header, ...]:
        return self.https if https else self.http
