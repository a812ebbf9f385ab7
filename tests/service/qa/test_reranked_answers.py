"""The reranked answer path with a deterministic reader: ordering, abstention, extra sentences, citations."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from service.qa.engine import Engine
from service.qa.messages import ABSTAIN_MESSAGES
from tests.support.scorers import KeywordReader

QUESTION = "Which Indonesian institutions take part in the Tokutei Ginou cooperation?"


def _engine(fake_engine: Engine, scorer: KeywordReader, **reranker: object) -> Engine:
    """The module's fake engine, rewired with ``scorer`` as the answer reader, deciding abstention and
    reading every passage in one step unless told."""
    answer = fake_engine.config.answer
    reranker = {"abstain": "reranker", "first_passages": 0, **reranker}
    config = replace(
        fake_engine.config, answer=replace(answer, reranker=replace(answer.reranker, enabled=True, **reranker))
    )
    return Engine.over(config, fake_engine.embedders, fake_engine.index, scorer)


def _check_exact(engine: Engine, answer: object) -> None:
    for c in answer.citations:  # type: ignore[attr-defined]
        text = engine.document(c.doc_id).text
        assert text[c.start : c.end] == c.text
        assert c.start <= c.highlight.start < c.highlight.end <= c.end


def test_the_scorer_picks_the_lead_sentence_and_confidence_is_p_answerable(fake_engine: Engine) -> None:
    engine = _engine(fake_engine, KeywordReader(("BP2MI",), high=0.93))
    answer = engine.ask(QUESTION)
    assert not answer.abstained
    first = answer.citations[0]
    lead = engine.document(first.doc_id).text[first.highlight.start : first.highlight.end]
    assert "BP2MI" in lead
    assert answer.answer.startswith(lead.split()[0])
    assert answer.confidence == pytest.approx(0.93)
    assert "rerank" in answer.timings_ms and answer.timings_ms["total"] >= answer.timings_ms["rerank"]
    _check_exact(engine, answer)


def test_one_batched_call_reads_whole_passages_up_to_the_configured_candidates(fake_engine: Engine) -> None:
    scorer = KeywordReader(("BP2MI",))
    engine = _engine(fake_engine, scorer)
    _, passages = engine.ask_with_passages(QUESTION)
    assert len(scorer.calls) == 1
    question, read = scorer.calls[0]
    assert question == QUESTION
    # Every sentence of every candidate passage, in retrieval order.
    candidates = passages[: engine.config.answer.candidate_passages]
    assert len(read) == len(candidates)
    for texts, passage in zip(read, candidates, strict=True):
        rows = engine.index.sentence_rows(engine.index.chunks[passage.row])
        assert texts == [s.text for s in engine.index.sentences[rows]]
    # A cap on sentences cuts the reading short, in passage order.
    capped = KeywordReader(("BP2MI",))
    _engine(fake_engine, capped, candidates=5).ask(QUESTION)
    flat = [s for texts in capped.calls[0][1] for s in texts]
    assert flat == [s for texts in read for s in texts][:5]


def test_nothing_above_the_threshold_abstains_in_the_question_language(fake_engine: Engine) -> None:
    engine = _engine(fake_engine, KeywordReader(("no such keyword",)))
    for question, lang in [(QUESTION, "en"), ("Lembaga apa yang terlibat dalam kerja sama Tokutei Ginou?", "id")]:
        answer = engine.ask(question)
        assert answer.abstained and answer.lang == lang
        assert answer.answer == ABSTAIN_MESSAGES[lang]
        assert answer.confidence == pytest.approx(0.1)
        assert answer.citations, "the closest passages are still listed"
        _check_exact(engine, answer)


def test_extra_sentences_must_clear_the_threshold(fake_engine: Engine) -> None:
    # Only sentences naming BP2MI score high: every cited sentence must name it.
    engine = _engine(fake_engine, KeywordReader(("BP2MI",)))
    answer = engine.ask(QUESTION)
    for c in answer.citations:
        assert "BP2MI" in engine.document(c.doc_id).text[c.highlight.start : c.highlight.end]
    # A generous scorer lets up to max_sentences through, never a repeated sentence.
    generous = _engine(fake_engine, KeywordReader(("the", "dan", "and")))
    answer = generous.ask(QUESTION)
    spans = [(c.doc_id, c.highlight.start) for c in answer.citations]
    assert 1 <= len(spans) <= fake_engine.config.answer.max_sentences and len(set(spans)) == len(spans)


def test_a_configured_threshold_overrides_the_shipped_one(fake_engine: Engine) -> None:
    engine = _engine(fake_engine, KeywordReader(("BP2MI",), high=0.6), threshold=0.7)
    assert engine.ask(QUESTION).abstained
    assert not _engine(fake_engine, KeywordReader(("BP2MI",), high=0.6)).ask(QUESTION).abstained


def test_abstention_follows_p_answerable_and_the_question_language_threshold(fake_engine: Engine) -> None:
    # Sentences score high, but the reader doubts the passages answer at all: abstain, confidence 0.4.
    doubtful = _engine(fake_engine, KeywordReader(("BP2MI",), answerable=0.4))
    answer = doubtful.ask(QUESTION)
    assert answer.abstained and answer.confidence == pytest.approx(0.4)
    # The same P(answerable) answers where its language's threshold is lower.
    by_lang = KeywordReader(("BP2MI",), answerable=0.6, abstain={"en": 0.7, "id": 0.5})
    engine = _engine(fake_engine, by_lang)
    assert engine.ask(QUESTION).abstained
    indonesian = engine.ask("Lembaga apa saja yang terlibat dalam kerja sama Tokutei Ginou, misalnya BP2MI?")
    assert indonesian.lang == "id" and not indonesian.abstained
    assert indonesian.confidence == pytest.approx(0.6)


def test_reranker_off_ignores_the_scorer(fake_engine: Engine) -> None:
    scorer = KeywordReader(("BP2MI",))
    answer_config = replace(fake_engine.config.answer, reranker=replace(fake_engine.config.answer.reranker, enabled=False))
    engine = Engine.over(replace(fake_engine.config, answer=answer_config), fake_engine.embedders, fake_engine.index, scorer)
    answer = engine.ask(QUESTION)
    assert scorer.calls == [] and "rerank" not in answer.timings_ms
    assert answer.model_dump(exclude={"timings_ms"}) == fake_engine.ask(QUESTION).model_dump(exclude={"timings_ms"})


def test_with_the_support_rule_the_reranker_orders_but_the_support_decides(fake_engine: Engine) -> None:
    # The fake engine's support threshold is 0: the support path answers everything it can.
    low = KeywordReader(("no such keyword",))
    answer = _engine(fake_engine, low, abstain="support").ask(QUESTION)
    assert not answer.abstained and answer.confidence == pytest.approx(0.1)
    # "either" abstains as soon as one of the two says so.
    assert _engine(fake_engine, low, abstain="either").ask(QUESTION).abstained
    lead = _engine(fake_engine, KeywordReader(("BP2MI",)), abstain="support").ask(QUESTION).citations[0]
    assert "BP2MI" in fake_engine.document(lead.doc_id).text[lead.highlight.start : lead.highlight.end]


@pytest.mark.parametrize("question", [QUESTION, "Lembaga Indonesia mana yang terlibat dalam kerja sama Tokutei Ginou?"])
def test_the_reader_is_told_which_sentences_are_in_another_language(fake_engine: Engine, question: str) -> None:
    scorer = KeywordReader(("BP2MI",))
    engine = _engine(fake_engine, scorer)
    answer, passages = engine.ask_with_passages(question)
    (read,) = scorer.foreign
    assert read is not None
    flags = [flag for row in read for flag in row]
    spans = [engine.index.sentence_rows(engine.index.chunks[p.row]) for p in passages[: len(read)]]
    rows = [row for span in spans for row in range(span.start, span.stop)]
    assert flags == [engine.index.sentences[row].lang != answer.lang for row in rows][: len(flags)]
    # The corpus is bilingual: the English question reads Indonesian sentences too.
    assert question != QUESTION or (True in flags and False in flags)


def test_a_cascade_stops_after_the_first_passages_when_one_of_their_sentences_is_confident(
    fake_engine: Engine,
) -> None:
    everything = KeywordReader(("the", "dan", "and"))
    _engine(fake_engine, everything).ask(QUESTION)
    (_, read_all), = everything.calls
    assert len(read_all) > 2
    sure = KeywordReader(("the", "dan", "and"))
    answer = _engine(fake_engine, sure, first_passages=2, confident=0.8).ask(QUESTION)
    (_, read), = sure.calls
    assert read == read_all[:2]
    # Every citation comes from the passages read, and stays exact.
    texts = {t for passage in read for t in passage}
    for c in answer.citations:
        assert engine_text(fake_engine, c) in texts
    _check_exact(fake_engine, answer)
    # Not confident (0.9 is the fake's highest score): everything is read.
    unsure = KeywordReader(("the", "dan", "and"))
    _engine(fake_engine, unsure, first_passages=2, confident=0.95).ask(QUESTION)
    assert [p for _, passages in unsure.calls for p in passages] == read_all


def test_with_the_support_rule_a_question_the_support_path_declines_is_not_read(fake_engine: Engine) -> None:
    scorer = KeywordReader(("BP2MI",))
    engine = _engine(fake_engine, scorer, abstain="support")
    strict = replace(engine.config, answer=replace(engine.config.answer, abstain_threshold=1.01))
    engine = Engine.over(strict, engine.embedders, engine.index, scorer)
    answer = engine.ask(QUESTION)
    assert answer.abstained and scorer.calls == [] and "rerank" not in answer.timings_ms
    assert answer.citations, "the closest passages are still listed"
    _check_exact(engine, answer)


def engine_text(engine: Engine, citation: object) -> str:
    """The sentence a citation highlights."""
    c = citation
    return engine.document(c.doc_id).text[c.highlight.start : c.highlight.end]  # type: ignore[attr-defined]


def test_a_sentence_also_read_in_the_question_language_is_not_marked_foreign(
    fake_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The corpus states the institutions in both abstracts; here "the same statement" is "names BP2MI"
    # (the fake encoder's vectors do not match translations; the real encoders' duplicate test does).
    sentences = fake_engine.index.sentences
    rows = range(len(sentences))
    english = next(r for r in rows if "BP2MI" in sentences[r].text and sentences[r].lang == "en")
    indonesian = next(r for r in rows if "BP2MI" in sentences[r].text and sentences[r].lang == "id")
    other = next(r for r in rows if "BP2MI" not in sentences[r].text and sentences[r].lang == "id")
    passage = fake_engine.search(QUESTION, top_k=1)[0]
    query = fake_engine.analyser.analyse(QUESTION, "hybrid")
    assert query.lang == "en"

    def flags(first_passages: int, *order: int) -> list[list[bool]]:
        engine = _engine(fake_engine, KeywordReader(("BP2MI",)), first_passages=first_passages)
        names = {r: "BP2MI" in sentences[r].text for r in order}
        monkeypatch.setattr(
            engine.answerer, "_duplicates", lambda a, b: np.array([[names[i] and names[j] for j in b] for i in a])
        )
        groups = [(rank, passage, range(r, r + 1)) for rank, r in enumerate(order, start=1)]
        return engine.answerer.reading_foreign(query, groups)

    # Read in one step with its English twin: compared on the reader's own scores, not lifted.
    assert flags(0, indonesian, english, other) == [[False], [False], [True]]
    # Its twin comes only in the second step: the first step reads it as the only statement of its kind.
    assert flags(1, indonesian, english) == [[True], [False]]
    # A second-step sentence whose twin was read first.
    assert flags(1, english, indonesian) == [[False], [False]]
    # Without twins, the flag is the language alone.
    assert flags(0, other, english) == [[True], [False]]
