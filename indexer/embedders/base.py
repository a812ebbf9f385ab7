"""The embedding protocol every dense backend implements, and the shared plumbing behind it.

A backend subclasses :class:`BaseEmbedder` and implements only ``_encode_passages`` (and
``_encode_queries`` when queries are encoded differently). Empty input, L2 normalisation
and batching are handled here once, so every backend behaves the same at the edges.

Each backend also states how to read its cosines (``anchors``, ``duplicate_cosine``):
cosine similarities mean different things per encoder (E5 puts almost everything between
0.7 and 0.9, USE between 0 and 0.7), and the answer step maps them to a common scale. They
are required attributes, so a new encoder cannot silently fall back to someone else's scale.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
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
    #: Query-to-sentence cosines mapped to answer support: ``lo`` → 0, ``hi`` → 1.
    anchors: tuple[float, float]
    #: Above this cosine two sentences state the same fact (often translations of each other).
    duplicate_cosine: float

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed search queries; returns an ``(len(texts), dim)`` float32 array."""
        ...

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed passages to be searched; returns an ``(len(texts), dim)`` float32 array."""
        ...

    def query_tokens(self, text: str) -> int | None:
        """How many tokens encoding ``text`` as a query feeds the model; ``None`` if the backend caps it itself.

        Encoding cost follows tokens, not characters (a thousand characters of Japanese or combining
        accents are hundreds of E5 tokens and seconds of work), so the question check bounds this.
        """
        ...


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation to float32 (zero rows stay zero)."""
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim == 1:
        array = array[None, :]
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(array / norms, dtype=np.float32)


class BaseEmbedder(ABC):
    """Empty input and normalisation for a backend; subclasses only encode non-empty lists."""

    id: str
    dim: int
    version: str
    anchors: tuple[float, float]
    duplicate_cosine: float

    @abstractmethod
    def _encode_passages(self, texts: list[str]) -> np.ndarray:
        """Raw (unnormalised) passage vectors for a non-empty list."""

    def _encode_queries(self, texts: list[str]) -> np.ndarray:
        """Raw query vectors; symmetric models encode queries like passages."""
        return self._encode_passages(texts)

    def query_tokens(self, text: str) -> int | None:
        """``None``: by default a backend truncates its own input (override when it does not)."""
        return None

    def _vectors(self, texts: Sequence[str], encode: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return normalise(encode(list(texts)))

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed search queries; returns an ``(len(texts), dim)`` float32 array."""
        return self._vectors(texts, self._encode_queries)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed passages to be searched; returns an ``(len(texts), dim)`` float32 array."""
        return self._vectors(texts, self._encode_passages)


def embed_in_batches(
    embedder: Embedder,
    texts: Sequence[str],
    batch_size: int = 32,
    tick: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Passage vectors for ``texts``, encoded ``batch_size`` at a time; ``tick(n)`` after each batch."""
    parts = []
    for start in range(0, len(texts), batch_size):
        batch = list(texts[start : start + batch_size])
        parts.append(embedder.embed_passages(batch))
        if tick is not None:
            tick(len(batch))
    return np.concatenate(parts) if parts else np.zeros((0, embedder.dim), np.float32)
