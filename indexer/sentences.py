"""Sentence segmentation that returns exact character spans and never edits the text.

Besides ordinary ``. ! ?`` + space boundaries and line breaks, it recognises *glued*
boundaries where source extraction lost the space: ``corporations.Keywords`` and
``Skilled migrationPasar tenaga kerja`` (an English sentence running into an Indonesian
one). Those are split for segmentation only; offsets still index the original text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from indexer.tokens import TokenCounter

# Abbreviations after which a period does not end a sentence.
_ABBREVIATIONS = frozenset(
    "dr mr mrs ms prof no vs etc e.g i.e al fig jl jln bpk ibu sdr st dkk tsb dll dsb hlm ed eds".split()
)

# ". " / "! " / "? " (optionally after a closing quote or bracket), before something that can start a sentence.
_SPACED = re.compile(r"[.!?][\"'”’)\]*_]*\s+(?=[\"'“‘(\[*_]*[A-Z0-9])")
# Punctuation immediately followed by a capitalised word: "corporations.Keywords".
_GLUED_PUNCT = re.compile(r"(?<=[a-z)\]])[.!?](?=[A-Z][a-z])")
# A lower-case word running into a capitalised one: "migrationPasar" (needs 4+ lower-case
# letters before and a 3+ letter word after, so "iPhone", "McDonald" or "moJ" stay whole).
_GLUED_CASE = re.compile(r"(?<=[a-z]{4})(?=[A-Z][a-z]{3,})")


@dataclass(frozen=True)
class Span:
    """A half-open character range ``[start, end)`` of a document's text."""

    start: int
    end: int


def _boundaries(line: str) -> list[int]:
    """Offsets inside ``line`` at which a new sentence starts."""
    cuts: set[int] = set()
    for match in _SPACED.finditer(line):
        before = line[: match.start()].rsplit(None, 1)
        word = before[-1].lower().strip("(\"'") if before else ""
        if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
            continue
        cuts.add(match.end())
    for match in _GLUED_PUNCT.finditer(line):
        cuts.add(match.end())
    for match in _GLUED_CASE.finditer(line):
        cuts.add(match.start())
    return sorted(cuts)


def _trimmed(text: str, start: int, end: int) -> Span | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Span(start, end) if end > start else None


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[Span]:
    """Sentence spans of ``text[start:end]``, as offsets into ``text``; line breaks always split."""
    stop = len(text) if end is None else end
    spans: list[Span] = []
    line_start = start
    while line_start < stop:
        newline = text.find("\n", line_start, stop)
        line_end = stop if newline == -1 else newline
        line = text[line_start:line_end]
        previous = 0
        for cut in [*_boundaries(line), len(line)]:
            span = _trimmed(text, line_start + previous, line_start + cut)
            if span:
                spans.append(span)
            previous = cut
        line_start = line_end + 1
    return spans


def split_to_token_limit(text: str, span: Span, counter: TokenCounter, max_tokens: int) -> list[Span]:
    """Cut an over-long sentence at whitespace so that every piece has at most ``max_tokens`` tokens."""
    if counter.count(text[span.start : span.end]) <= max_tokens:
        return [span]
    pieces: list[Span] = []
    words = [m.span() for m in re.finditer(r"\S+", text[span.start : span.end])]
    piece_start = 0  # index into words
    while piece_start < len(words):
        lo, hi = piece_start + 1, len(words)
        # Binary search for the longest run of words that fits.
        while lo < hi:
            mid = (lo + hi + 1) // 2
            candidate = text[span.start + words[piece_start][0] : span.start + words[mid - 1][1]]
            if counter.count(candidate) <= max_tokens:
                lo = mid
            else:
                hi = mid - 1
        piece_end = max(lo, piece_start + 1)
        piece = Span(span.start + words[piece_start][0], span.start + words[piece_end - 1][1])
        if counter.count(text[piece.start : piece.end]) > max_tokens:
            # One enormous "word" (a URL, a table dump): cut by characters. A character is
            # at most 4 UTF-8 bytes, hence at most 4 tokens, so these pieces always fit.
            width = max(1, max_tokens // 4)
            pieces.extend(Span(i, min(i + width, piece.end)) for i in range(piece.start, piece.end, width))
        else:
            pieces.append(piece)
        piece_start = piece_end
    return pieces
