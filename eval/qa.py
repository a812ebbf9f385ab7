"""``tanya eval qa PATH``: a SQuAD-format file through the whole engine, reranker on and off, against bare e5.

The file's contexts become one small corpus (one ``.txt`` document per context), indexed
with the product's encoders and chunker; every question is then asked through
:class:`~service.qa.engine.Engine` exactly as a user's would be. Measured per configuration:

- ``recall@5``: the question's own context is among the top 5 passages (answerable questions);
- ``first_sentence_hit``: a gold answer is inside the answer's first cited sentence;
- ``answer_hit``: a gold answer is inside any cited sentence;
- ``abstain_precision`` / ``abstain_recall``: of abstentions, how many were unanswerable, and
  of unanswerable questions, how many abstained; ``false_abstention``: answerable ones turned away;
- latency p50/p95 (ms) and each stage's share of the total.

The baseline ``bare-e5`` ranks *every* sentence of the index by its e5 cosine to the
question: its first sentence is its top 1, its "answer" its top 3, and it never abstains.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from eval.squad import QAItem, QASet, answer_in
from indexer.embedders import Embedder
from indexer.errors import ConfigError
from indexer.pipeline import build_index
from service.config import Settings
from service.qa.answering import PassageReader
from service.qa.engine import Engine

#: The configurations a run compares, in table order.
CONFIGS = ("reranker", "support", "bare-e5")
BASELINE_ENCODER = "e5-small"


@dataclass
class QAResult:
    """One question under one configuration."""

    id: str
    config: str
    answerable: bool
    recall5: bool | None
    abstained: bool
    first_hit: bool | None
    answer_hit: bool | None
    confidence: float
    latency_ms: float
    timings_ms: dict[str, float] = field(default_factory=dict)


def write_documents(qaset: QASet, folder: Path) -> list[str]:
    """One ``ctx-NNNNN.txt`` per context (rewritten only when changed); returns the doc ids in context order."""
    from indexer.documents import make_doc_id

    folder.mkdir(parents=True, exist_ok=True)
    ids = []
    for i, context in enumerate(qaset.contexts):
        path = folder / f"ctx-{i:05d}.txt"
        if not path.exists() or path.read_text(encoding="utf-8") != context:
            path.write_text(context, encoding="utf-8")
        ids.append(make_doc_id(path, folder))
    return ids


def _cited_sentences(engine: Engine, answer: Any) -> list[str]:
    return [engine.document(c.doc_id).text[c.highlight.start : c.highlight.end] for c in answer.citations]


def ask_all(engine: Engine, qaset: QASet, items: Sequence[QAItem], doc_ids: Sequence[str], config: str,
            tick: Callable[[], None] | None = None) -> list[QAResult]:
    """Every item through ``engine.ask_with_passages`` (top 5)."""
    out = []
    for item in items:
        started = time.perf_counter()
        answer, passages = engine.ask_with_passages(item.question, top_k=5)
        latency = (time.perf_counter() - started) * 1000
        own = doc_ids[item.context]
        cited = [] if answer.abstained else _cited_sentences(engine, answer)
        hit = item.answerable and not answer.abstained
        out.append(
            QAResult(
                id=item.id,
                config=config,
                answerable=item.answerable,
                recall5=any(p.doc_id == own for p in passages) if item.answerable else None,
                abstained=answer.abstained,
                first_hit=(hit and answer_in(cited[0], item.answers)) if item.answerable else None,
                answer_hit=(hit and any(answer_in(s, item.answers) for s in cited)) if item.answerable else None,
                confidence=answer.confidence,
                latency_ms=latency,
                timings_ms=dict(answer.timings_ms),
            )
        )
        if tick:
            tick()
    return out


def bare_e5(
    engine: Engine, items: Sequence[QAItem], tick: Callable[[], None] | None = None, encoder: str = BASELINE_ENCODER
) -> list[QAResult]:
    """Rank every sentence of the index by ``encoder``'s cosine; top 1 is the "first sentence", top 3 the "answer"."""
    embedder = next((e for e in engine.embedders if e.id == encoder), None)
    if embedder is None:
        raise ConfigError(f"the bare-e5 baseline needs the {encoder} encoder in TANYA_EMBEDDERS")
    vectors = engine.index.sentence_vectors[encoder]
    out = []
    for item in items:
        started = time.perf_counter()
        query = embedder.embed_queries([item.question])[0]
        scores = vectors @ query
        if engine.index.sentence_live is not None:  # sentences of deleted documents (a delta build)
            scores[~engine.index.sentence_live] = -np.inf
        top = np.argsort(-scores)[:3]
        latency = (time.perf_counter() - started) * 1000
        texts = [engine.index.sentences[int(i)].text for i in top]
        out.append(
            QAResult(
                id=item.id,
                config="bare-e5",
                answerable=item.answerable,
                recall5=None,
                abstained=False,
                first_hit=answer_in(texts[0], item.answers) if item.answerable else None,
                answer_hit=any(answer_in(t, item.answers) for t in texts) if item.answerable else None,
                confidence=0.0,
                latency_ms=latency,
            )
        )
        if tick:
            tick()
    return out


