"""Fusion of ranked lists: the one implementation behind the retriever and the benchmark runs.

Reciprocal-rank fusion (the default) adds ``weight / (rrf_k + rank)`` over the signals that
ranked an item; it is robust to the very different score scales of BM25, E5 and USE.
``score`` fusion instead adds min-max-normalised scores. Both keep each item's rank and raw
score under every signal, so a result can say why it was ranked where it is.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

import numpy as np

K = TypeVar("K", bound=Hashable)

FusionMethod = Literal["rrf", "score"]


@dataclass(frozen=True)
class FusionConfig:
    """How signals are combined."""

    method: FusionMethod = "rrf"
    rrf_k: int = 60
    #: Weight of each signal by name ("bm25" or an encoder id); 1.0 when absent.
    weights: Mapping[str, float] = field(default_factory=dict)

    def weight(self, signal: str) -> float:
        """Weight of ``signal`` (1.0 unless configured)."""
        return float(self.weights.get(signal, 1.0))


@dataclass(frozen=True)
class Fused(Generic[K]):
    """One item of a fused ranking."""

    key: K
    score: float
    #: 1-based rank under every signal (``None`` where that signal did not rank the item).
    ranks: dict[str, int | None]
    #: Raw score under each signal that ranked the item.
    signal_scores: dict[str, float]


def fuse(
    ranked: Mapping[str, tuple[Sequence[K], Sequence[float] | np.ndarray]],
    config: FusionConfig,
    depth: int | None = None,
) -> list[Fused[K]]:
    """Fuse ``{signal: (keys best first, their scores)}`` into one ranking, best first.

    Ties are broken by key, so the order is deterministic. ``depth`` keeps the best ``depth``.
    """
    fused: dict[K, float] = {}
    ranks: dict[K, dict[str, int | None]] = {}
    raw: dict[K, dict[str, float]] = {}
    for signal, (keys, scores) in ranked.items():
        weight = config.weight(signal)
        values = np.asarray(scores)
        if config.method == "score" and len(values):
            lo, hi = float(values.min()), float(values.max())
            normalised = (values - lo) / (hi - lo) if hi > lo else np.ones_like(values)
        for rank, key in enumerate(keys, start=1):
            if config.method == "score":
                contribution = weight * float(normalised[rank - 1])
            else:
                contribution = weight / (config.rrf_k + rank)
            fused[key] = fused.get(key, 0.0) + contribution
            ranks.setdefault(key, {})[signal] = rank
            raw.setdefault(key, {})[signal] = float(values[rank - 1])
    order = sorted(fused, key=lambda k: (-fused[k], k))
    if depth is not None:
        order = order[:depth]
    return [Fused(key, fused[key], {s: ranks[key].get(s) for s in ranked}, raw[key]) for key in order]
