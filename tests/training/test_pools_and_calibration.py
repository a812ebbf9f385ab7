"""Training pools (labels, distractor passages, de-duplication), the loss, Platt scaling and the threshold choice."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from eval.squad import load_squad
from service.qa.reranker.reader import Calibration
from training.calibration import EnginePool, features, fit_logistic, pool_metrics, threshold_for
from training.pools import build_pools
from training.reranker import pool_loss, unique_items

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


def test_pools_label_the_sentence_holding_the_answer_and_add_distractor_passages(tmp_path: Path) -> None:
    qaset = load_squad(_squad(tmp_path))
    answerable, impossible = build_pools(qaset, k=1)
    assert answerable.labels[0] == (0, 1, 0)
    assert answerable.passages[0][1] == "The workers are selected by BP2MI and LPK."
    # The BM25 distractor is the passage sharing "skilled workers in Japan", not the rice one.
    assert answerable.passages[1:] == (("Cherry trees bloom in Japan in spring.", "Skilled workers in Japan often visit the parks."),)
    assert answerable.labels[1] == (0, 0)
    assert answerable.flat_labels == [0, 1, 0, 0, 0]
    assert not impossible.answerable and not any(impossible.flat_labels)
    # With more distractors asked for than passages share words with the question, only those come.
    assert len(build_pools(qaset, k=5)[0].passages) == 2


def test_a_question_repeated_about_the_same_passage_is_trained_on_once(tmp_path: Path) -> None:
    qaset = load_squad(_squad(tmp_path))
    unique = unique_items({"a": qaset, "b": replace(qaset, name="b")})
    assert unique == {"a": [0, 1], "b": []}


def test_the_loss_puts_mass_on_the_answer_sentences_or_on_the_null() -> None:
    import torch

    null = torch.tensor([0.0])
    logits = torch.tensor([5.0, -5.0, -5.0])
    assert pool_loss(logits, null, [1, 0, 0]).item() < 0.01
    assert pool_loss(logits, null, [0, 1, 0]).item() > 9.0
    # No answer in the pool: the target is the null option.
    assert pool_loss(torch.tensor([-5.0, -5.0]), null, [0, 0]).item() < 0.02
    # Two answer sentences share the target.
    assert pool_loss(torch.tensor([3.0, 3.0]), torch.tensor([-9.0]), [1, 1]).item() < 0.01


def test_the_calibration_recovers_a_known_mapping_with_its_rank_prior() -> None:
    rng = np.random.default_rng(0)
    margins = [rng.normal(0, 3, 4000) for _ in range(5)]  # five passages, in rank order
    x = features(margins)
    truth = Calibration(margin=0.5, rank=1.5, bias=-1.0)
    p = np.concatenate(truth.apply(margins))
    y = (rng.random(len(p)) < p).astype(float)
    weights, bias = fit_logistic(x, y)
    assert weights[0] == pytest.approx(0.5, abs=0.05)
    assert weights[1] == pytest.approx(1.5, abs=0.25)
    assert bias == pytest.approx(-1.0, abs=0.15)


def test_threshold_turns_away_at_most_the_allowed_share_of_answerable_questions() -> None:
    pools = [EnginePool("s", f"q{i}", (("a", "b"),), ((0, 1),)) for i in range(100)]
    probs = [[np.array([0.0, p])] for p in np.linspace(0.01, 0.99, 100)]
    threshold = threshold_for([float(p[0].max()) for p in probs], 0.05)
    metrics = pool_metrics(pools, [True] * 100, probs, threshold)
    assert metrics["false_abstention"] == pytest.approx(0.05)
    assert metrics["first_sentence_hit"] == 1.0
    # Unanswerable questions count toward abstention recall only.
    unanswerable = pool_metrics(pools[:5], [False] * 5, probs[:5], threshold)
    assert unanswerable["answerable"] == 0 and unanswerable["abstention_recall"] == 1.0

