"""Retrieval modes, fusion, the answer contract and question validation (fake embedder)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from indexer.embedders.fake import FakeEmbedder
from indexer.errors import DocumentNotFoundError, InvalidQueryError
from indexer.lexical import top_stable
from service.qa.answer_types import AnswerType
from service.qa.engine import Engine
from service.qa.messages import ABSTAIN_MESSAGES, NO_CONTENT_MESSAGES, abstain_message, display_text
from service.qa.query import clean_question
from service.qa.retrieval import LEXICAL, ivf_probes
from service.qa.types import MAX_QUESTION_CHARS, Answer
from tests.support.contract import ANSWER_KEYS as CONTRACT_KEYS
from tests.support.contract import CITATION_KEYS
from tests.support.helpers import KEMNAKER, TOKUTEI, make_settings

MODES = ("lexical", "dense", "hybrid")
QUESTIONS = [
    "Who selects Tokutei Ginou workers?",
    "Berapa target peserta magang ke Jepang?",
    "What does the METI Japan Internship Program offer?",
    "What is the capital of France?",
]
SIGNALS = {"lexical": {LEXICAL}, "dense": {"fake"}, "hybrid": {LEXICAL, "fake"}}


def _check_citations(engine: Engine, payload: dict) -> None:
    for citation in payload["citations"]:
        assert set(citation) >= CITATION_KEYS, set(citation) ^ CITATION_KEYS
        doc = engine.document(citation["doc_id"])
        assert doc.text[citation["start"] : citation["end"]] == citation["text"]
        highlight = citation["highlight"]
        assert set(highlight) == {"start", "end"}
        assert citation["start"] <= highlight["start"] < highlight["end"] <= citation["end"]
        assert citation["title"] == doc.title and citation["source"] == doc.source
        assert citation["chunk_id"].startswith(f"{citation['doc_id']}:")
        assert citation["lang"] in ("en", "id")
    assert [c["marker"] for c in payload["citations"]] == list(range(1, len(payload["citations"]) + 1))


# --- retrieval ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("query", QUESTIONS)
def test_search_passages_have_a_rank_for_every_signal(fake_engine: Engine, mode: str, query: str) -> None:
    passages = fake_engine.search(query, top_k=10, mode=mode)
    assert len(passages) <= 10
    if mode != "lexical":
        assert len(passages) == 10  # dense signals rank every chunk
    for passage in passages:
        assert set(passage.ranks) == SIGNALS[mode]
        assert any(rank is not None for rank in passage.ranks.values())
        for signal, rank in passage.ranks.items():
            assert rank is None or rank >= 1
            assert (rank is not None) == (signal in passage.signal_scores)
        doc = fake_engine.document(passage.doc_id)
        assert doc.text[passage.start : passage.end] == passage.text
        assert passage.title == doc.title and passage.source == doc.source
    scores = [p.score for p in passages]
    assert scores == sorted(scores, reverse=True)
    assert len({p.chunk_id for p in passages}) == len(passages)


def test_lexical_mode_only_returns_matching_passages(fake_engine: Engine) -> None:
    passages = fake_engine.search("BP2MI", top_k=20, mode="lexical")
    assert passages
    assert all("BP2MI" in p.text for p in passages)
    assert {p.doc_id for p in passages} == {TOKUTEI}
    ranks = [p.ranks[LEXICAL] for p in passages]
    assert ranks == list(range(1, len(passages) + 1))


def test_lexical_mode_with_unknown_words_returns_nothing(fake_engine: Engine) -> None:
    assert fake_engine.search("zzzqx qqqwv", mode="lexical") == []


def test_numbers_match_across_languages(fake_engine: Engine) -> None:
    top = fake_engine.search("10.000 participants", top_k=3, mode="lexical")
    assert top and all("10.000" in p.text for p in top)
    assert top[0].doc_id == KEMNAKER


def test_top_k_is_respected_and_defaults_to_settings(fake_engine: Engine) -> None:
    assert len(fake_engine.search("Japan", top_k=1, mode="hybrid")) == 1
    assert len(fake_engine.search("Japan", mode="hybrid")) == fake_engine.config.retrieval.top_k


@pytest.mark.parametrize("top_k", [0, 21, -1])
def test_top_k_out_of_range_is_invalid(fake_engine: Engine, top_k: int) -> None:
    with pytest.raises(InvalidQueryError, match="top_k"):
        fake_engine.search("Japan", top_k=top_k)


def test_rrf_fused_score_is_the_weighted_sum_of_reciprocal_ranks(fake_engine: Engine) -> None:
    k = fake_engine.config.retrieval.fusion.rrf_k
    for passage in fake_engine.search("Tokutei Ginou program", top_k=10, mode="hybrid"):
        expected = sum(1.0 / (k + r) for r in passage.ranks.values() if r is not None)
        assert passage.score == pytest.approx(expected)


def test_score_fusion_and_weights(fake_engine: Engine) -> None:
    settings = make_settings(fake_engine.config.index_dir, abstain_threshold=0.0, fusion="score", fusion_weights={"fake": 0.0})
    engine = Engine.over(settings.engine, fake_engine.embedders, fake_engine.index)
    passages = engine.search("Tokutei Ginou BP2MI", top_k=5, mode="hybrid")
    assert passages
    # With the dense weight at zero the order is the BM25 order.
    bm25 = [p for p in passages if p.ranks[LEXICAL] is not None]
    assert [p.ranks[LEXICAL] for p in bm25] == sorted(p.ranks[LEXICAL] for p in bm25)
    assert passages[0].ranks[LEXICAL] == 1
    assert all(0.0 <= p.score <= 1.0 + 1e-6 for p in passages)


# --- answers -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("question", QUESTIONS)
def test_answer_json_contract(fake_engine: Engine, mode: str, question: str) -> None:
    answer = fake_engine.ask(question, mode=mode)
    assert isinstance(answer, Answer)
    payload = json.loads(json.dumps(answer.to_dict()))
    assert set(payload) >= CONTRACT_KEYS
    assert payload["question"] == question
    assert payload["mode"] == mode
    assert isinstance(payload["abstained"], bool)
    assert 0.0 <= payload["confidence"] <= 1.0
    assert "total" in payload["timings_ms"] and "answer" in payload["timings_ms"]
    _check_citations(fake_engine, payload)
    if not payload["abstained"]:
        assert payload["citations"]
        assert "[1]" in payload["answer"]
        for citation in payload["citations"]:
            assert f"[{citation['marker']}]" in payload["answer"]


def test_answer_sentences_are_the_highlighted_sentences(fake_engine: Engine) -> None:
    answer = fake_engine.ask("Berapa target peserta magang ke Jepang?", mode="lexical")
    assert not answer.abstained
    for citation in answer.citations:
        doc = fake_engine.document(citation.doc_id)
        sentence = doc.text[citation.highlight.start : citation.highlight.end]
        assert f"{display_text(sentence)} [{citation.marker}]" in answer.answer
    assert "10.000" in answer.answer


def test_answer_has_at_most_max_sentences(fake_engine: Engine) -> None:
    for question in QUESTIONS:
        answer = fake_engine.ask(question)
        assert len(answer.citations) <= fake_engine.config.answer.max_sentences


def test_abstention_lists_closest_passages_in_the_question_language(fake_engine: Engine) -> None:
    settings = make_settings(fake_engine.config.index_dir, abstain_threshold=1.0)
    engine = Engine.over(settings.engine, fake_engine.embedders, fake_engine.index)
    english = engine.ask("Who selects Tokutei Ginou workers?")
    assert english.abstained and english.answer == ABSTAIN_MESSAGES["en"] and english.lang == "en"
    assert english.citations
    assert len({c.chunk_id for c in english.citations}) == len(english.citations)
    indonesian = engine.ask("Kenapa langit berwarna biru?")
    assert indonesian.abstained and indonesian.answer == ABSTAIN_MESSAGES["id"] and indonesian.lang == "id"
    assert indonesian.to_dict()["lang"] == "id"
    _check_citations(engine, indonesian.to_dict())


def test_abstention_without_any_passage(fake_engine: Engine) -> None:
    settings = make_settings(fake_engine.config.index_dir, abstain_threshold=0.5)
    engine = Engine.over(settings.engine, fake_engine.embedders, fake_engine.index)
    answer = engine.ask("zzzqx qqqwv", mode="lexical")
    assert answer.abstained and answer.citations == [] and answer.confidence == 0.0
    assert answer.answer == ABSTAIN_MESSAGES["en"]


def test_nothing_retrieved_always_abstains(fake_engine: Engine) -> None:
    assert fake_engine.config.answer.abstain_threshold == 0.0
    answer = fake_engine.ask("zzzqx qqqwv", mode="lexical")
    assert answer.citations == []
    assert answer.abstained
    assert answer.answer == ABSTAIN_MESSAGES["en"]


@pytest.mark.parametrize(
    ("question", "lang"), [("the of and?", "en"), ("Why?", "en"), ("kenapa?", "id"), ("Apa yang itu?", "id")]
)
def test_a_question_of_stop_words_abstains_and_says_why(fake_engine: Engine, question: str, lang: str) -> None:
    """Issue 10, defect 9: "the of and?" was answered (this engine answers anything else: threshold 0)."""
    answer = fake_engine.ask(question)
    assert answer.abstained and answer.confidence == 0.0
    assert answer.answer == NO_CONTENT_MESSAGES[lang]  # type: ignore[index]
    assert not fake_engine.ask("Who selects the workers?").abstained


def test_display_text_strips_markdown_emphasis_only() -> None:
    assert display_text("**Kata Kunci:** *Program Tokutei Ginou*") == "Kata Kunci: Program Tokutei Ginou"
    assert display_text("a * b and snake_case_name") == "a * b and snake_case_name"


# --- validation ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "question", ["", "   ", "\n\t ", "\x00\x01\x02", "x" * (MAX_QUESTION_CHARS + 1), " " + "y" * 1500]
)
def test_invalid_questions_are_rejected(fake_engine: Engine, question: str) -> None:
    with pytest.raises(InvalidQueryError):
        fake_engine.ask(question)
    with pytest.raises(InvalidQueryError):
        fake_engine.search(question)


def test_question_at_the_length_limit_is_accepted(fake_engine: Engine) -> None:
    question = ("Japan " * 200)[:MAX_QUESTION_CHARS]
    assert len(question) == MAX_QUESTION_CHARS
    fake_engine.ask(question)
    assert clean_question(f"  {question}  ") == question.strip()


@pytest.mark.parametrize("mode", ["semantic", "HYBRID", "bm25", ""])
def test_unknown_mode_is_rejected(fake_engine: Engine, mode: str) -> None:
    if mode == "":
        # An empty mode falls back to the configured default.
        assert fake_engine.ask("Japan", mode=mode).mode == fake_engine.config.retrieval.mode
        return
    with pytest.raises(InvalidQueryError, match="mode"):
        fake_engine.ask("Japan", mode=mode)
    with pytest.raises(InvalidQueryError, match="mode"):
        fake_engine.search("Japan", mode=mode)


def test_non_string_question_is_rejected() -> None:
    with pytest.raises(InvalidQueryError):
        clean_question(None)  # type: ignore[arg-type]


# --- documents -----------------------------------------------------------------------------------------------
def test_engine_document_returns_the_indexed_text(fake_engine: Engine) -> None:
    doc = fake_engine.document(KEMNAKER)
    assert doc.source == "kemnaker-im-japan-magang-2024.txt"
    assert "10.000" in doc.text
    with pytest.raises(DocumentNotFoundError, match="nope"):
        fake_engine.document("nope")


def test_default_mode_comes_from_settings(tmp_path, corpus_copy, build) -> None:
    settings = make_settings(tmp_path / "idx", mode="lexical")
    embedders = [FakeEmbedder()]
    build([corpus_copy], settings, embedders)
    engine = Engine.load(settings.engine, embedders)
    calls = embedders[0].calls
    answer = engine.ask("Tokutei Ginou")
    assert answer.mode == "lexical"
    assert embedders[0].calls == calls  # lexical mode embeds nothing
    assert "embed" not in answer.timings_ms


def test_value_question_without_a_stated_value_abstains_even_at_threshold_zero(fake_engine: Engine) -> None:
    # The corpus talks about the apprenticeship at length but states no wage, fee or age limit.
    assert fake_engine.config.answer.abstain_threshold == 0.0
    for question, lang, missing in (
        ("Berapa gaji bulanan peserta magang?", "id", AnswerType.MONEY),
        ("What is the age limit for applicants?", "en", AnswerType.AGE),
    ):
        answer = fake_engine.ask(question)
        assert answer.abstained and answer.confidence == 0.0, question
        # The message says which kind of value the sources lack, in the question's language.
        assert answer.answer == abstain_message(lang, missing)
        assert answer.answer != ABSTAIN_MESSAGES[lang]
        assert answer.citations  # the closest passages are still shown
        _check_citations(fake_engine, answer.to_dict())


def test_value_question_is_answered_by_the_sentence_stating_the_value(fake_engine: Engine) -> None:
    answer = fake_engine.ask("Tanggal berapa kesepakatan Kemnaker dan IM Japan diumumkan?")
    assert not answer.abstained
    lead = answer.citations[0]
    sentence = fake_engine.document(lead.doc_id).text[lead.highlight.start : lead.highlight.end]
    assert "13 Februari 2024" in sentence
    assert answer.answer.startswith(display_text(sentence))


def test_count_question_needs_the_counted_thing_in_its_own_language(fake_engine: Engine) -> None:
    # "10.000 peserta" is a count, but of participants, not of companies.
    answer = fake_engine.ask("Berapa perusahaan Jepang yang menerima peserta magang?")
    assert answer.abstained
    assert not fake_engine.ask("Berapa peserta yang ditargetkan program magang?").abstained


@pytest.mark.parametrize("question", ["???", "....", "😀😀😀", "?!  -- …"])
def test_a_question_without_letters_or_digits_is_refused(fake_engine: Engine, question: str) -> None:
    # Issue 10, defect 9: these were answered (abstained false, confidence about 0.27).
    with pytest.raises(InvalidQueryError, match="no words"):
        fake_engine.ask(question)
    with pytest.raises(InvalidQueryError, match="no words"):
        fake_engine.search(question)


@pytest.mark.parametrize("question", ["日本の技能実習とは?", "JLPT N4?", "2024?"])
def test_a_question_in_any_script_or_of_digits_is_accepted(question: str) -> None:
    assert clean_question(question) == question


@pytest.mark.parametrize("depth", [1, 5, 100, 250, 400])
def test_top_stable_is_the_stable_sort_cut_short(depth: int) -> None:
    """Issue 11: the partial selection must pick and order exactly what the full stable sort did, ties included."""
    rng = np.random.default_rng(depth)
    for scores in (
        rng.random(300).astype(np.float32),
        rng.integers(0, 4, 300).astype(np.float32),  # many ties, also across the cut
        np.zeros(300, np.float32),
    ):
        np.testing.assert_array_equal(top_stable(scores, depth), np.argsort(-scores, kind="stable")[:depth])


@pytest.mark.parametrize(("lists", "probes"), [(8, 8), (32, 16), (1024, 256), (2048, 512), (4096, 512), (16384, 512)])
def test_ivf_probes_a_quarter_of_the_lists_within_bounds(lists: int, probes: int) -> None:
    assert ivf_probes(lists) == probes
    assert ivf_probes(4096, share=1 / 2, most=4096) == 2048  # bench/ann_recall.py measures other shares uncapped
