"""Which buckets a request falls under, compiled from configuration at start-up.

The default limit applies to every path. ``RATE_LIMIT_<NAME>`` adds a limit on ``/api/<name>``
and ``RATE_LIMIT_RULES`` on any pattern. Buckets are named after the *rule*, never the raw path,
so ``/items/1`` and ``/items/2`` share the ``/items/*`` limit (slowapi #217). Paths are
normalised before matching (repeated and trailing slashes folded) so that ``/api/calculate/``
cannot dodge the ``/api/calculate`` limit.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..config import RateLimitConfig
from .bucket import Bucket, BucketResult
from .limits import Limit, PathRule, parse_limits, parse_rules

__all__ = ["RuleSet", "normalise_path"]

Header = tuple[bytes, bytes]
_SLASHES = re.compile(r"//+")


def normalise_path(path: str) -> str:
    """``//api//calculate/`` → ``/api/calculate``: the form rules are matched against."""
    if "//" in path:
        path = _SLASHES.sub("/", path)
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    return path


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    tail = ""
    if pattern.endswith("/**"):
        pattern, tail = pattern[:-3], "(?:/.*)?"
    parts = [
        "[^/]+" if segment == "*" else re.escape(segment) for segment in pattern.split("/")[1:]
    ]
    return re.compile("/" + "/".join(parts) + tail if parts else tail or "/")


def _buckets(name: str, limits: tuple[Limit, ...]) -> tuple[Bucket, ...]:
    """One bucket per limit; several limits of one rule get their period in the name."""
    if len(limits) == 1:
        return (Bucket.from_limit(name, limits[0]),)
    return tuple(Bucket.from_limit(f"{name}@{limit.period}s", limit) for limit in limits)


class RuleSet:
    """Maps a path to its buckets and the ``RateLimit-Policy`` header describing them."""

    __slots__ = ("_cache", "default", "enabled", "exact", "patterns")

    def __init__(self, config: RateLimitConfig) -> None:
        self.default = _buckets("default", parse_limits(config.rate_limit_default))
        rules = [
            PathRule(pattern=f"/api/{name}", limits=parse_limits(value))
            for name, value in config.rate_limit_routes.items()
        ]
        rules.extend(parse_rules(config.rate_limit_rules))
        exact: dict[str, list[Bucket]] = {}
        patterns: list[tuple[re.Pattern[str], tuple[Bucket, ...]]] = []
        for rule in rules:
            buckets = _buckets(rule.pattern, rule.limits)
            if "*" in rule.pattern:
                patterns.append((_pattern_regex(rule.pattern), buckets))
            else:
                exact.setdefault(rule.pattern, []).extend(buckets)
        self.exact = {path: tuple(buckets) for path, buckets in exact.items()}
        self.patterns = tuple(patterns)
        self.enabled = bool(self.default or self.exact or self.patterns)
        self._cache: dict[tuple[Bucket, ...], Header] = {}

    def match(self, path: str) -> tuple[Bucket, ...]:
        """Every bucket that applies to ``path``, default first."""
        if not (self.exact or self.patterns):
            return self.default
        path = normalise_path(path)
        buckets = self.default + self.exact.get(path, ())
        for regex, extra in self.patterns:
            if regex.fullmatch(path):
                buckets += extra
        return buckets

    def policy_header(self, buckets: tuple[Bucket, ...]) -> Header:
        """``RateLimit-Policy`` (IETF httpapi draft 08+ syntax) for this set of buckets."""
        header = self._cache.get(buckets)
        if header is None:
            value = ", ".join(f'"{b.name}";q={b.amount};w={b.period}' for b in buckets)
            header = (b"ratelimit-policy", value.encode("ascii"))
            if len(self._cache) < 1024:  # combinations are few; bound it all the same
                self._cache[buckets] = header
        return header


def state_headers(
    buckets: tuple[Bucket, ...],
    results: Sequence[BucketResult],
    legacy: bool,
    *,
    charged: bool = True,
    cost: int = 1,
) -> list[Header]:
    """``RateLimit``: what is left of each policy and when it is whole again (whole seconds).

    With ``legacy``, also ``X-RateLimit-Limit/-Remaining/-Reset`` for the tightest bucket, the
    reset in seconds from now (never a float epoch: slowapi's is).

    ``charged`` is False for a refused request: no bucket was charged, so a bucket that would
    have admitted it reports its state before the charge (``cost`` tokens more, ``cost``
    intervals sooner full), not the charge that never happened.
    """
    if not results:  # the storage could not say (fail-open without a local bucket)
        return []
    if len(results) == 1 and not legacy:  # the common case, one f-string and no generator
        # (one bucket of a refused request is the refusing one: nothing to uncharge)
        bucket, result = buckets[0], results[0]
        text = f'"{bucket.name}";r={result.remaining};t={-(-result.reset_us // 1_000_000)}'
        return [(b"ratelimit", text.encode("ascii"))]
    if not charged:
        results = [
            BucketResult(
                True,
                r.tat_us - cost * b.interval_us,
                r.remaining + cost,
                max(0, r.reset_us - cost * b.interval_us),
                r.retry_us,
            )
            if r.allowed
            else r
            for b, r in zip(buckets, results, strict=True)
        ]
    value = ", ".join(
        f'"{b.name}";r={r.remaining};t={-(-r.reset_us // 1_000_000)}'
        for b, r in zip(buckets, results, strict=True)
    )
    headers = [(b"ratelimit", value.encode("ascii"))]
    if legacy:
        bucket, result = min(zip(buckets, results, strict=True), key=lambda pair: pair[1].remaining)
        headers += [
            (b"x-ratelimit-limit", str(bucket.amount).encode()),
            (b"x-ratelimit-remaining", str(result.remaining).encode()),
            (b"x-ratelimit-reset", str(-(-result.reset_us // 1_000_000)).encode()),
        ]
    return headers
