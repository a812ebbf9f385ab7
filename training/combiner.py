"""Fit the answer combiner (``service/qa/reranker/combiner.py``) on engine pools from the training splits.

For a sample of each training set's contexts, the contexts are indexed with the product's
encoders and chunker, and each question about them is retrieved and shortlisted exactly as
the answerer does at query time. Every shortlisted sentence gives one row (cross-encoder logit,
dense, overlap, support, rank prior) labelled by whether it holds a gold answer. A logistic
regression over the rows is P(answer); the threshold is the highest that turns away at most
``max_false_abstention`` of the answerable training questions. The valid splits are not read.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from eval.qa import write_documents
from eval.squad import QASet, answer_in
from indexer.embedders import Embedder, load_embedders
from indexer.pipeline import build_index
from service.config import Settings
from service.qa.engine import Engine
from service.qa.reranker.combiner import FEATURES, feature_matrix, fit_logistic
from service.qa.reranker.cross_encoder import SPEC_FILE, CrossEncoder, RerankerSpec
from training.model_card import write_model_card
from training.reranker import Progress, load_sets, threshold_for


@dataclass(frozen=True)
class CombinerConfig:
    """What decides the combiner (recorded in ``reranker.json``)."""

    seed: int = 13
    contexts: dict[str, int] = field(default_factory=lambda: {"tydiqa-id": 300, "idk-mrc": 300, "squad2-en": 60})
    questions: int = 400
    max_false_abstention: float = 0.05
    threads: int = 2


@dataclass
class PoolRows:
    """One question's shortlisted candidates: feature rows and labels."""

    set_name: str
    answerable: bool
    features: np.ndarray
    labels: np.ndarray


def _subset(qaset: QASet, n_contexts: int, n_questions: int, rng: random.Random) -> QASet:
    chosen = sorted(rng.sample(range(len(qaset.contexts)), min(n_contexts, len(qaset.contexts))))
    where = {old: new for new, old in enumerate(chosen)}
    items = [replace(item, context=where[item.context]) for item in qaset.items if item.context in where]
    items = rng.sample(items, min(n_questions, len(items)))
    return QASet(
        qaset.name,
        tuple(qaset.contexts[i] for i in chosen),
        tuple(qaset.titles[i] for i in chosen),
        tuple(items),
    )


def engine_rows(
    qaset: QASet,
    settings: Settings,
    embedders: list[Embedder],
    scorer: CrossEncoder,
    work_dir: Path,
    progress: Progress,
) -> list[PoolRows]:
    """Index ``qaset``'s contexts under ``work_dir`` and collect each question's candidate rows."""
    write_documents(qaset, work_dir / "docs")
    settings = settings.model_copy(update={"index_dir": work_dir / "index"})
    build_index([work_dir / "docs"], settings.index, embedders)
    engine = Engine.load(settings.engine, embedders, reranker=scorer)
    answerer = engine.answerer
    out = []
    for done, item in enumerate(qaset.items, start=1):
        query = engine.analyser.analyse(item.question, "hybrid")
        passages = engine.retriever.search(query, settings.answer_candidate_passages)
        shortlist = answerer.score_sentences(query, passages)[: settings.reranker_candidates]
        if shortlist:
            candidates = [s.candidate() for s in shortlist]
            logits = scorer.logits(item.question, [c.text for c in candidates])
            labels = np.array([answer_in(c.text, item.answers) if item.answerable else False for c in candidates])
            out.append(PoolRows(qaset.name, item.answerable, feature_matrix(logits, candidates), labels.astype(float)))
        progress(f"pools {qaset.name}", done, len(qaset.items), "")
    return out


def fit_combiner(
    config: CombinerConfig, data_dir: Path, model_dir: Path, work_dir: Path, progress: Progress | None = None
) -> dict[str, Any]:
    """Fit, choose the threshold, and write both into ``model_dir/reranker.json``; return the record."""
    report = progress or (lambda stage, done, total, detail: None)
    started = time.time()
    rng = random.Random(config.seed)
    settings = Settings(reranker_threads=config.threads)
    embedders = load_embedders(settings.embedders)
    scorer = CrossEncoder.load(model_dir, config.threads)
    pools: list[PoolRows] = []
    for name, qaset in load_sets(data_dir, "train").items():
        subset = _subset(qaset, config.contexts.get(name, 0), config.questions, rng)
        pools.extend(engine_rows(subset, settings, embedders, scorer, work_dir / name, report))
    features = np.concatenate([p.features for p in pools])
    labels = np.concatenate([p.labels for p in pools])
    combiner = fit_logistic(features, labels)
    best = [float(combiner.probabilities(p.features).max()) for p in pools]
    threshold = threshold_for([b for b, p in zip(best, pools, strict=True) if p.answerable], config.max_false_abstention)

    def top1(rank: Callable[[PoolRows], np.ndarray]) -> float:
        rows = [p for p in pools if p.answerable]
        return float(np.mean([p.labels[int(np.argmax(rank(p)))] for p in rows]))

    unanswerable = [b for b, p in zip(best, pools, strict=True) if not p.answerable]
    record = {
        "config": {k: v for k, v in vars(config).items()},
        "questions": len(pools),
        "rows": len(labels),
        "weights": dict(zip(FEATURES, combiner.weights, strict=True)),
        "train_pool_top1": {
            "combiner": top1(lambda p: combiner.probabilities(p.features)),
            "logit": top1(lambda p: p.features[:, 0]),
            "support": top1(lambda p: p.features[:, 3]),
        },
        "train_abstention_recall": float(np.mean([b < threshold for b in unanswerable])) if unanswerable else None,
        "seconds": round(time.time() - started),
    }
    spec = RerankerSpec.from_file(model_dir / SPEC_FILE)
    spec = replace(
        spec,
        combiner=combiner.to_dict(),
        combiner_threshold=threshold,
        training={**spec.training, "combiner": record},
    )
    (model_dir / SPEC_FILE).write_text(spec.to_json(), encoding="utf-8")
    write_model_card(model_dir)
    return record
