"""The written abstract questions: the loader's split and spans, and the shipped file against its abstracts."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from eval.abstracts import QUESTIONS_FILE, is_valid, load_abstracts, read_questions
from tests.support.helpers import REPO_ROOT

DATA = REPO_ROOT.parent / "shared" / "eval-data"


def _write(tmp_path: Path, abstracts: dict[str, str], questions: list[dict[str, object]]) -> tuple[Path, Path]:
    data = tmp_path / "data"
    (data / "scifact").mkdir(parents=True)
    with gzip.open(data / "scifact" / "corpus.jsonl.gz", "wt", encoding="utf-8") as out:
        for doc_id, text in abstracts.items():
            out.write(json.dumps({"_id": doc_id, "title": f"T{doc_id}", "text": text}) + "\n")
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in questions), encoding="utf-8")
    return data, path


def test_questions_split_by_abstract_with_exact_answer_spans(tmp_path: Path) -> None:
    ids = [str(i) for i in range(40)]
    valid_id = next(i for i in ids if is_valid(i))
    train_id = next(i for i in ids if not is_valid(i))
    text = "This study aims to measure rice yields. Yields rose by 12% in Java."
    data, path = _write(
        tmp_path,
        {valid_id: text, train_id: text.replace("Java", "Bali")},
        [
            {"doc_id": train_id, "lang": "en", "question": "How much did yields rise?", "answer": "12%"},
            {"doc_id": valid_id, "lang": "id", "question": "Di mana hasil panen naik?", "answer": "Java"},
            {"doc_id": valid_id, "lang": "en", "question": "What did the rice cost?", "answer": None},
        ],
    )
    train, valid = load_abstracts(data, "train", path), load_abstracts(data, "valid", path)
    assert train.contexts == (text.replace("Java", "Bali"),) and valid.contexts == (text,)
    (item,) = train.items
    a, b = item.spans[0]
    assert train.contexts[item.context][a:b] == "12%" and item.answerable
    answered, unanswered = valid.items
    assert valid.contexts[answered.context][slice(*answered.spans[0])] == "Java"
    assert not unanswered.answerable and unanswered.spans == ()
    # Ids follow the file's order whatever the split.
    assert [i.id for i in valid.items] == [f"abstracts-{valid_id}-1", f"abstracts-{valid_id}-2"]


def test_an_answer_not_in_its_abstract_is_an_error(tmp_path: Path) -> None:
    data, path = _write(tmp_path, {"7": "Nothing here."}, [{"doc_id": "7", "lang": "en", "question": "Q?", "answer": "x1"}])
    split = "valid" if is_valid("7") else "train"
    with pytest.raises(ValueError, match="not in abstract 7"):
        load_abstracts(data, split, path)


@pytest.mark.skipif(not (DATA / "scifact").is_dir(), reason="../shared/eval-data is not here")
def test_the_shipped_questions_load_and_cover_both_languages_and_unanswerable_ones() -> None:
    questions = read_questions(QUESTIONS_FILE)
    assert len(questions) >= 200
    assert {q.lang for q in questions} == {"en", "id"}
    train, valid = load_abstracts(DATA, "train"), load_abstracts(DATA, "valid")
    assert len(train.items) + len(valid.items) == len(questions)
    assert 0.1 < len(valid.items) / len(questions) < 0.3
    assert not set(train.contexts) & set(valid.contexts), "no abstract is in both splits"
    assert any(not i.answerable for i in valid.items) and any(i.answerable for i in valid.items)
