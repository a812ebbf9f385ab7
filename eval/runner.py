"""``tanya eval``: every encoder set × retrieval mode on the gold set, side by side.

Each encoder set gets its own index (built once, reused while the corpus and settings are
unchanged, under ``work_dir``); every mode is run on the same index. Answers are produced
with abstention disabled and the confidence recorded, so the abstention threshold can be
swept afterwards without re-running (``threshold_sweep``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from eval.harness import ItemResult, breakdown, evaluate, load_gold, results_json, summarise
from eval.metrics import abstention_scores
from indexer.embedders import load_embedders
from indexer.pipeline import build_index
from service.config import Settings
from service.qa.engine import Engine

DEFAULT_CONFIGS = ("e5-small", "use-m3", "sentence-transformers:all-MiniLM-L6-v2", "e5-small+use-m3")


def _config_dir(work_dir: Path, config: str, settings: Settings) -> Path:
    safe = config.replace("+", "__").replace(":", "_").replace("/", "_")
    return work_dir / f"{safe}-t{settings.chunk_max_tokens}-o{settings.chunk_overlap_sentences}"


def apply_threshold(results: Sequence[ItemResult], threshold: float) -> list[ItemResult]:
    """Results as they would be with ``threshold`` (answers below it become abstentions)."""
    out = []
    for r in results:
        abstained = r.confidence < threshold
        out.append(
            replace(
                r,
                abstained=abstained,
                answer_hit=(bool(r.answer_hit) and not abstained) if r.answerable else None,
                citation_precision=None if abstained else r.citation_precision,
            )
        )
    return out


def threshold_sweep(results: Sequence[ItemResult], step: float = 0.02) -> list[dict[str, float]]:
    """Abstention precision/recall, false abstention and answer hit for each threshold."""
    rows = []
    steps = round(1 / step)
    for i in range(steps + 1):
        threshold = round(i * step, 4)
        applied = apply_threshold(results, threshold)
        scores = abstention_scores([r.abstained for r in applied], [r.answerable for r in applied])
        answerable = [r for r in applied if r.answerable]
        hit = sum(1 for r in answerable if r.answer_hit) / len(answerable) if answerable else 0.0
        rows.append({"threshold": threshold, **scores, "answer_hit": hit})
    return rows


def run(
    settings: Settings,
    gold_path: Path,
    configs: Sequence[str],
    modes: Sequence[str],
    work_dir: Path,
    log: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Evaluate every config × mode; returns the report dict (also see :func:`write_report`)."""
    items = load_gold(gold_path)
    all_results: list[ItemResult] = []
    raw_results: list[ItemResult] = []
    for config in configs:
        specs = config.split("+")
        # Support path: answer everything, then apply the real threshold to the confidences (the
        # sweep needs them all). With the reranker on, abstention may rest on the support while the
        # confidence is P(answer): the engine's own decisions are kept.
        rerank = settings.reranker == "on"
        zeroed = {} if rerank else {"abstain_threshold": 0.0, "abstain_threshold_lexical": 0.0}
        config_settings = settings.model_copy(update={"embedders": specs, **zeroed})
        embedders = load_embedders(specs)
        config_settings = config_settings.model_copy(update={"index_dir": _config_dir(work_dir, config, config_settings)})
        report = build_index(config_settings.corpus_paths, config_settings.index, embedders)
        log(f"[{config}] {report.summary}")
        engine = Engine.load(config_settings.engine, embedders)
        config_modes = list(modes)
        raw = evaluate(engine, items, config_modes, config)
        raw_results.extend(raw)
        for mode in config_modes:
            mode_rows = [r for r in raw if r.mode == mode]
            applied = mode_rows if rerank else apply_threshold(mode_rows, settings.answer.threshold_for(mode))
            all_results.extend(applied)
            summary = summarise(applied)
            log(
                f"[{config} | {mode}] recall@5 {summary['recall@5']:.3f}  answer_hit {summary['answer_hit']:.3f}  "
                f"abstain_recall {summary['abstain_recall']:.3f}  false_abstention {summary['false_abstention']:.3f}"
            )
    sweeps = {}
    for key in {f"{r.config} | {r.mode}" for r in raw_results}:
        rows = [r for r in raw_results if f"{r.config} | {r.mode}" == key]
        sweeps[key] = threshold_sweep(rows)
    return {
        "gold": str(gold_path),
        "questions": len(items),
        "settings": {
            "chunk_max_tokens": settings.chunk_max_tokens,
            "chunk_overlap_sentences": settings.chunk_overlap_sentences,
            "fusion": settings.fusion,
            "rrf_k": settings.rrf_k,
            "fusion_weights": settings.fusion_weights,
            "abstain_threshold": settings.abstain_threshold,
            "abstain_threshold_lexical": settings.abstain_threshold_lexical,
            "top_k": settings.top_k,
        },
        "table": breakdown(all_results),
        "threshold_sweep": sweeps,
        "items": results_json(all_results),
    }


