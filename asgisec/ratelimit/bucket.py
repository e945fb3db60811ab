"""The token bucket, as GCRA arithmetic on whole microseconds.

A bucket of ``amount`` tokens refilled over ``period`` seconds is kept as one number, its
*theoretical arrival time* (TAT): the instant at which the bucket would be full again. A
request of cost ``c`` at time ``now`` advances the TAT by ``c`` emission intervals and is
admitted when the new TAT is at most one full bucket (``tau``) ahead of ``now``.

Every quantity is an integer number of microseconds (the emission interval is rounded *up*, so
the refill is never faster than configured). Integers below 2**53 are exact in a double, which
is what makes the Lua script (Redis numbers are doubles) and this module agree to the
microsecond on the same inputs; a property test holds them to it.
"""

from __future__ import annotations

import msgspec

from .limits import Limit

__all__ = ["Bucket", "BucketResult", "step"]

_US = 1_000_000


class Bucket(msgspec.Struct, frozen=True):
    """A limit compiled for the bucket arithmetic; ``name`` is the policy name in headers."""

    name: str
    key: str  # stable storage id of this rule: name and limit, so changing a limit starts afresh
    amount: int
    period: int  # seconds, as configured (for RateLimit-Policy)
    interval_us: int  # one token's emission interval, rounded up
    tau_us: int  # a full bucket: amount * interval_us

    @classmethod
    def from_limit(cls, name: str, limit: Limit) -> Bucket:
        interval = -(-limit.period * _US // limit.amount)  # ceil division
        return cls(
            name=name,
            key=f"{name}|{limit.amount}/{limit.period}",
            amount=limit.amount,
            period=limit.period,
            interval_us=interval,
            tau_us=interval * limit.amount,
        )


class BucketResult(msgspec.Struct, frozen=True, array_like=True):
    """The outcome of one bucket for one request."""

    allowed: bool
    tat_us: int  # the TAT to store if the whole request is admitted
    remaining: int  # tokens left (after this request if admitted, before it if not)
    reset_us: int  # time until the bucket is full again
    retry_us: int  # when refused: time until this cost could pass; -1 if it never can


def step(tat_us: int | None, now_us: int, bucket: Bucket, cost: int) -> BucketResult:
    """Decide one bucket. Pure: the caller stores ``tat_us`` only if every bucket allowed."""
    base = now_us if tat_us is None or tat_us < now_us else tat_us
    new_tat = base + cost * bucket.interval_us
    allow_at = new_tat - bucket.tau_us
    if allow_at <= now_us:
        return BucketResult(
            True,
            new_tat,
            (bucket.tau_us - (new_tat - now_us)) // bucket.interval_us,
            new_tat - now_us,
            0,
        )
    never = cost > bucket.amount
    return BucketResult(
        False,
        base,
        (bucket.tau_us - (base - now_us)) // bucket.interval_us,
        base - now_us,
        -1 if never else allow_at - now_us,
    )
