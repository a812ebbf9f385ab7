"""Micro-batching: questions encoded at the same moment by different threads go through the encoder together.

A server answering many users at once has several questions waiting for the same encoder. One
forward pass over four questions costs the C encoders less than four passes over one (e5-small on
one thread: 26.7 ms a question alone, 23.5 in batches of four; ``make bench-qps``), so a
:class:`QueryBatcher` lets whichever waiting thread finds a free lane encode its own question
together with the others queued behind it, oldest first. No extra thread is started: the callers
take turns, and ``lanes`` bounds how many batches run at once (the cores the encoder may use).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from indexer.embedders import Embedder


@dataclass(eq=False)
class _Slot:
    """One question waiting for its vector."""

    text: str
    taken: bool = False
    vector: np.ndarray | None = None
    error: BaseException | None = None
    done: bool = field(default=False)


class QueryBatcher:
    """Encodes concurrent callers' questions in shared batches of at most ``max_batch``.

    With one caller at a time it behaves as ``embedder.embed_queries([text])[0]``: the caller finds a
    free lane and encodes its question alone, at once. No caller waits for a batch to fill.
    """

    def __init__(self, embedder: Embedder, max_batch: int, lanes: int) -> None:
        if max_batch < 1 or lanes < 1:
            raise ValueError("max_batch and lanes must be at least 1")
        self.embedder = embedder
        self.max_batch = max_batch
        self.lanes = lanes
        self._ready = threading.Condition()
        self._pending: list[_Slot] = []
        self._running = 0
        #: How many batches ran and how many questions they held (for metrics and the benchmark).
        self.batches = 0
        self.encoded = 0

    def embed(self, text: str) -> np.ndarray:
        """The query vector of ``text``, possibly encoded in one batch with other threads' questions."""
        slot = _Slot(text)
        with self._ready:
            self._pending.append(slot)
            while not slot.done:
                if not slot.taken and self._running < self.lanes:
                    self._run_batch(slot)
                else:
                    self._ready.wait()
        if slot.error is not None:
            raise slot.error
        assert slot.vector is not None
        return slot.vector

    def _run_batch(self, own: _Slot) -> None:
        """Encode ``own`` and the oldest other pending questions (called holding the lock, which it releases
        while the encoder runs)."""
        others = [s for s in self._pending if s is not own][: self.max_batch - 1]
        batch = [own, *others]
        for slot in batch:
            slot.taken = True
            self._pending.remove(slot)
        self._running += 1
        vectors: list[np.ndarray | Exception] | None = None
        error: BaseException | None = None
        self._ready.release()
        try:
            try:
                vectors = list(self.embedder.embed_queries([slot.text for slot in batch]))
            except Exception:
                if len(batch) == 1:
                    raise
                # One question's failure must not fail the others: each is encoded alone again, so
                # every caller gets what it would have got encoding alone.
                vectors = [self._alone(slot.text) for slot in batch]
        except BaseException as exc:
            error = exc
        finally:
            self._ready.acquire()
        self._running -= 1
        self.batches += 1
        self.encoded += len(batch)
        for i, slot in enumerate(batch):
            outcome = None if vectors is None else vectors[i]
            if isinstance(outcome, BaseException):
                slot.error = outcome
            else:
                slot.vector, slot.error = outcome, error
            slot.done = True
        self._ready.notify_all()

    def _alone(self, text: str) -> np.ndarray | Exception:
        """``text``'s vector encoded on its own, or the error that raised."""
        try:
            return np.asarray(self.embedder.embed_queries([text])[0])
        except Exception as exc:
            return exc
