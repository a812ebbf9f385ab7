"""The written migration passages: the loader's split and spans, and the shipped file's shape."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from eval.abstracts import is_valid
from eval.migration import JOURNAL_ABSTRACTS_FILE, PASSAGES_FILE, load_migration, read_passages


def _write(tmp_path: Path, passages: list[dict[str, object]]) -> Path:
    path = tmp_path / "passages.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in passages), encoding="utf-8")
    return path


def _passage(pid: str, text: str, questions: list[tuple[str, str, str | None]]) -> dict[str, object]:
    return {
        "id": pid, "lang": "en", "title": f"T{pid}", "text": text,
        "questions": [{"lang": lang, "question": q, "answer": a} for lang, q, a in questions],
    }


def test_passages_split_by_id_with_exact_answer_spans(tmp_path: Path) -> None:
    ids = [f"P{i:02d}" for i in range(40)]
    valid_id = next(i for i in ids if is_valid(i))
    train_id = next(i for i in ids if not is_valid(i))
    text = "This study examines seasonal work. The scheme is run by the labour ministry and two unions."
    path = _write(
        tmp_path,
        [
            _passage(train_id, text, [("en", "Who runs the seasonal work scheme?", "the labour ministry and two unions")]),
            _passage(valid_id, text.replace("two", "three"), [
                ("id", "Berapa serikat pekerja yang terlibat?", "three unions"),
                ("en", "How much are workers paid?", None),
            ]),
        ],
    )
    train, valid = load_migration("train", path), load_migration("valid", path)
    assert train.contexts == (text,) and valid.contexts == (text.replace("two", "three"),)
    (item,) = train.items
    assert train.contexts[item.context][slice(*item.spans[0])] == "the labour ministry and two unions"
    answered, unanswered = valid.items
    assert valid.contexts[answered.context][slice(*answered.spans[0])] == "three unions"
    assert not unanswered.answerable and unanswered.spans == ()
    assert [i.id for i in valid.items] == [f"migration-{valid_id}-0", f"migration-{valid_id}-1"]


@pytest.mark.parametrize(("answer", "count"), [("absent", 0), ("work", 2)])
def test_an_answer_missing_or_repeated_in_its_passage_is_an_error(tmp_path: Path, answer: str, count: int) -> None:
    pid = "X1"
    path = _write(tmp_path, [_passage(pid, "Seasonal work. Hard work.", [("en", "Q?", answer)])])
    with pytest.raises(ValueError, match=f"{pid} question 0 occurs {count} times"):
        load_migration("valid" if is_valid(pid) else "train", path)


def test_the_shipped_passages_cover_both_languages_both_directions_and_unanswerable_ones() -> None:
    passages = read_passages(PASSAGES_FILE)
    assert len(passages) >= 100 and len({p.id for p in passages}) == len(passages)
    assert {p.lang for p in passages} == {"en", "id"}
    asked = {(p.lang, q.lang) for p in passages for q in p.questions}
    assert asked == {("en", "en"), ("en", "id"), ("id", "en"), ("id", "id")}, "both languages, both directions"
    train, valid = load_migration("train"), load_migration("valid")
    assert len(train.items) + len(valid.items) == sum(len(p.questions) for p in passages)
    assert 0.1 < len(valid.contexts) / len(passages) < 0.3
    assert not set(train.contexts) & set(valid.contexts), "no passage is in both splits"
    assert any(not i.answerable for i in valid.items) and any(i.answerable for i in valid.items)


@pytest.mark.parametrize("path", [PASSAGES_FILE, JOURNAL_ABSTRACTS_FILE], ids=["passages", "journal-abstracts"])
def test_the_shipped_passages_stay_off_the_products_own_subject(path: Path) -> None:
    """They teach the register, not the corpus: nothing about Japan or the bodies Tanya's sources describe."""
    forbidden = re.compile(r"japan|jepang|tokutei|magang|bp2mi|bnp2tki|kemnaker|\blpk\b|p3mi|jitco", re.I)
    for p in read_passages(path):
        words = " ".join([p.title, p.text, *(q.question for q in p.questions)])
        assert not forbidden.search(words), p.id


def test_the_journal_abstracts_load_with_exact_spans_and_end_on_their_keywords() -> None:
    """The second batch: abstracts ending on a keyword line, ids apart from the first batch's, every span exact."""
    passages = read_passages(JOURNAL_ABSTRACTS_FILE)
    assert len(passages) == 60 and not {p.id for p in passages} & {p.id for p in read_passages(PASSAGES_FILE)}
    assert all(re.search(r"(Keywords|Kata kunci): [^.]+$", p.text) for p in passages)
    for split in ("train", "valid"):
        qaset = load_migration(split, JOURNAL_ABSTRACTS_FILE)  # raises on a missing or repeated answer
        assert any(item.answerable for item in qaset.items) and qaset.items
