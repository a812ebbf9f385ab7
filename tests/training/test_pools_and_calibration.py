"""Training pools (labels, distractor passages, de-duplication), the loss, Platt scaling and the threshold choice."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from eval.squad import load_squad
from service.qa.answering import ReaderScores
from service.qa.reranker.reader import Calibration
from tests.support.helpers import REPO_ROOT
from training.calibration import (
    EnginePool,
    features,
    fit_calibration,
    fit_lead_score,
    fit_logistic,
    fit_rank_prior,
    pool_metrics,
    threshold_for,
)
from training.pools import build_pools
from training.reranker import pool_loss, unique_items

DATA = REPO_ROOT.parent / "shared" / "eval-data"
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


def test_the_rank_prior_is_fitted_listwise_on_which_sentence_of_a_pool_answers() -> None:
    """Pools whose answer sentence is drawn from softmax(margin + 2 / passage rank): the conditional
    logit reads k = 2 back, and ``fit_calibration`` ranks each pool by margin + k / rank."""
    rng = np.random.default_rng(3)
    pools, margins = [], []
    for i in range(3000):
        values = [rng.normal(0, 2, 4) for _ in range(5)]
        scores = np.concatenate([v + 2.0 / rank for rank, v in enumerate(values, start=1)])
        chosen = rng.choice(len(scores), p=np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum())
        labels = np.zeros(len(scores), dtype=int)
        labels[chosen] = 1
        pools.append(EnginePool("s", f"q{i}", tuple(("a",) * 4 for _ in range(5)), tuple(tuple(labels[j : j + 4]) for j in range(0, 20, 4))))
        margins.append(values)
    assert fit_rank_prior(margins, pools) == pytest.approx(2.0, abs=0.25)
    calibration, _ = fit_calibration(margins, pools, [True] * len(pools), 0.05)
    assert calibration.margin > 0
    assert calibration.rank / calibration.margin == pytest.approx(fit_rank_prior(margins, pools))
    # Pools without a positive say nothing about which sentence leads, and no pool gives no prior.
    empty = [EnginePool("s", "q", (("a", "b"),), ((0, 0),))]
    assert fit_rank_prior([[np.array([1.0, -1.0])]], empty) == 0.0


def test_the_foreign_weight_is_read_off_pools_whose_answer_is_in_the_other_language() -> None:
    """Answers drawn from softmax(margin + 1 / rank + 1.5 · foreign): the reader under-rates sentences in
    the other language by 1.5, and the conditional logit reads that back; the calibration applies it."""
    rng = np.random.default_rng(5)
    pools, margins = [], []
    for i in range(3000):
        values = [rng.normal(0, 2, 4) for _ in range(5)]
        other = [rng.integers(0, 2, 4) for _ in range(5)]
        scores = np.concatenate([v + 1.0 / rank + 1.5 * f for rank, (v, f) in enumerate(zip(values, other, strict=True), start=1)])
        chosen = rng.choice(len(scores), p=np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum())
        labels = np.zeros(len(scores), dtype=int)
        labels[chosen] = 1
        pools.append(
            EnginePool(
                "s", f"q{i}", tuple(("a",) * 4 for _ in range(5)), tuple(tuple(labels[j : j + 4]) for j in range(0, 20, 4)),
                "en", tuple(tuple(int(x) for x in f) for f in other),
            )
        )
        margins.append(values)
    lead = fit_lead_score(margins, pools)
    assert lead.foreign == pytest.approx(1.5, abs=0.2) and lead.rank == pytest.approx(1.0, abs=0.3)
    calibration, scores = fit_calibration(margins, pools, [True] * len(pools), 0.05)
    assert calibration.foreign / calibration.margin == pytest.approx(lead.foreign)
    # The same margins score higher in the other language, by exactly the fitted weight.
    same, other = calibration.apply([np.array([0.3])], [[False]]), calibration.apply([np.array([0.3])], [[True]])
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    assert float(logit(other[0][0]) - logit(same[0][0])) == pytest.approx(calibration.foreign, abs=1e-4)
    # Monolingual pools carry no evidence about it: the weight stays 0.
    mono = [replace(p, foreign=()) for p in pools]
    assert fit_lead_score(margins, mono).foreign == 0.0


def test_threshold_turns_away_at_most_the_allowed_share_of_answerable_questions() -> None:
    pools = [EnginePool("s", f"q{i}", (("a", "b"),), ((0, 1),)) for i in range(100)]
    scores = [ReaderScores([np.array([0.0, p])], float(p)) for p in np.linspace(0.01, 0.99, 100)]
    threshold = threshold_for([s.answerable for s in scores], 0.05)
    metrics = pool_metrics(pools, [True] * 100, scores, Calibration(threshold=threshold))
    assert metrics["false_abstention"] == pytest.approx(0.05)
    assert metrics["first_sentence_hit"] == 1.0
    # Unanswerable questions count toward abstention recall only.
    unanswerable = pool_metrics(pools[:5], [False] * 5, scores[:5], Calibration(threshold=threshold))
    assert unanswerable["answerable"] == 0 and unanswerable["abstention_recall"] == 1.0


def _synthetic_pools(rng: np.random.Generator, lang: str, shift: float, n: int) -> tuple[list[EnginePool], list[list[np.ndarray]], list[bool]]:
    """``n`` questions of two 3-sentence passages; answerable ones have one sentence with a high margin."""
    pools, margins, answerable = [], [], []
    for i in range(n):
        ok = bool(i % 2)
        values = rng.normal(-4 + shift, 1.0, 6)
        labels = [0] * 6
        if ok:
            where = int(rng.integers(0, 6))
            values[where] += 5.0
            labels[where] = 1
        pools.append(EnginePool("s", f"{lang}{i}", (("a", "b", "c"), ("d", "e", "f")), (tuple(labels[:3]), tuple(labels[3:])), lang))
        margins.append([values[:3], values[3:]])
        answerable.append(ok)
    return pools, margins, answerable


def test_abstention_is_decided_per_question_language_on_the_softmax_share() -> None:
    rng = np.random.default_rng(1)
    # English margins run higher across the board: one shared threshold would turn away almost
    # no unanswerable English question, or too many answerable Indonesian ones.
    pools_id, margins_id, ok_id = _synthetic_pools(rng, "id", 0.0, 400)
    pools_en, margins_en, ok_en = _synthetic_pools(rng, "en", 2.0, 400)
    pools, margins, ok = pools_id + pools_en, margins_id + margins_en, ok_id + ok_en
    calibration, scores = fit_calibration(margins, pools, ok, 0.05)
    assert set(calibration.abstain) == {"id", "en", "*"}
    assert calibration.abstain["en"] > calibration.abstain["id"]
    assert calibration.answerable_scale > 0
    for lang in ("id", "en"):
        mine = [i for i, pool in enumerate(pools) if pool.lang == lang]
        metrics = pool_metrics([pools[i] for i in mine], [ok[i] for i in mine], [scores[i] for i in mine], calibration)
        assert metrics["false_abstention"] <= 0.05
        assert metrics["abstention_recall"] > 0.9
    # P(answerable) is Platt-scaled from the logit of P(some sentence answers), the sentence probabilities
    # taken as independent.
    assert calibration.answerable_from == "sentences"
    probs = np.concatenate(calibration.apply(margins[0])).astype(np.float64)
    some = 1 - np.prod(1 - probs)
    z = calibration.answerable_scale * np.log(some / (1 - some)) + calibration.answerable_bias
    assert scores[0].answerable == pytest.approx(1 / (1 + np.exp(-z)))
    assert calibration.answerable(margins[0], calibration.apply(margins[0])) == pytest.approx(scores[0].answerable)
    # The earlier recipe (specs written before it) scales the logsumexp of the margins instead.
    mass = replace(calibration, answerable_from="mass")
    z = calibration.answerable_scale * np.logaddexp.reduce(np.concatenate(margins[0])) + calibration.answerable_bias
    assert mass.answerable(margins[0], calibration.apply(margins[0])) == pytest.approx(1 / (1 + np.exp(-z)))
    # A language never calibrated falls back to the threshold over all of them.
    assert calibration.abstain_threshold("ja") == calibration.abstain["*"]


def test_a_calibration_without_language_thresholds_abstains_on_the_best_sentence() -> None:
    old = Calibration(margin=1.0, rank=0.0, bias=0.0, threshold=0.3)
    margins = [np.array([-3.0, 0.5]), np.array([-1.0])]
    probs = old.apply(margins)
    assert old.answerable(margins, probs) == pytest.approx(float(max(p.max() for p in probs)))
    assert old.abstain_threshold("id") == 0.3 and old.abstain_threshold("en") == 0.3
    assert old.answerable([], []) == 0.0


def test_training_question_caps_are_read_from_json() -> None:
    import typer

    from training.__main__ import _question_caps

    assert _question_caps('{"abstracts": null, "tydiqa-id": 300}') == {"abstracts": None, "tydiqa-id": 300}
    for bad in ("{", '["abstracts"]', '{"abstracts": -1}', '{"abstracts": "all"}'):
        with pytest.raises(typer.BadParameter):
            _question_caps(bad)


def test_a_set_a_run_does_not_read_adds_no_pools_and_leaves_the_draws_of_the_others(tmp_path: Path) -> None:
    import random

    from training.reranker import sample_pools

    qaset = load_squad(_squad(tmp_path))
    other = replace(qaset, name="other", items=tuple(replace(i, question=i.question + " now") for i in qaset.items))
    alone = sample_pools({"a": qaset}, {"a": 1}, 1, random.Random(3))
    with_unread = sample_pools({"a": qaset, "other": other}, {"a": 1}, 1, random.Random(3))
    assert [p.question_id for p in with_unread] == [p.question_id for p in alone]
    assert len(with_unread) == 1


@pytest.mark.skipif(not (DATA / "tydiqa-id" / "train.json").is_file(), reason="../shared/eval-data is not here")
def test_the_crosslingual_training_set_asks_the_translations_over_every_train_passage() -> None:
    from eval.crosslingual import TRAIN_QUESTIONS_FILE, is_translated, read_translations
    from training.reranker import CROSSLINGUAL, training_sets

    sets = training_sets(DATA)
    crosslingual = sets[CROSSLINGUAL]
    translations = read_translations(TRAIN_QUESTIONS_FILE)
    assert len(crosslingual.items) == len(translations)
    assert all(is_translated(item) for item in crosslingual.items)
    assert {item.question for item in crosslingual.items} == {t.question for t in translations}
    # One index of the public train passages in both languages: SQuAD's English ones are in it.
    assert set(sets["squad2-en"].contexts) <= set(crosslingual.contexts)
    # Each translated question keeps its original's answers, located in its own (Indonesian) passage.
    for item in crosslingual.items:
        for answer, (start, end) in zip(item.answers, item.spans, strict=True):
            assert crosslingual.contexts[item.context][start:end] == answer