def _share(values: Sequence[bool | None]) -> float | None:
    known = [bool(v) for v in values if v is not None]
    return sum(known) / len(known) if known else None


def summarise(results: Sequence[QAResult]) -> dict[str, Any]:
    """The table row of one configuration."""
    answerable = [r for r in results if r.answerable]
    unanswerable = [r for r in results if not r.answerable]
    abstained = [r for r in results if r.abstained]
    latencies = np.array([r.latency_ms for r in results]) if results else np.zeros(1)
    stages: dict[str, float] = {}
    for r in results:
        for name, ms in r.timings_ms.items():
            if name != "total" and not name.startswith("encoder:"):
                stages[name] = stages.get(name, 0.0) + ms
    total = sum(r.timings_ms.get("total", 0.0) for r in results)
    return {
        "questions": len(results),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "recall@5": _share([r.recall5 for r in answerable]),
        "first_sentence_hit": _share([r.first_hit for r in answerable]),
        "answer_hit": _share([r.answer_hit for r in answerable]),
        "abstain_precision": (sum(not r.answerable for r in abstained) / len(abstained)) if abstained else None,
        "abstain_recall": _share([r.abstained for r in unanswerable]),
        "false_abstention": _share([r.abstained for r in answerable]),
        "latency_p50_ms": float(np.percentile(latencies, 50)),
        "latency_p95_ms": float(np.percentile(latencies, 95)),
        "stage_share": {k: v / total for k, v in sorted(stages.items())} if total else {},
    }


def run_qa(
    qaset: QASet,
    settings: Settings,
    work_dir: Path,
    embedders: list[Embedder],
    reranker: PassageReader | None,
    configs: Sequence[str] = CONFIGS,
    limit: int | None = None,
    log: Callable[[str], None] = lambda line: None,
    tick: Callable[[str, int], Callable[[], None]] | None = None,
    baseline_encoder: str = BASELINE_ENCODER,
    group: Callable[[QAItem], str] | None = None,
) -> dict[str, Any]:
    """Index ``qaset``'s contexts in ``work_dir`` and measure every configuration; returns the report.

    With ``group``, the table has a row per configuration and group of questions as well
    (``"config | group"``), e.g. questions as written against their translations.
    """
    doc_ids = write_documents(qaset, work_dir / "docs")
    index_dir = work_dir / "index"
    settings = settings.model_copy(update={"index_dir": index_dir})
    started = time.perf_counter()
    built = build_index([work_dir / "docs"], settings.index, embedders)
    log(f"indexed {len(doc_ids)} contexts in {time.perf_counter() - started:.0f} s ({built.summary})")
    items = list(qaset.items[:limit] if limit else qaset.items)
    results: dict[str, list[QAResult]] = {}
    for config in configs:
        on = config == "reranker"
        engine_config = settings.engine
        engine_config = replace(
            engine_config, answer=replace(engine_config.answer, reranker=replace(engine_config.answer.reranker, enabled=on))
        )
        engine = Engine.load(engine_config, embedders, reranker=reranker if on else None)
        engine.warm_up()
        step = tick(config, len(items)) if tick else None
        if config == "bare-e5":
            results[config] = bare_e5(engine, items, step, baseline_encoder)
        else:
            results[config] = ask_all(engine, qaset, items, doc_ids, config, step)
        log(f"{qaset.name} {config}: done")
    return {
        "set": qaset.name,
        "contexts": len(qaset.contexts),
        "settings": {
            "embedders": list(settings.embedders),
            "reranker_candidates": settings.reranker_candidates,
            "reranker_threshold": settings.reranker_threshold,
            "reranker_precision": settings.reranker_precision,
            "reranker_type_gates": settings.reranker_type_gates,
            "reranker_abstain": settings.reranker_abstain,
        },
        "table": _table(results, {item.id: group(item) for item in items} if group else None),
        "items": {config: [vars(r) for r in rows] for config, rows in results.items()},
    }


def _table(results: dict[str, list[QAResult]], groups: dict[str, str] | None) -> dict[str, Any]:
    """A row per configuration, then (with ``groups``: question id -> group) one per configuration and group."""
    table = {config: summarise(rows) for config, rows in results.items()}
    if groups:
        for config, rows in results.items():
            for name in sorted(set(groups.values())):
                table[f"{config} | {name}"] = summarise([r for r in rows if groups.get(r.id) == name])
    return table


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if value <= 1.0 else f"{value:.0f}"
    return str(value)


def markdown_table(report: dict[str, Any]) -> str:
    """One row per configuration."""
    columns = ["recall@5", "first_sentence_hit", "answer_hit", "abstain_precision", "abstain_recall",
               "false_abstention", "latency_p50_ms", "latency_p95_ms"]
    lines = ["| config | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for config, row in report["table"].items():
        lines.append(f"| {config} | " + " | ".join(_fmt(row[c]) for c in columns) + " |")
    shares = {c: row["stage_share"] for c, row in report["table"].items() if row["stage_share"]}
    for config, share in shares.items():
        lines.append("")
        lines.append(f"{config} stage shares: " + ", ".join(f"{k} {v:.0%}" for k, v in share.items()))
    return "\n".join(lines)
