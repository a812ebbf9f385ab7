"""The embedding protocol every dense backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Embedder(Protocol):
    """Turns text into L2-normalised float32 vectors (so inner product is cosine).

    Queries and passages are embedded separately because some models (E5) mark them with
    different prefixes; symmetric models implement both the same way.
    """

    #: Short, stable id used in settings, the manifest and per-signal ranks ("e5-small").
    id: str
    #: Vector dimension.
    dim: int
    #: Identifies the exact weights (package version, model path); a change forces re-embedding.
    version: str

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed search queries; returns an ``(len(texts), dim)`` float32 array."""
        ...

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed passages to be searched; returns an ``(len(texts), dim)`` float32 array."""
        ...


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation to float32 (zero rows stay zero)."""
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim == 1:
        array = array[None, :]
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(array / norms, dtype=np.float32)
