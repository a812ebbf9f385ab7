"""A deterministic, model-free embedder for unit tests and smoke runs.

It hashes word unigrams and bigrams into a fixed number of buckets, so texts sharing
words get similar vectors. Being instant and reproducible, it lets tests cover the
index, retrieval and API plumbing without loading a model; the real models run in the
tests that judge quality.
"""

from __future__ import annotations

import hashlib
import itertools
import re

import numpy as np

from indexer.embedders.base import BaseEmbedder

_WORD = re.compile(r"\w+")
_TOKEN = re.compile(r"\w+|[^\w\s]")


class FakeEmbedder(BaseEmbedder):
    """Hashed bag-of-words vectors."""

    id = "fake"
    version = "fake-1"
    # Bag-of-words cosines spread like a generic sentence encoder's.
    anchors = (0.2, 0.7)
    duplicate_cosine = 0.9

    def __init__(self, dim: int = 64) -> None:
        self.dim = dim
        self.calls = 0  # number of texts embedded, so tests can assert reuse

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dim, dtype=np.float32)
        words = [w.lower() for w in _WORD.findall(text)]
        for gram in words + [f"{a} {b}" for a, b in itertools.pairwise(words)]:
            digest = hashlib.blake2b(gram.encode(), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self.dim
            sign = 1.0 if digest[4] % 2 == 0 else -1.0
            vector[bucket] += sign
        return vector

    def query_tokens(self, text: str) -> int | None:
        """Words and punctuation marks: deterministic and close enough to a subword count for tests."""
        return len(_TOKEN.findall(text))

    def _encode_passages(self, texts: list[str]) -> np.ndarray:
        self.calls += len(texts)
        return np.stack([self._vector(t) for t in texts])
