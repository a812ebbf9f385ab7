"""eval/metrics.py on hand-computed cases."""

from __future__ import annotations

import math

import pytest

from eval.metrics import (
    abstention_scores,
    answer_hit,
    citation_precision,
    is_relevant,
    ndcg_at_k,
    normalise,
    percentile,
    recall_at_k,
    reciprocal_rank,
)

T, F = True, False


@pytest.mark.parametrize(
    ("relevance", "k", "expected"),
    [
        ([F, T, F], 1, 0.0),
        ([F, T, F], 2, 1.0),
        ([F, T, F], 10, 1.0),
        ([T, T, T], 3, 1.0),  # one fact per question: recall is a hit indicator, not a fraction
        ([F, F, F], 3, 0.0),
        ([], 5, 0.0),
    ],
)
def test_recall_at_k(relevance: list[bool], k: int, expected: float) -> None:
    assert recall_at_k(relevance, k) == expected


@pytest.mark.parametrize(
    ("relevance", "k", "expected"),
    [
        ([T, F, F], 10, 1.0),
        ([F, F, T], 10, 1 / 3),
        ([F, F, T, T], 10, 1 / 3),
        ([F, F, T], 2, 0.0),
        ([F] * 12 + [T], 10, 0.0),
        ([], 10, 0.0),
    ],
)
def test_reciprocal_rank(relevance: list[bool], k: int, expected: float) -> None:
    assert reciprocal_rank(relevance, k) == pytest.approx(expected)


def test_reciprocal_rank_default_depth_is_10() -> None:
    assert reciprocal_rank([F] * 9 + [T]) == pytest.approx(0.1)
    assert reciprocal_rank([F] * 10 + [T]) == 0.0


@pytest.mark.parametrize(
    ("gains", "k", "ideal", "expected"),
    [
        ([0, 1, 0], 3, None, 1 / math.log2(3)),  # 0.6309...
        ([1, 0, 0], 3, None, 1.0),
        ([0, 0, 1], 3, None, 0.5),  # 1/log2(4)
        ([0, 0, 1], 2, None, 0.0),  # the relevant item is cut off; the ideal still counts it
        ([0, 0, 0], 3, None, 0.0),
        ([], 3, None, 0.0),
        ([1, 0], 2, [1, 1], 1 / (1 + 1 / math.log2(3))),  # 0.6131...
        ([2, 1, 0], 3, None, 1.0),
        ([1, 2, 0], 3, None, (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))),
    ],
)
def test_ndcg_at_k(gains: list[float], k: int, ideal: list[float] | None, expected: float) -> None:
    assert ndcg_at_k(gains, k, ideal) == pytest.approx(expected)


def test_ndcg_example_value() -> None:
    assert ndcg_at_k([0, 1, 0], 3) == pytest.approx(0.6309297535714575)


def test_abstention_scores_hand_computed() -> None:
    # item 0: unanswerable, abstained (true positive); item 1: answerable, abstained (false abstention);
    # item 2: answerable, answered; item 3: unanswerable, answered (missed abstention).
    scores = abstention_scores([T, T, F, F], [F, T, T, F])
    assert scores == pytest.approx({"abstain_precision": 0.5, "abstain_recall": 0.5, "false_abstention": 0.5})


def test_abstention_scores_perfect_and_edge_cases() -> None:
    assert abstention_scores([T, F, F], [F, T, T]) == {
        "abstain_precision": 1.0,
        "abstain_recall": 1.0,
        "false_abstention": 0.0,
    }
    # Nothing abstained, nothing unanswerable: vacuous precision/recall of 1.0.
    assert abstention_scores([F, F], [T, T]) == {
        "abstain_precision": 1.0,
        "abstain_recall": 1.0,
        "false_abstention": 0.0,
    }
    # Abstaining on everything answerable.
    assert abstention_scores([T, T], [T, T]) == {
        "abstain_precision": 0.0,
        "abstain_recall": 1.0,
        "false_abstention": 1.0,
    }
    assert abstention_scores([], []) == {"abstain_precision": 1.0, "abstain_recall": 1.0, "false_abstention": 0.0}
    scores = abstention_scores([F, T, F], [F, F, T])
    assert scores["abstain_precision"] == 1.0 and scores["abstain_recall"] == 0.5


def test_abstention_scores_reject_mismatched_lengths() -> None:
    with pytest.raises(ValueError):
        abstention_scores([T, F], [T])


def test_normalise_and_is_relevant() -> None:
    assert normalise("  **Kata   Kunci:**\n *Program*  ") == "kata kunci: program"
    assert is_relevant("Melalui **Kemnaker**, BP2MI,\n dan LPK.", ["kemnaker, bp2mi, dan lpk"])
    assert not is_relevant("Some passage.", ["other"])
    assert not is_relevant("Some passage.", ["", "   "])  # blank evidence matches nothing


@pytest.mark.parametrize(
    ("answer", "acceptable", "expected"),
    [
        ("Targetnya 10.000 peserta [1]", ["10.000"], True),
        ("The TARGET is high", ["target"], True),
        ("Menurut **Kerja Sama Bilateral** ...", ["kerja sama bilateral"], True),
        ("Nothing relevant", ["10.000", "sepuluh ribu"], False),
        ("Anything", [], False),
    ],
)
def test_answer_hit(answer: str, acceptable: list[str], expected: bool) -> None:
    assert answer_hit(answer, acceptable) is expected


def test_citation_precision() -> None:
    assert citation_precision([], ["fact"]) == 1.0
    assert citation_precision(["a fact here", "nothing"], ["fact"]) == 0.5
    assert citation_precision(["a FACT", "**fact**", "fact"], ["fact"]) == 1.0
    assert citation_precision(["x", "y", "z"], ["fact"]) == 0.0
    assert citation_precision(["one", "two", "three"], ["two", "three"]) == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([1, 2, 3, 4], 50, 2.5),
        ([4, 1, 3, 2], 50, 2.5),  # order does not matter
        ([1, 2, 3, 4], 0, 1.0),
        ([1, 2, 3, 4], 100, 4.0),
        ([1, 2, 3, 4], 25, 1.75),
        ([10, 20, 30, 40, 50], 90, 46.0),
        ([5], 95, 5.0),
        ([], 50, 0.0),
    ],
)
def test_percentile(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == pytest.approx(expected)
