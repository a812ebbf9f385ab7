"""The model card's account of what the training data covered, across stages."""

from __future__ import annotations

from typing import Any

from training.model_card import _register


def _stage(**questions: int) -> dict[str, Any]:
    return {"data": {name: {"questions": n, "unanswerable": 0} for name, n in questions.items()}}


def test_the_card_counts_written_questions_over_every_stage() -> None:
    public_only = _stage(**{"tydiqa-id": 300})
    assert "No cross-lingual pairs were trained on" in _register(public_only)
    abstracts = {**_stage(abstracts=236), "previous_stage": public_only}
    assert "236 questions about research abstracts" in _register(abstracts)
    assert "never trained on" in _register(abstracts), "English over Indonesian was not trained yet"
    third = {**_stage(abstracts=120, migration=416), "previous_stage": abstracts}
    text = _register(third)
    assert "236 questions about research abstracts" in text and "416 about short passages on labour migration" in text
    assert "never trained on" not in text
    fourth = {**_stage(crosslingual=587, migration=100), "previous_stage": third}
    text = _register(fourth)
    assert "587 public train questions asked in English over their Indonesian" in text
    assert "416 about short passages on labour migration" in text, "the largest draw over the stages is reported"
