"""Per-client rate limiting and bounded, deadline-guarded work off the event loop."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import anyio
from anyio import to_thread

from service.api.problems import DeadlineExceededError

T = TypeVar("T")


class RateLimiter:
    """A token bucket per client: ``per_minute`` requests, refilled continuously; 0 disables it."""

    def __init__(self, per_minute: int, max_clients: int = 10_000) -> None:
        self.per_minute = per_minute
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()
        self._max_clients = max_clients

    def check(self, client: str, now: float | None = None) -> int | None:
        """``None`` if the request may go ahead, else the seconds to wait (for Retry-After)."""
        if self.per_minute <= 0:
            return None
        now = time.monotonic() if now is None else now
        rate = self.per_minute / 60.0
        with self._lock:
            tokens, last = self._buckets.get(client, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                self._evict()
                return None
            self._buckets[client] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / rate))

    def blocked(self, client: str, now: float | None = None) -> int | None:
        """Like :meth:`check`, but spends nothing: the seconds to wait if ``client``'s bucket is empty."""
        if self.per_minute <= 0:
            return None
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(client, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - last) * self.per_minute / 60.0)
        return None if tokens >= 1.0 else max(1, math.ceil((1.0 - tokens) * 60.0 / self.per_minute))

    def _evict(self) -> None:
        # Bound memory: forget the stalest clients (a full bucket is the default anyway).
        if len(self._buckets) > self._max_clients:
            for key, _ in sorted(self._buckets.items(), key=lambda kv: kv[1][1])[: len(self._buckets) // 10]:
                del self._buckets[key]


class Worker:
    """Runs blocking work (encoding, search) in threads, at most ``concurrency`` at once, within a deadline."""

    def __init__(self, concurrency: int, timeout_s: float) -> None:
        self.limiter = anyio.CapacityLimiter(concurrency)
        self.timeout_s = timeout_s

    async def run(self, func: Callable[[], T]) -> T:
        """``func()`` in a worker thread; :class:`DeadlineExceededError` past the deadline."""
        try:
            with anyio.fail_after(self.timeout_s):
                # The thread cannot be killed; on timeout the request is answered and the
                # thread's result is dropped when it finishes.
                return await to_thread.run_sync(func, limiter=self.limiter, abandon_on_cancel=True)
        except TimeoutError:
            raise DeadlineExceededError(
                f"the answer took longer than {self.timeout_s:g} s; try again or ask a shorter question"
            ) from None
