"""HTTPS enforcement: is this request secure, and where does its redirect go.

``FORCE_HTTPS`` answers a plain-HTTP request with 308 to the same path and query over https,
on a host that was validated: ``CANONICAL_HOST`` when set, else the request's Host, which has
already passed the trusted-host check. It never redirects to a Host nobody validated
(Starlette's HTTPSRedirectMiddleware sends ``Host: evil.com`` to ``https://evil.com/``), so
without either a start-up error says what to set.

Behind a TLS-terminating proxy, ``X-Forwarded-Proto`` (or ``Forwarded: proto=``, whichever
``TRUSTED_PROXY_HEADER`` family the proxies write) says how the client connected; it counts
only from a trusted proxy (see :class:`~asgisec.clients.ClientResolver`), so the proxy's own
https requests are not redirected in a loop and a client cannot talk its way out of the
redirect.
"""

from __future__ import annotations

from urllib.parse import quote_from_bytes

from .errors import ConfigError
from .guards_config import GuardsConfig
from .hosts import HostPolicy
from .paths import PathMap

__all__ = ["HttpsPolicy"]

# Characters kept as they are in a redirect's path and query (RFC 3986 pchar, plus "%" so
# existing escapes survive); everything else, controls and non-ASCII included, is escaped.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_QUERY_SAFE = _PATH_SAFE + "?"


class HttpsPolicy:
    """Compiled HTTPS enforcement. ``enforced`` is False unless ``FORCE_HTTPS=true``."""

    __slots__ = ("canonical", "enforced", "exempt")

    def __init__(self, config: GuardsConfig, hosts: HostPolicy) -> None:
        self.enforced = config.force_https
        self.canonical = config.canonical_host.encode("ascii")
        self.exempt: PathMap[bool] = PathMap(dict.fromkeys(config.https_exempt_paths, True))
        if self.enforced and not self.canonical and hosts.allow_any:
            raise ConfigError(
                "FORCE_HTTPS",
                "true",
                "TRUSTED_HOSTS (names, not *) or CANONICAL_HOST as well: a redirect must go "
                "to a host this service knows, never to whatever Host a client sent",
            )

    def redirects(self, path: str) -> bool:
        """True when a plain-HTTP request for ``path`` must be redirected."""
        return self.enforced and not self.exempt.match(path)

    def location(self, host: str | None, raw_path: bytes, query: bytes) -> bytes:
        """``https://<validated host><path>[?query]`` with anything unsafe percent-escaped.

        ``host`` is the request's canonical, trusted host (no port: https has its own).
        """
        target = self.canonical or (host or "").encode("ascii")
        if not raw_path.startswith(b"/"):
            raw_path = b"/"  # "*" (OPTIONS *) or nothing: the site's root
        location = b"https://" + target + quote_from_bytes(raw_path, _PATH_SAFE).encode("ascii")
        if query:
            location += b"?" + quote_from_bytes(query, _QUERY_SAFE).encode("ascii")
        return location
