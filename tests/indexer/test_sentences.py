"""Sentence segmentation: exact offsets, glued boundaries, token limits, languages."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from indexer.chunks import ChunkerConfig, chunk_document
from indexer.documents import Document, read_document
from indexer.sentences import Span, split_sentences, split_to_token_limit
from tests.support.helpers import CORPUS_DIR, CORPUS_FILES, CORPUS_IDS, METI, TOKUTEI, doc_from_text


def _read(path: Path) -> Document:
    return read_document(path, path.parent, 10**8)


@pytest.fixture(scope="module")
def corpus_docs() -> dict[str, Document]:
    docs = [_read(p) for p in CORPUS_FILES]
    return {d.doc_id: d for d in docs}


# --- exact offsets --------------------------------------------------------------------------
@pytest.mark.parametrize("path", CORPUS_FILES, ids=CORPUS_IDS)
def test_split_sentences_spans_are_trimmed_ordered_and_disjoint(path: Path) -> None:
    doc = _read(path)
    spans = split_sentences(doc.text)
    assert spans
    previous_end = 0
    for span in spans:
        piece = doc.text[span.start : span.end]
        assert piece, span
        assert piece == piece.strip(), f"untrimmed sentence {piece!r}"
        assert span.start >= previous_end
        previous_end = span.end
    # Nothing but whitespace is lost between sentences.
    covered = "".join(doc.text[s.start : s.end] for s in spans)
    assert "".join(covered.split()) == "".join(doc.text.split())


@pytest.mark.parametrize("max_tokens", [32, 64, 160])
@pytest.mark.parametrize("path", CORPUS_FILES, ids=CORPUS_IDS)
def test_every_sentence_text_is_the_exact_document_slice(path: Path, max_tokens: int, counter) -> None:
    doc = _read(path)
    sentences, _ = chunk_document(doc, counter, ChunkerConfig(max_tokens=max_tokens))
    assert sentences
    for ordinal, sentence in enumerate(sentences):
        assert sentence.ordinal == ordinal
        assert sentence.doc_id == doc.doc_id
        assert doc.text[sentence.start : sentence.end] == sentence.text
        assert sentence.sentence_id == f"{doc.doc_id}:s{ordinal}"


def test_split_sentences_respects_start_and_end() -> None:
    text = "Ignore this. First one here. Second one here. Ignore that."
    start = text.index("First")
    end = text.index(" Ignore that")
    spans = split_sentences(text, start, end)
    assert [text[s.start : s.end] for s in spans] == ["First one here.", "Second one here."]


def test_line_breaks_always_split_and_offsets_survive_crlf() -> None:
    text = "Heading without period\r\nA sentence follows here\r\n\r\nAnother line."
    spans = split_sentences(text)
    assert [text[s.start : s.end] for s in spans] == [
        "Heading without period",
        "A sentence follows here",
        "Another line.",
    ]


def test_abbreviations_and_initials_do_not_end_sentences() -> None:
    text = "Dr. Tanaka met Mr. Budi in Jl. Sudirman. See e.g. Fig. 2 for details. J. Smith agreed."
    pieces = [text[s.start : s.end] for s in split_sentences(text)]
    assert pieces == [
        "Dr. Tanaka met Mr. Budi in Jl. Sudirman.",
        "See e.g. Fig. 2 for details.",
        "J. Smith agreed.",
    ]


def test_decimal_numbers_are_not_boundaries() -> None:
    text = "Targetnya 10.000 peserta. Nilai 3.5 persen naik."
    pieces = [text[s.start : s.end] for s in split_sentences(text)]
    assert pieces == ["Targetnya 10.000 peserta.", "Nilai 3.5 persen naik."]


# --- glued boundaries ----------------------------------------------------------------------------
def test_glued_english_indonesian_boundary_is_split(corpus_docs: dict[str, Document], counter) -> None:
    doc = corpus_docs[METI]
    assert "Skilled migrationPasar tenaga kerja" in doc.text
    sentences, _ = chunk_document(doc, counter, ChunkerConfig())
    texts = [s.text for s in sentences]
    pairs = list(pairwise(texts))
    assert any(a.endswith("Skilled migration") and b.startswith("Pasar tenaga kerja") for a, b in pairs), texts
    # The split is for segmentation only: the two sentences are adjacent in the text.
    index = next(i for i, t in enumerate(texts) if t.endswith("Skilled migration"))
    assert sentences[index].end == sentences[index + 1].start


def test_glued_punctuation_boundary_is_split(corpus_docs: dict[str, Document]) -> None:
    doc = corpus_docs[METI]
    assert "corporations.Keywords" in doc.text
    pieces = [doc.text[s.start : s.end] for s in split_sentences(doc.text)]
    assert any(p.endswith("within Japanese corporations.") for p in pieces)
    assert any(p.startswith("Keywords: Global talent") for p in pieces)
    assert any(p.startswith("Kata-kata kunci:") for p in pieces)  # "...Jepang.Kata-kata kunci"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("It grew fast.Keywords follow here", ["It grew fast.", "Keywords follow here"]),
        ("Is it true?Yes it is", ["Is it true?", "Yes it is"]),
        ("labour migrationPasar kerja berubah", ["labour migration", "Pasar kerja berubah"]),
    ],
)
def test_synthetic_glued_boundaries(text: str, expected: list[str]) -> None:
    assert [text[s.start : s.end] for s in split_sentences(text)] == expected


@pytest.mark.parametrize("text", ["The new iPhone sells well", "They ate at McDonald today", "Officials from moJ came"])
def test_camel_case_words_stay_whole(text: str) -> None:
    assert [text[s.start : s.end] for s in split_sentences(text)] == [text]


# --- token limits ----------------------------------------------------------------------------------
@pytest.mark.parametrize("max_tokens", [16, 32, 64, 160])
def test_split_to_token_limit_pieces_fit_and_are_exact(max_tokens: int, counter) -> None:
    sentence = " ".join(f"word{i} alpha beta gamma" for i in range(200)) + "."
    text = "Before. " + sentence + " After."
    span = Span(text.index("word0"), text.index(" After."))
    pieces = split_to_token_limit(text, span, counter, max_tokens)
    assert len(pieces) > 1
    assert pieces[0].start == span.start and pieces[-1].end == span.end
    for a, b in pairwise(pieces):
        assert a.end <= b.start and text[a.end : b.start].isspace()
    for piece in pieces:
        assert counter.count(text[piece.start : piece.end]) <= max_tokens


def test_split_to_token_limit_keeps_short_sentences_whole(counter) -> None:
    text = "A short sentence."
    assert split_to_token_limit(text, Span(0, len(text)), counter, 16) == [Span(0, len(text))]


@pytest.mark.parametrize("word", ["x" * 4000, "https://example.org/" + "a1b2c3" * 600, "😀é漢字" * 300])
@pytest.mark.parametrize("max_tokens", [16, 32, 64])
def test_split_to_token_limit_cuts_one_enormous_word(word: str, max_tokens: int, counter) -> None:
    text = f"See {word} here"
    span = Span(0, len(text))
    pieces = split_to_token_limit(text, span, counter, max_tokens)
    assert "".join(text[p.start : p.end] for p in pieces).replace(" ", "") == text.replace(" ", "")
    for piece in pieces:
        assert piece.end > piece.start
        assert counter.count(text[piece.start : piece.end]) <= max_tokens


# --- languages -----------------------------------------------------------------------------------
def test_bilingual_abstract_sentence_languages(corpus_docs: dict[str, Document], counter) -> None:
    doc = corpus_docs[METI]
    boundary = doc.text.index("Pasar tenaga kerja")
    sentences, _ = chunk_document(doc, counter, ChunkerConfig())
    english = [s for s in sentences if s.end <= boundary]
    indonesian = [s for s in sentences if s.start >= boundary]
    assert english and indonesian and len(english) + len(indonesian) == len(sentences)
    assert {s.lang for s in english} == {"en"}, [(s.lang, s.text[:40]) for s in english]
    assert {s.lang for s in indonesian} == {"id"}, [(s.lang, s.text[:40]) for s in indonesian]


def test_markdown_abstract_sentence_languages(corpus_docs: dict[str, Document], counter) -> None:
    doc = corpus_docs[TOKUTEI]
    boundary = doc.text.index("## **ABSTRACT**")
    sentences, _ = chunk_document(doc, counter, ChunkerConfig())
    indonesian = [s for s in sentences if s.end <= boundary]
    english = [s for s in sentences if s.start >= boundary]
    assert english and indonesian and len(english) + len(indonesian) == len(sentences)
    assert {s.lang for s in indonesian} == {"id"}, [(s.lang, s.text[:40]) for s in indonesian]
    assert {s.lang for s in english} == {"en"}, [(s.lang, s.text[:40]) for s in english]


def test_indonesian_news_sentences_are_indonesian(corpus_docs: dict[str, Document], counter) -> None:
    doc = next(d for d in corpus_docs.values() if d.doc_id.startswith("kemnaker"))
    sentences, _ = chunk_document(doc, counter, ChunkerConfig())
    assert {s.lang for s in sentences} == {"id"}


def test_short_keyword_lines_keep_the_running_language(counter) -> None:
    text = "Ini adalah kalimat yang panjang dalam bahasa Indonesia untuk pengujian.\nBP2MI, LPK\n"
    doc = doc_from_text(text, lang="id")
    sentences, _ = chunk_document(doc, counter, ChunkerConfig())
    assert [s.lang for s in sentences] == ["id", "id"]


def test_corpus_directory_exists() -> None:
    assert CORPUS_DIR.is_dir() and len(CORPUS_FILES) == 3
