"""The embedded backend: buckets in this process's memory, bounded, on a monotonic clock.

It is exact within one process and needs no infrastructure, which makes it the right default
for one worker. With several worker processes each holds its own buckets, so the effective
limit is multiplied by the worker count: use Redis there.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from .backend import Decision
from .bucket import Bucket, step

__all__ = ["MemoryBackend", "monotonic_us"]


def monotonic_us() -> int:
    """Microseconds on the monotonic clock: immune to wall-clock jumps (NTP, DST)."""
    return time.monotonic_ns() // 1000


class MemoryBackend:
    """LRU-bounded token buckets. ``consume`` never awaits, so it is atomic on its event loop."""

    def __init__(self, max_keys: int = 100_000, clock: Callable[[], int] = monotonic_us) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.max_keys = max_keys
        self.clock = clock
        self._tats: OrderedDict[tuple[str, str], int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tats)

    def consume_now(self, identity: str, buckets: Sequence[Bucket], cost: int = 1) -> Decision:
        """The synchronous core of :meth:`consume` (for tests and in-process callers)."""
        now = self.clock()
        tats = self._tats
        if len(buckets) == 1:  # the common case (the default limit alone), without the lists
            bucket = buckets[0]
            key = (identity, bucket.key)
            result = step(tats.get(key), now, bucket, cost)
            if result.allowed:
                tats[key] = result.tat_us
                tats.move_to_end(key)
                if len(tats) > self.max_keys:
                    tats.popitem(last=False)
            return Decision(result.allowed, (result,))
        keys = [(identity, bucket.key) for bucket in buckets]
        results = [
            step(tats.get(key), now, bucket, cost)
            for key, bucket in zip(keys, buckets, strict=True)
        ]
        allowed = all(result.allowed for result in results)
        if allowed:
            for key, result in zip(keys, results, strict=True):
                tats[key] = result.tat_us
                tats.move_to_end(key)
            while len(tats) > self.max_keys:
                tats.popitem(last=False)
        return Decision(allowed, results)

    async def consume(self, identity: str, buckets: Sequence[Bucket], cost: int = 1) -> Decision:
        return self.consume_now(identity, buckets, cost)

    async def aclose(self) -> None:
        self._tats.clear()
