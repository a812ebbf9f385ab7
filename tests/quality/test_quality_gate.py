"""CI quality gate: the gold set through the default configuration must stay above its floors.

The floors come from the measured numbers in eval/README.md (183 questions, e5-small +
use-m3, hybrid) and include the issue's own: citation exactness 100 %, recall@5 >= 0.95,
abstention recall >= 0.9, false abstention <= 5 %. A change that lowers retrieval, answer
or abstention quality below them fails CI.
"""

from __future__ import annotations

import pytest

from eval.harness import evaluate, load_gold, summarise
from indexer.embedders import load_embedders
from indexer.pipeline import build_index
from service.qa.engine import Engine
from tests.support.helpers import REPO_ROOT, ExplicitSettings

ROOT = REPO_ROOT

# Measured on this configuration: citation exactness 1.000, recall@5 0.956, answer hit 0.691,
# abstention recall 0.915 (43/47; out-of-scope 8/8), false abstention 0.044 (6/136).
FLOORS = {
    "citation_exactness": 1.0,
    "recall@5": 0.95,
    "answer_hit": 0.66,
}
FALSE_ABSTENTION_MAX = 0.05
OUT_OF_SCOPE_ABSTENTION_MIN = 1.0
ABSTENTION_RECALL_MIN = 0.90


@pytest.fixture(scope="module")
def gold_summary(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, float], float]:
    settings = ExplicitSettings(index_dir=tmp_path_factory.mktemp("gate") / "index")
    embedders = load_embedders(settings.embedders)
    build_index([ROOT / "corpus"], settings.index, embedders)
    engine = Engine.load(settings.engine, embedders)
    items = load_gold(ROOT / "eval" / "gold.jsonl")
    results = evaluate(engine, items, [settings.mode], "default")
    kinds = {item.id: item.kind for item in items}
    out_of_scope = [r for r in results if kinds[r.id] == "out_of_scope"]
    oos_abstained = sum(r.abstained for r in out_of_scope) / len(out_of_scope)
    return summarise(results), oos_abstained


@pytest.mark.slow
@pytest.mark.parametrize("metric", sorted(FLOORS))
def test_gold_set_floor(gold_summary: tuple[dict[str, float], float], metric: str) -> None:
    summary, _ = gold_summary
    assert summary[metric] >= FLOORS[metric], f"{metric} fell to {summary[metric]:.3f} (floor {FLOORS[metric]})"


@pytest.mark.slow
def test_false_abstention_ceiling(gold_summary: tuple[dict[str, float], float]) -> None:
    summary, _ = gold_summary
    assert summary["false_abstention"] <= FALSE_ABSTENTION_MAX, f"false abstention {summary['false_abstention']:.3f}"


@pytest.mark.slow
def test_abstention_floors(gold_summary: tuple[dict[str, float], float]) -> None:
    summary, out_of_scope = gold_summary
    assert out_of_scope >= OUT_OF_SCOPE_ABSTENTION_MIN, f"only {out_of_scope:.2f} of out-of-scope questions abstain"
    assert summary["abstain_recall"] >= ABSTENTION_RECALL_MIN, f"abstention recall {summary['abstain_recall']:.3f}"
