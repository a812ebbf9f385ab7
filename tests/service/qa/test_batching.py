"""Issue 11: micro-batching of concurrent query encodes (service.qa.batching)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from indexer.embedders.fake import FakeEmbedder
from service.qa.batching import QueryBatcher


class _SlowFake(FakeEmbedder):
    """The fake encoder, slow enough that questions pile up, recording batch sizes and overlap."""

    def __init__(self, fail_on: str | None = None) -> None:
        super().__init__(dim=32)
        self.sizes: list[int] = []
        self.running = 0
        self.most_running = 0
        self.fail_on = fail_on
        self._lock = threading.Lock()

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            self.sizes.append(len(texts))
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            time.sleep(0.02)
            if self.fail_on in texts:
                raise RuntimeError(f"cannot encode {self.fail_on!r}")
            return super().embed_queries(texts)
        finally:
            with self._lock:
                self.running -= 1


QUESTIONS = [f"question number {i} about visas" for i in range(24)]


def test_a_lone_caller_gets_the_encoders_own_vector_at_once() -> None:
    embedder = _SlowFake()
    batcher = QueryBatcher(embedder, max_batch=8, lanes=2)
    np.testing.assert_array_equal(
        batcher.embed("apa itu magang"), FakeEmbedder(dim=32).embed_queries(["apa itu magang"])[0]
    )
    assert embedder.sizes == [1]


def test_concurrent_callers_share_batches_within_the_lanes_and_each_gets_its_own_vector() -> None:
    embedder = _SlowFake()
    batcher = QueryBatcher(embedder, max_batch=4, lanes=2)
    with ThreadPoolExecutor(max_workers=12) as pool:
        vectors = list(pool.map(batcher.embed, QUESTIONS))
    expected = FakeEmbedder(dim=32).embed_queries(QUESTIONS)
    np.testing.assert_array_equal(np.stack(vectors), expected)
    assert sum(embedder.sizes) == len(QUESTIONS) == batcher.encoded
    assert max(embedder.sizes) <= 4 and len(embedder.sizes) < len(QUESTIONS)  # some questions shared a pass
    assert embedder.most_running <= 2


def test_one_failing_question_fails_only_its_own_caller() -> None:
    embedder = _SlowFake(fail_on=QUESTIONS[5])
    batcher = QueryBatcher(embedder, max_batch=8, lanes=1)
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(batcher.embed, q) for q in QUESTIONS[:8]]
    with pytest.raises(RuntimeError, match="cannot encode"):
        futures[5].result()
    for i, future in enumerate(futures):
        if i != 5:
            np.testing.assert_array_equal(future.result(), FakeEmbedder(dim=32).embed_queries([QUESTIONS[i]])[0])


def test_batch_and_lanes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        QueryBatcher(FakeEmbedder(), max_batch=0, lanes=1)
