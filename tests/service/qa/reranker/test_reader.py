"""The answer reader: its inputs, its shipped files, and what the real model reads (slow tests load it)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from indexer.errors import EmbedderUnavailableError
from service.qa.answering import Cascade
from service.qa.reranker.reader import (
    ADAPTER_FILE,
    MODEL_DIR,
    SPEC_FILE,
    AnswerReader,
    Calibration,
    ReaderSpec,
    Reading,
    encode_passages,
)
from service.qa.reranker.tokenizer import E5Tokenizer

QUESTION = "Which Indonesian institutions take part in the Tokutei Ginou cooperation?"
RESTATEMENT = (
    "The results of this study aim to understand the implementation of the Tokutei Ginou program cooperation "
    "between Japan and Indonesia in realizing economic revitalization."
)
ANSWER = (
    "The involvement of the Japanese side from moJ, bureau of migration, AO, and RSO as well as active involvement "
    "from the Indonesian side through the Ministry of Manpower, BP2MI, and LPK."
)


@pytest.fixture(scope="module")
def tokenizer() -> E5Tokenizer:
    return E5Tokenizer.load()


def test_every_sentence_is_read_in_its_passage_with_exact_token_spans(tokenizer: E5Tokenizer) -> None:
    spec = ReaderSpec()
    passages = [["First sentence here.", "Kalimat kedua di sini."], ["Another passage."]]
    windows = encode_passages(tokenizer, spec, "Siapa?", passages)
    assert len(windows) == 2
    q = tokenizer.tokenize_content(spec.query_prefix + "Siapa?")
    for window, sentences in zip(windows, passages, strict=True):
        assert window.ids[0] == tokenizer.bos and window.ids[-1] == tokenizer.eos
        assert list(window.ids[1 : 1 + len(q)]) == q
        for (start, end), text in zip(window.spans, sentences, strict=True):
            assert list(window.ids[start:end]) == tokenizer.tokenize_content(text)
    assert [w.sentences for w in windows] == [((0, 0), (0, 1)), ((1, 0),)]


def test_a_long_passage_is_read_in_windows_of_whole_sentences(tokenizer: E5Tokenizer) -> None:
    spec = ReaderSpec(max_length=48, max_question_tokens=8)
    sentences = [f"Sentence number {i} says something about the programme in Japan." for i in range(8)]
    windows = encode_passages(tokenizer, spec, "What does the very long question ask about here and there?", [sentences])
    assert len(windows) > 1
    assert all(len(w.ids) <= spec.max_length for w in windows)
    # Each sentence is read exactly once, in order, and never split across windows.
    assert [s for w in windows for s in w.sentences] == [(0, i) for i in range(8)]
    # The question was cut to max_question_tokens and opens every window.
    assert all(w.ids[: 1 + 8] == windows[0].ids[: 1 + 8] for w in windows)
    # A sentence longer than a window is truncated, not dropped.
    (single,) = encode_passages(tokenizer, spec, "Q?", [["word " * 200]])
    assert len(single.ids) == spec.max_length and len(single.spans) == 1


def test_the_shipped_files_are_small_and_described() -> None:
    spec = ReaderSpec.from_file(MODEL_DIR / SPEC_FILE)
    assert (MODEL_DIR / ADAPTER_FILE).stat().st_size < 8_000_000
    assert (MODEL_DIR / "MODEL_CARD.md").is_file()
    assert 0.0 < spec.calibration.threshold < 1.0 and spec.calibration.margin > 0
    assert spec.training["valid_pool_metrics"], "the spec records what the model measured"


def test_another_format_version_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    raw = json.loads((MODEL_DIR / SPEC_FILE).read_text(encoding="utf-8"))
    raw["format_version"] = 1
    (tmp_path / SPEC_FILE).write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(EmbedderUnavailableError, match="format version 1"):
        AnswerReader.load(tmp_path)


@pytest.fixture(scope="module")
def reader() -> AnswerReader:
    # fp32: the equalities below are exact to 1e-3 only without bf16 rounding (which `auto` uses
    # where the CPU has it); the bf16 reader's accuracy is measured in eval/README.md.
    return AnswerReader.load(num_threads=2, precision="fp32")


@pytest.mark.slow
def test_merged_weights_score_like_the_unmerged_adapter(reader: AnswerReader) -> None:
    import torch
    from peft import get_peft_model, set_peft_model_state_dict
    from safetensors.torch import load_file

    from service.qa.reranker.base_model import load_base_model
    from service.qa.reranker.reader import HEAD_PREFIX, forward_windows, lora_config

    tensors = load_file(str(MODEL_DIR / ADAPTER_FILE))
    model = get_peft_model(load_base_model(), lora_config(reader.spec))
    set_peft_model_state_dict(model, {k: v for k, v in tensors.items() if not k.startswith(HEAD_PREFIX)})
    model.eval()
    passages = [[RESTATEMENT, ANSWER], ["Pendaftaran dibuka pada bulan Maret."]]
    with torch.inference_mode():
        expected = forward_windows(model, reader.head, reader.tokenizer, reader.windows(QUESTION, passages)).numpy()
    got = reader.logits(QUESTION, passages)
    np.testing.assert_allclose(np.concatenate(got.logits), expected, atol=1e-3)


# Written for this test (not from any training set): a restatement of the question against the
# sentence that answers it, each pair read as one passage, in Indonesian and English.
RESTATED = [
    ("Berapa lama pelatihan bahasa Jepang sebelum berangkat?",
     "Program pelatihan bahasa Jepang merupakan bagian penting dari persiapan keberangkatan peserta.",
     "Pelatihan bahasa Jepang sebelum berangkat berlangsung selama empat bulan di LPK."),
    ("When was the apprenticeship agreement signed?",
     "The apprenticeship agreement is an important part of the cooperation between the two countries.",
     "The agreement was signed in Tokyo on 12 March 2024 by both ministers."),
    ("Siapa yang menandatangani kesepakatan itu?",
     "Kesepakatan itu merupakan bagian penting dari kerja sama kedua negara.",
     "Kesepakatan itu ditandatangani oleh Menteri Ketenagakerjaan Ida Fauziyah dan Presiden IM Japan."),
    # The issue's own example (from the corpus): stage 2 preferred the restatement (P 0.17 against
    # 0.08); the third stage (written migration passages) put the answer first, P 0.29 against 0.19
    # in fp32; the fourth (cross-lingual train questions), shipped on the valid sets' figures, ties
    # them (0.236 against 0.235): a known regression, kept visible here. Asked in Indonesian, the
    # fourth stage prefers the answer (0.29 against 0.09) and, read in the whole passage pool, leads
    # with it; in English the answer is still not first there (the quality test).
    pytest.param(QUESTION, RESTATEMENT, ANSWER, marks=pytest.mark.xfail(strict=True, reason="stage 4 ties the pair")),
    ("Lembaga Indonesia apa saja yang terlibat dalam kerja sama Tokutei Ginou?", RESTATEMENT, ANSWER),
]


@pytest.mark.slow
@pytest.mark.parametrize(("question", "restatement", "answer"), RESTATED)
def test_the_answering_sentence_beats_the_restatement(
    reader: AnswerReader, question: str, restatement: str, answer: str
) -> None:
    (probs,) = reader.read(question, [[restatement, answer]]).sentences
    assert probs[1] > probs[0] + 0.1, probs
    assert np.all((probs >= 0) & (probs <= 1))


@pytest.mark.slow
def test_scores_do_not_depend_on_which_passages_are_read_together(reader: AnswerReader) -> None:
    passages = [[RESTATEMENT, ANSWER], ["Short one."], ["Pendaftaran dibuka pada bulan Maret setiap tahun.", "Itu saja."]]
    together = reader.logits(QUESTION, passages)
    for i, passage in enumerate(passages):
        alone = reader.logits(QUESTION, [passage])
        np.testing.assert_allclose(together.logits[i], alone.logits[0], atol=1e-3)
    empty = reader.logits(QUESTION, [])
    assert empty.logits == () and reader.read(QUESTION, [[]]).sentences[0].shape == (0,)


class _StubReader(AnswerReader):
    """The real :meth:`AnswerReader.read` over fixed logits (one per sentence text), recording each pass."""

    def __init__(self, logits: dict[str, float], spec: ReaderSpec) -> None:
        super().__init__(None, None, None, spec, "fp32")  # type: ignore[arg-type]
        self.table = logits
        self.passes: list[list[list[str]]] = []

    def logits(self, question: str, passages: Sequence[Sequence[str]]) -> Reading:
        self.passes.append([list(p) for p in passages])
        return Reading(tuple(np.array([self.table[s] for s in p], dtype=np.float32) for p in passages), 0.0)


def test_a_cascade_reads_the_rest_only_when_the_first_passages_are_not_confident() -> None:
    spec = ReaderSpec(calibration=Calibration(margin=1.0, rank=0.0, bias=0.0))
    passages = [["a1", "a2"], ["b1"], ["c1", "c2"], ["d1"]]
    sure = {"a1": -1.0, "a2": 2.0, "b1": 0.0, "c1": 3.0, "c2": 0.0, "d1": 0.0}  # P(a2) = 0.88
    whole = _StubReader(sure, spec).read("q", passages)
    reader = _StubReader(sure, spec)
    early = reader.read("q", passages, cascade=Cascade(first=2, confident=0.8))
    # Stopped after two passages, read in one pass; their scores are the one-step reading's.
    assert reader.passes == [passages[:2]] and len(early.sentences) == 2
    for got, want in zip(early.sentences, whole.sentences, strict=False):
        np.testing.assert_allclose(got, want)
    # Not confident: the other passages are read in a second pass and the scores are whole.
    reader = _StubReader(sure, spec)
    late = reader.read("q", passages, cascade=Cascade(first=2, confident=0.95))
    assert reader.passes == [passages[:2], passages[2:]]
    assert len(late.sentences) == 4 and late.answerable == pytest.approx(whole.answerable)
    for got, want in zip(late.sentences, whole.sentences, strict=True):
        np.testing.assert_allclose(got, want)
    # Fewer passages than the first step: one pass.
    reader = _StubReader(sure, spec)
    reader.read("q", passages[:1], cascade=Cascade(first=2, confident=0.95))
    assert reader.passes == [passages[:1]]
