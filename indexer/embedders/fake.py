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
from collections.abc import Sequence

import numpy as np

from indexer.embedders.base import normalise

_WORD = re.compile(r"\w+")


class FakeEmbedder:
    """Hashed bag-of-words vectors."""

    id = "fake"
    version = "fake-1"

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

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += len(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return normalise(np.stack([self._vector(t) for t in texts]))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed queries."""
        return self._encode(texts)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed passages."""
        return self._encode(texts)
