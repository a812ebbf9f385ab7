"""Fusion's vectorised path (integer keys: the retriever's rows) against its dict path (any keys)."""

from __future__ import annotations

import numpy as np
import pytest

from service.qa.fusion import FusionConfig, fuse


def _ranked(rng: np.random.Generator, signals: int, universe: int, ties: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for s in range(signals):
        keys = rng.choice(universe, size=int(rng.integers(0, min(universe, 60) + 1)), replace=False)
        scores = np.sort(rng.normal(size=len(keys)).astype(np.float32))[::-1]
        if ties and len(scores) > 3:
            scores[1:3] = scores[1]  # equal scores: rank, not score, decides RRF, and min-max stays defined
        out[["bm25", "e5-small", "use-m3"][s]] = (keys.astype(np.int64), scores.copy())
    return out


@pytest.mark.parametrize("method", ["rrf", "score"])
@pytest.mark.parametrize("seed", range(12))
def test_integer_keys_fuse_exactly_as_the_dict_path(method: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ranked = _ranked(rng, int(rng.integers(1, 4)), int(rng.integers(1, 120)), ties=bool(seed % 2))
    config = FusionConfig(method=method, rrf_k=int(rng.integers(1, 80)), weights={"bm25": float(rng.uniform(0.2, 2))})
    as_lists = {signal: (keys.tolist(), scores) for signal, (keys, scores) in ranked.items()}
    for depth in (None, 1, 5):
        fast, slow = fuse(ranked, config, depth=depth), fuse(as_lists, config, depth=depth)
        assert [(h.key, h.score, h.ranks, h.signal_scores) for h in fast] == [
            (h.key, h.score, h.ranks, h.signal_scores) for h in slow
        ]
        assert all(type(h.key) is int for h in fast)


def test_fused_ties_go_to_the_lower_key_and_nothing_fuses_to_nothing() -> None:
    ranked = {"a": (np.array([7, 3]), np.array([1.0, 0.5])), "b": (np.array([3, 7]), np.array([2.0, 1.0]))}
    hits = fuse(ranked, FusionConfig())
    assert [h.key for h in hits] == [3, 7] and hits[0].score == hits[1].score
    assert hits[0].ranks == {"a": 2, "b": 1} and hits[0].signal_scores == {"a": 0.5, "b": 2.0}
    assert fuse({"a": (np.zeros(0, np.int64), np.zeros(0))}, FusionConfig()) == []
