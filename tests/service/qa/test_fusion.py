"""Fusion: ties and empty input."""

from __future__ import annotations

from service.qa.fusion import FusionConfig, fuse


def test_fused_ties_go_to_the_lower_key_and_nothing_fuses_to_nothing() -> None:
    ranked = {"a": ([7, 3], [1.0, 0.5]), "b": ([3, 7], [2.0, 1.0])}
    hits = fuse(ranked, FusionConfig())
    assert [h.key for h in hits] == [3, 7] and hits[0].score == hits[1].score
    assert hits[0].ranks == {"a": 2, "b": 1} and hits[0].signal_scores == {"a": 0.5, "b": 2.0}
    assert fuse({"a": ([], [])}, FusionConfig()) == []
