"""Training pools (labels, hard negatives, distractors), Platt scaling and the threshold choice."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from eval.squad import load_squad
from training.pools import build_pools, training_pairs
from training.reranker import choose_threshold, fit_platt, pool_metrics

CONTEXTS = [
    # The restatement comes first and shares most words with the question; the answer is second.
    "The programme for skilled workers in Japan started in 2019. The workers are selected by BP2MI and LPK. "
    "Training takes six months.",
    "Cherry trees bloom in Japan in spring. Skilled workers in Japan often visit the parks.",
    "Rice is grown in Java. The harvest comes twice a year.",
]


def _squad(tmp_path: Path) -> Path:
    answer = "BP2MI and LPK"
    data = {
        "data": [
            {
                "title": "T",
                "paragraphs": [
                    {
                        "context": CONTEXTS[0],
                        "qas": [
                            {"id": "a", "question": "Who selects skilled workers for the programme in Japan?",
                             "is_impossible": False,
                             "answers": [{"text": answer, "answer_start": CONTEXTS[0].index(answer)}]},
                            {"id": "u", "question": "How much are skilled workers in Japan paid?",
                             "is_impossible": True, "answers": []},
                        ],
                    },
                    {"context": CONTEXTS[1], "qas": []},
                    {"context": CONTEXTS[2], "qas": []},
                ],
            }
        ]
    }
    path = tmp_path / "mini.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_pools_label_the_sentence_holding_the_answer_and_add_a_distractor_passage(tmp_path: Path) -> None:
    qaset = load_squad(_squad(tmp_path))
    answerable, impossible = build_pools(qaset)
    assert answerable.own == 3 and answerable.labels[:3] == (0, 1, 0)
    assert answerable.sentences[1] == "The workers are selected by BP2MI and LPK."
    # The BM25 distractor is the passage sharing "skilled workers in Japan", not the rice one.
    assert answerable.sentences[3:] == ("Cherry trees bloom in Japan in spring.", "Skilled workers in Japan often visit the parks.")
    assert not impossible.answerable and not any(impossible.labels)


def test_training_pairs_prefer_restatements_as_negatives(tmp_path: Path) -> None:
    pools = build_pools(load_squad(_squad(tmp_path)))
    pairs = list(training_pairs(pools[:1], random.Random(0), hard_negatives=1, distractor_negatives=1))
    assert pairs[0] == (pools[0].question, "The workers are selected by BP2MI and LPK.", 1)
    assert pairs[1][1].startswith("The programme for skilled workers") and pairs[1][2] == 0
    assert pairs[2][1] in pools[0].sentences[3:] and pairs[2][2] == 0
    # Unanswerable pools get one more own negative instead of a positive.
    impossible = list(training_pairs(pools[1:], random.Random(0), hard_negatives=1, distractor_negatives=1))
    assert [label for *_, label in impossible] == [0, 0, 0]


def test_platt_scaling_recovers_a_known_mapping() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, 20_000)
    labels = (rng.random(20_000) < 1 / (1 + np.exp(-(0.5 * logits - 1.0)))).astype(float)
    a, b = fit_platt(logits, labels)
    assert a == pytest.approx(0.5, abs=0.05) and b == pytest.approx(-1.0, abs=0.08)


def test_threshold_turns_away_at_most_the_allowed_share_of_answerable_questions(tmp_path: Path) -> None:
    pools = build_pools(load_squad(_squad(tmp_path)))
    answerable = [pools[0]] * 100
    probs = [np.array([0.0, p, 0.0, 0.0, 0.0]) for p in np.linspace(0.01, 0.99, 100)]
    threshold = choose_threshold(answerable, probs, 0.05)
    metrics = pool_metrics(answerable, probs, threshold)
    assert metrics["false_abstention"] == pytest.approx(0.05)
    assert metrics["top1_hit"] == 1.0
