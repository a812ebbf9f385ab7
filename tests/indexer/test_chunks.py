"""Chunking: exact offsets, markdown sections, token limits, overlap, one language per chunk."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from indexer.chunks import ChunkerConfig, chunk_document
from indexer.documents import Document, read_document
from tests.support.helpers import CORPUS_FILES, CORPUS_IDS, METI, TOKUTEI, doc_from_text

LIMITS = [32, 64, 160]


def _read(path: Path) -> Document:
    return read_document(path, path.parent, 10**8)


def _check_chunks(doc: Document, counter, config: ChunkerConfig) -> None:
    sentences, chunks = chunk_document(doc, counter, config)
    assert chunks
    for ordinal, chunk in enumerate(chunks):
        assert chunk.ordinal == ordinal
        assert chunk.chunk_id == f"{doc.doc_id}:{ordinal}"
        assert doc.text[chunk.start : chunk.end] == chunk.text
        assert chunk.tokens <= config.max_tokens
        assert counter.count(chunk.text) <= config.max_tokens
        assert chunk.tokens == counter.count(chunk.text)
        # A chunk is a run of whole sentences, all in the chunk's language.
        covered = sentences[chunk.first_sentence : chunk.last_sentence + 1]
        assert covered[0].start == chunk.start and covered[-1].end == chunk.end
        assert {s.lang for s in covered} == {chunk.lang}
    # Every sentence is in at least one chunk; chunks advance through the document.
    seen = set()
    for chunk in chunks:
        seen.update(range(chunk.first_sentence, chunk.last_sentence + 1))
    assert seen == set(range(len(sentences)))
    for a, b in pairwise(chunks):
        assert b.first_sentence > a.first_sentence
        assert b.last_sentence > a.last_sentence
        assert b.first_sentence <= a.last_sentence + 1


@pytest.mark.parametrize("max_tokens", LIMITS)
@pytest.mark.parametrize("path", CORPUS_FILES, ids=CORPUS_IDS)
def test_corpus_chunks_are_exact_and_within_limits(path: Path, max_tokens: int, counter) -> None:
    _check_chunks(_read(path), counter, ChunkerConfig(max_tokens=max_tokens))


@pytest.mark.parametrize("overlap", [0, 1, 2])
@pytest.mark.parametrize("path", CORPUS_FILES, ids=CORPUS_IDS)
def test_corpus_chunks_with_other_overlaps(path: Path, overlap: int, counter) -> None:
    _check_chunks(_read(path), counter, ChunkerConfig(max_tokens=96, overlap_sentences=overlap))


def test_no_overlap_means_disjoint_chunks(counter) -> None:
    doc = _read(next(p for p in CORPUS_FILES if p.name.startswith("kemnaker")))
    _, chunks = chunk_document(doc, counter, ChunkerConfig(max_tokens=64, overlap_sentences=0))
    for a, b in pairwise(chunks):
        assert b.first_sentence == a.last_sentence + 1
        assert b.start > a.end


def test_overlap_shares_a_sentence_when_there_is_room(counter) -> None:
    text = " ".join(f"Sentence number {i} is short." for i in range(40))
    doc = doc_from_text(text)
    _, chunks = chunk_document(doc, counter, ChunkerConfig(max_tokens=40, overlap_sentences=1))
    assert len(chunks) > 2
    for a, b in pairwise(chunks):
        assert b.first_sentence == a.last_sentence  # exactly one shared sentence


@pytest.mark.parametrize("max_tokens", [16, 32, 64, 160])
def test_artificial_document_with_long_sentence_and_huge_word(max_tokens: int, counter) -> None:
    long_sentence = " ".join(f"item{i} moves through the long pipeline" for i in range(250)) + "."
    huge_word = "z" * 6000
    text = (
        "An ordinary opening sentence.\n"
        f"{long_sentence} Then a normal sentence follows.\n"
        f"Here comes {huge_word} and more words after it.\n"
        f"{'漢字😀' * 500}\n"
        "Closing line."
    )
    doc = doc_from_text(text)
    _check_chunks(doc, counter, ChunkerConfig(max_tokens=max_tokens))
    sentences, _ = chunk_document(doc, counter, ChunkerConfig(max_tokens=max_tokens))
    for sentence in sentences:
        assert text[sentence.start : sentence.end] == sentence.text
        assert counter.count(sentence.text) <= max_tokens


# --- markdown sections -------------------------------------------------------------------------
def test_markdown_headings_become_sections(counter) -> None:
    doc = _read(next(p for p in CORPUS_FILES if p.name.startswith(TOKUTEI)))
    assert doc.format == "md"
    assert "## ABSTRAK" in doc.text and "## **ABSTRACT**" in doc.text
    for max_tokens in LIMITS:
        _, chunks = chunk_document(doc, counter, ChunkerConfig(max_tokens=max_tokens))
        assert {c.section for c in chunks} == {"ABSTRAK", "ABSTRACT"}
        abstract_at = doc.text.index("## **ABSTRACT**")
        for chunk in chunks:
            assert "## " not in chunk.text
            assert "#" not in chunk.text
            assert chunk.section == ("ABSTRAK" if chunk.end <= abstract_at else "ABSTRACT")
            expected_lang = "id" if chunk.section == "ABSTRAK" else "en"
            assert chunk.lang == expected_lang


def test_chunks_never_span_two_sections(counter) -> None:
    text = "# One\n\nFirst section text is here.\n\n## Two ##\n\nSecond section text is here.\n### **Three**\nThird."
    doc = doc_from_text(text, fmt="md")
    _, chunks = chunk_document(doc, counter, ChunkerConfig(max_tokens=160))
    assert [(c.section, c.text) for c in chunks] == [
        ("One", "First section text is here."),
        ("Two", "Second section text is here."),
        ("Three", "Third."),
    ]


def test_text_before_the_first_heading_has_no_section(counter) -> None:
    text = "Preface sentence here.\n\n## Body\n\nBody sentence here."
    _, chunks = chunk_document(doc_from_text(text, fmt="md"), counter, ChunkerConfig())
    assert [(c.section, c.text) for c in chunks] == [(None, "Preface sentence here."), ("Body", "Body sentence here.")]


def test_hash_lines_in_plain_text_are_not_headings(counter) -> None:
    text = "## Not a heading in txt\nBody line."
    _, chunks = chunk_document(doc_from_text(text, fmt="txt"), counter, ChunkerConfig())
    assert all(c.section is None for c in chunks)
    assert chunks[0].text.startswith("## Not a heading")


def test_embedding_text_carries_title_and_section(counter) -> None:
    doc = _read(next(p for p in CORPUS_FILES if p.name.startswith(TOKUTEI)))
    _, chunks = chunk_document(doc, counter, ChunkerConfig())
    chunk = chunks[0]
    assert chunk.embedding_text("T") == f"T — ABSTRAK\n{chunk.text}"
    plain = doc_from_text("Just one sentence here.")
    _, plain_chunks = chunk_document(plain, counter, ChunkerConfig())
    assert plain_chunks[0].embedding_text("T") == "T\nJust one sentence here."


# --- languages ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("max_tokens", LIMITS)
def test_bilingual_abstract_chunks_never_mix_languages(max_tokens: int, counter) -> None:
    doc = _read(next(p for p in CORPUS_FILES if p.name.startswith(METI)))
    boundary = doc.text.index("Pasar tenaga kerja")
    _, chunks = chunk_document(doc, counter, ChunkerConfig(max_tokens=max_tokens))
    assert {c.lang for c in chunks} == {"en", "id"}
    for chunk in chunks:
        assert chunk.end <= boundary or chunk.start >= boundary, chunk.text[:80]
        assert chunk.lang == ("en" if chunk.end <= boundary else "id")


def test_language_switch_starts_a_new_chunk(counter) -> None:
    text = (
        "This is an English sentence about the program and its workers. "
        "Ini adalah kalimat bahasa Indonesia tentang program dan para pekerja."
    )
    _, chunks = chunk_document(doc_from_text(text), counter, ChunkerConfig(max_tokens=160))
    assert [c.lang for c in chunks] == ["en", "id"]
    assert chunks[1].first_sentence == chunks[0].last_sentence + 1  # no overlap across languages


def test_chunker_config_record_round_trips() -> None:
    config = ChunkerConfig(max_tokens=64, overlap_sentences=2)
    assert ChunkerConfig(**config.to_record()) == config
    assert config.to_record() == {"max_tokens": 64, "overlap_sentences": 2, "tokenizer": "cl100k_base"}
