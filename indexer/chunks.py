"""Sentence-aware, token-bounded chunking with exact character offsets.

A chunk is a run of whole sentences from one section of one document, in one language,
whose text (``document.text[start:end]``) has at most ``max_tokens`` cl100k tokens.
Consecutive chunks share ``overlap_sentences`` sentences so that a fact split across a
window boundary is still retrievable in one piece. Markdown headings are not chunk text:
they become the ``section`` of the chunks below them.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from indexer.documents import Document
from indexer.language import Lang, detect_language
from indexer.sentences import Span, split_sentences, split_to_token_limit
from indexer.tokens import TokenCounter

_HEADING = re.compile(r"^[ \t]{0,3}(#{1,6})[ \t]+(.+?)[ \t#]*$", re.MULTILINE)


@dataclass(frozen=True)
class ChunkerConfig:
    """Chunker parameters; they are recorded in the index manifest."""

    max_tokens: int = 256
    overlap_sentences: int = 1
    tokenizer: str = "cl100k_base"

    def to_record(self) -> dict[str, Any]:
        """JSON form, as stored in ``manifest.json``."""
        return asdict(self)


@dataclass(frozen=True)
class Sentence:
    """One sentence (or token-limited piece of one) with its exact offsets and language."""

    doc_id: str
    ordinal: int
    start: int
    end: int
    lang: Lang
    text: str

    @property
    def sentence_id(self) -> str:
        """Stable id, unique in the index."""
        return f"{self.doc_id}:s{self.ordinal}"


@dataclass(frozen=True)
class Chunk:
    """A retrievable passage: whole sentences ``[first_sentence, last_sentence]`` of one document."""

    doc_id: str
    ordinal: int
    start: int
    end: int
    lang: Lang
    section: str | None
    tokens: int
    first_sentence: int
    last_sentence: int
    text: str

    @property
    def chunk_id(self) -> str:
        """Stable id, unique in the index."""
        return f"{self.doc_id}:{self.ordinal}"

    def embedding_text(self, title: str) -> str:
        """What the dense encoders see: the document title and section give the passage context."""
        head = f"{title} — {self.section}" if self.section else title
        return f"{head}\n{self.text}"


@dataclass(frozen=True)
class _Region:
    start: int
    end: int
    section: str | None


def _clean_heading(raw: str) -> str:
    return raw.replace("**", "").replace("__", "").strip(" *_").strip()


def _regions(doc: Document) -> list[_Region]:
    """Spans of body text, each with the heading it sits under (markdown only)."""
    if not doc.is_markdown:
        return [_Region(0, len(doc.text), None)]
    regions: list[_Region] = []
    section: str | None = None
    cursor = 0
    for match in _HEADING.finditer(doc.text):
        regions.append(_Region(cursor, match.start(), section))
        section = _clean_heading(match.group(2)) or None
        cursor = match.end()
    regions.append(_Region(cursor, len(doc.text), section))
    return [r for r in regions if doc.text[r.start : r.end].strip()]


def _sentences(doc: Document, counter: TokenCounter, config: ChunkerConfig) -> list[tuple[Sentence, str | None]]:
    out: list[tuple[Sentence, str | None]] = []
    lang: Lang = doc.lang
    for region in _regions(doc):
        for span in split_sentences(doc.text, region.start, region.end):
            for piece in split_to_token_limit(doc.text, span, counter, config.max_tokens):
                text = doc.text[piece.start : piece.end]
                # Short keyword lines carry no evidence and keep the running language.
                lang = detect_language(text, fallback=lang)
                sentence = Sentence(doc.doc_id, len(out), piece.start, piece.end, lang, text)
                out.append((sentence, region.section))
    return out


def chunk_document(
    doc: Document, counter: TokenCounter, config: ChunkerConfig
) -> tuple[list[Sentence], list[Chunk]]:
    """Split ``doc`` into sentences and overlapping chunks; every offset indexes ``doc.text``."""
    tagged = _sentences(doc, counter, config)
    sentences = [s for s, _ in tagged]
    chunks: list[Chunk] = []
    i = 0
    while i < len(tagged):
        first, section = tagged[i]
        j = i
        while j + 1 < len(tagged):
            nxt, nxt_section = tagged[j + 1]
            if nxt_section != section or nxt.lang != first.lang:
                break
            if counter.count(doc.text[first.start : nxt.end]) > config.max_tokens:
                break
            j += 1
        last = tagged[j][0]
        span = Span(first.start, last.end)
        chunks.append(
            Chunk(
                doc_id=doc.doc_id,
                ordinal=len(chunks),
                start=span.start,
                end=span.end,
                lang=first.lang,
                section=section,
                tokens=counter.count(doc.text[span.start : span.end]),
                first_sentence=i,
                last_sentence=j,
                text=doc.text[span.start : span.end],
            )
        )
        if j + 1 >= len(tagged):
            break
        nxt, nxt_section = tagged[j + 1]
        continues = nxt_section == section and nxt.lang == first.lang
        step_back = config.overlap_sentences if continues else 0
        # Always advance by at least one sentence, and only overlap when the overlap
        # leaves room for new text (otherwise the next chunk would repeat this one's tail).
        i = max(i + 1, j + 1 - step_back)
        if i <= j and counter.count(doc.text[tagged[i][0].start : nxt.end]) > config.max_tokens:
            i = j + 1
    return sentences, chunks
