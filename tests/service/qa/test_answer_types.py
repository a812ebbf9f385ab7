"""Answer types: which value a question asks for, and whether a sentence states one.

The questions here are written for the tests (none is from eval/gold.jsonl).
"""

from __future__ import annotations

import pytest

from indexer.lexical import Analyzer
from service.qa.answer_types import STRICT_TYPES, AnswerType, expected_type, measured_words, states_value


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Berapa upah minimum buruh pabrik di Osaka?", AnswerType.MONEY),
        ("What's the average salary of a caregiver?", AnswerType.MONEY),
        ("How much does the training cost at an LPK?", AnswerType.MONEY),
        ("Tarif asrama per bulan berapa?", AnswerType.MONEY),
        ("What is the cheapest way to get there?", AnswerType.MONEY),
        ("How old do you have to be for the programme?", AnswerType.AGE),
        ("Batas usia pendaftar magang berapa tahun?", AnswerType.AGE),
        ("Which JLPT level do caregivers need?", AnswerType.LEVEL),
        ("Harus lulus N berapa?", AnswerType.LEVEL),
        ("When did the ministry sign the agreement?", AnswerType.DATE),
        ("Tahun berapa program itu dimulai?", AnswerType.DATE),
        ("Berapa tahun kontrak kerja di pabrik?", AnswerType.DURATION),
        ("How long is the training before departure?", AnswerType.DURATION),
        ("How many prefectures take part?", AnswerType.COUNT),
        ("Ada berapa lembaga pelatihan di Bandung?", AnswerType.COUNT),
        ("What are the requirements for a caregiver visa?", AnswerType.REQUIREMENTS),
        ("Syarat daftar magang apa saja?", AnswerType.REQUIREMENTS),
        ("Which documents are needed at the embassy?", AnswerType.REQUIREMENTS),
        ("Who signs the cooperation agreement?", AnswerType.ACTORS),
        ("Why does Japan need foreign workers?", None),
        ("What does the report say about wages?", None),  # a money word alone asks for no amount
        ("Selain analisis dokumen, metode apa lagi?", None),  # a document word alone asks for no documents
    ],
)
def test_expected_type(question: str, kind: AnswerType | None) -> None:
    assert expected_type(question) is kind


def test_actors_is_a_preference_not_a_gate() -> None:
    assert AnswerType.ACTORS not in STRICT_TYPES
    assert set(AnswerType) - {AnswerType.ACTORS} == STRICT_TYPES


@pytest.mark.parametrize(
    ("kind", "sentence", "states"),
    [
        (AnswerType.MONEY, "Upah minimum di Tokyo adalah 1.163 yen per jam.", True),
        (AnswerType.MONEY, "Biaya pelatihan Rp 5.000.000 dibayar di muka.", True),
        (AnswerType.MONEY, "The study discusses the problem of meeting wages.", False),
        (AnswerType.MONEY, "The target is 10,000 participants.", False),
        (AnswerType.AGE, "Pendaftar harus berusia 18 sampai 30 tahun.", True),
        (AnswerType.AGE, "Applicants must be at least 18 years old.", True),
        (AnswerType.AGE, "The programme has run for more than 30 years.", False),
        (AnswerType.LEVEL, "Caregivers need JLPT N4 or the JFT-Basic test.", True),
        (AnswerType.LEVEL, "Peserta belajar bahasa Jepang selama pelatihan.", False),
        (AnswerType.DATE, "Perjanjian ditandatangani pada 13 Februari 2024.", True),
        (AnswerType.DATE, "The ministry spoke on Thursday.", True),
        (AnswerType.DATE, "The program may serve as a stepping stone.", False),
        (AnswerType.DURATION, "Program ini telah berjalan lebih dari 30 tahun.", True),
        (AnswerType.DURATION, "Training lasts six months.", True),
        (AnswerType.DURATION, "Target 10 Ribu Peserta.", False),
        (AnswerType.COUNT, "Target 10 Ribu Peserta.", True),
        (AnswerType.COUNT, "There are four stages of analysis.", True),
        (AnswerType.COUNT, "Jakarta, 13 Februari 2024 - kedua pihak sepakat.", False),  # a date is not a count
        (AnswerType.COUNT, "Program ini telah berjalan 30 tahun.", False),  # nor is a duration
        (AnswerType.REQUIREMENTS, "Pendaftar wajib memiliki paspor dan ijazah SMA.", True),
        (AnswerType.REQUIREMENTS, "Selection will be tightened to send only the best candidates.", False),
        (AnswerType.ACTORS, "The involvement of MoJ, AO and RSO on the Japanese side.", True),
        (AnswerType.ACTORS, "the program is beneficial for firms", False),
    ],
)
def test_states_value(kind: AnswerType, sentence: str, states: bool) -> None:
    assert states_value(kind, sentence) is states


@pytest.mark.parametrize(
    ("question", "words"),
    [
        ("Berapa lama kontrak kerja di pabrik itu?", ["kontrak"]),  # the head only, in Indonesian
        ("Berapa tahun visa pekerja berlaku?", ["visa"]),
        ("How many prefectures take part?", ["prefectures", "take", "part"]),
        ("How many of the trainees passed?", []),
        ("Pelatihannya jalan berapa lama sih?", []),
        ("Why does Japan need foreign workers?", []),
    ],
)
def test_measured_words(question: str, words: list[str]) -> None:
    assert measured_words(question, Analyzer().stopwords) == words
