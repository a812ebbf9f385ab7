"""Per-client rate limiting and bounded, deadline-guarded work off the event loop."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import anyio

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
    """Runs blocking work (encoding, search) on at most ``concurrency`` threads, within a deadline.

    A Python thread cannot be killed, so a request past its deadline is answered 503 while
    its work finishes in the background. That work keeps its thread: the pool has exactly
    ``concurrency`` threads, so abandoned work still counts against the limit (with
    ``anyio.to_thread``'s ``abandon_on_cancel`` it did not: slow questions piled up threads
    and memory past the limit). Work still queued at its deadline is dropped unstarted.
    """

    def __init__(self, concurrency: int, timeout_s: float) -> None:
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self._pool: ThreadPoolExecutor | None = None

    async def run(self, func: Callable[[], T]) -> T:
        """``func()`` on a pool thread; :class:`DeadlineExceededError` past the deadline."""
        if self._pool is None:  # made on first use, so a closed worker (app restarted) works again
            self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="tanya-worker")
        future = self._pool.submit(func)
        try:
            with anyio.fail_after(self.timeout_s):
                # The app runs on asyncio (uvicorn, TestClient); cancelling this wait leaves the thread running.
                return await asyncio.wrap_future(future)
        except TimeoutError:
            future.cancel()  # only succeeds if it never started: then it never runs
            raise DeadlineExceededError(
                f"the answer took longer than {self.timeout_s:g} s; try again or ask a shorter question"
            ) from None

    def close(self) -> None:
        """Stop taking work; queued work is dropped, running work finishes on its own."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