def markdown_table(report: dict[str, Any], split: str = "all") -> str:
    """The summary table (one row per config × mode) as markdown."""
    columns = [
        "recall@1", "recall@3", "recall@5", "recall@10", "mrr@10", "ndcg@10", "answer_hit",
        "citation_precision", "citation_exactness", "abstain_precision", "abstain_recall",
        "false_abstention", "latency_p50_ms", "latency_p95_ms",
    ]
    lines = ["| config | mode | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for key in sorted(report["table"]):
        config, mode = key.split(" | ")
        metrics = report["table"][key][split]
        cells = [f"{metrics[c]:.1f}" if c.startswith("latency") else f"{metrics[c]:.3f}" for c in columns]
        lines.append(f"| {config} | {mode} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _write_json_and_markdown(report: dict[str, Any], markdown: str, out_dir: Path, stem: str) -> list[Path]:
    """``<stem>.json`` and ``<stem>.md`` under ``out_dir``: every report is written this way."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / f"{stem}.json", out_dir / f"{stem}.md"]
    written[0].write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    written[1].write_text(markdown if markdown.endswith("\n") else markdown + "\n", encoding="utf-8")
    return written


def write_benchmark_report(report: dict[str, Any], markdown: str, out_dir: Path, name: str) -> list[Path]:
    """A public benchmark's report (``tanya eval beir|facqa``): ``<name>.json`` and ``<name>.md``."""
    return _write_json_and_markdown(report, markdown, out_dir, name)


def write_report(report: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write report.json, report.md and a recall@k chart (PNG, if matplotlib is installed)."""
    parts = [f"# Gold-set evaluation ({report['questions']} questions)\n", f"Settings: `{json.dumps(report['settings'])}`\n"]
    for split in ("all", "lang=en", "lang=id", "cross-lingual", "same-language"):
        parts.append(f"\n## {split}\n\n{markdown_table(report, split)}\n")
    written = _write_json_and_markdown(report, "".join(parts), out_dir, "report")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return written
    fig, ax = plt.subplots(figsize=(8, 5))
    for key in sorted(report["table"]):
        metrics = report["table"][key]["all"]
        ax.plot([1, 3, 5, 10], [metrics[f"recall@{k}"] for k in (1, 3, 5, 10)], marker="o", label=key)
    ax.set_xlabel("k")
    ax.set_ylabel("recall@k")
    ax.set_ylim(0, 1.02)
    ax.set_title("Gold set: recall@k by encoder set and mode")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    chart = out_dir / "recall_at_k.png"
    fig.savefig(chart, dpi=120)
    plt.close(fig)
    written.append(chart)
    return written


__all__ = ["DEFAULT_CONFIGS", "markdown_table", "run", "threshold_sweep", "write_benchmark_report", "write_report"]
