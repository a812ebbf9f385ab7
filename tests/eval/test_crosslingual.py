"""The cross-lingual valid questions: the shipped translations, and the bilingual set built from them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.crosslingual import (
    QUESTIONS_FILE,
    TRAIN_QUESTIONS_FILE,
    Translation,
    bilingual_set,
    is_translated,
    load_bilingual,
    read_translations,
)
from eval.squad import QAItem, QASet, load_sets
from tests.support.helpers import REPO_ROOT

DATA = REPO_ROOT.parent / "shared" / "eval-data"


def _set(name: str, contexts: tuple[str, ...], items: tuple[QAItem, ...]) -> QASet:
    return QASet(name, contexts, ("",) * len(contexts), items)


def test_the_bilingual_set_shares_contexts_and_pairs_each_question_with_its_translation() -> None:
    indonesian = _set(
        "tydiqa-id",
        ("Jakarta adalah ibu kota Indonesia.", "Padi ditanam di Jawa."),
        (QAItem("a", "Apa ibu kota Indonesia?", 0, ("Jakarta",), ((0, 7),)), QAItem("b", "Di mana padi ditanam?", 1, ("Jawa",), ((16, 20),))),
    )
    # IDK-MRC is built on TyDi QA's passages: an identical context is indexed once.
    idk = _set("idk-mrc", ("Rice is grown in Java.", "Padi ditanam di Jawa."), (QAItem("c", "Kapan padi dipanen?", 1, (), ()),))
    merged = bilingual_set(
        {"tydiqa-id": indonesian, "idk-mrc": idk},
        [Translation("tydiqa-id", "b", "en", "Where is rice grown?"), Translation("idk-mrc", "c", "en", "When is rice harvested?")],
    )
    assert merged.contexts == ("Jakarta adalah ibu kota Indonesia.", "Padi ditanam di Jawa.", "Rice is grown in Java.")
    assert [(i.id, i.question, i.context, i.answers) for i in merged.items] == [
        ("tydiqa-id:b", "Di mana padi ditanam?", 1, ("Jawa",)),
        ("tydiqa-id:b:x", "Where is rice grown?", 1, ("Jawa",)),
        ("idk-mrc:c", "Kapan padi dipanen?", 1, ()),
        ("idk-mrc:c:x", "When is rice harvested?", 1, ()),
    ]
    assert [is_translated(i) for i in merged.items] == [False, True, False, True]
    # The answer spans still index the (moved) context.
    item = merged.items[1]
    assert merged.contexts[item.context][item.spans[0][0] : item.spans[0][1]] == "Jawa"
    with pytest.raises(KeyError, match="tydiqa-id has no question zz"):
        bilingual_set({"tydiqa-id": indonesian}, [Translation("tydiqa-id", "zz", "en", "?")])


def test_the_shipped_translations_are_english_valid_questions_and_never_squad() -> None:
    translations = read_translations()
    assert len(translations) == 240 == len({(t.set_name, t.id) for t in translations})
    assert {t.set_name for t in translations} == {"tydiqa-id", "idk-mrc"}  # SQuAD dev may not be translated
    assert {t.lang for t in translations} == {"en"}
    assert all(t.question.strip().endswith("?") for t in translations)
    for line in QUESTIONS_FILE.read_text(encoding="utf-8").splitlines():
        assert set(json.loads(line)) == {"set", "id", "lang", "question"}


@pytest.mark.skipif(not (DATA / "tydiqa-id" / "valid.json").is_file(), reason="../shared/eval-data is not here")
def test_every_translation_names_a_valid_question_of_its_set(tmp_path: Path) -> None:
    merged = load_bilingual(DATA)
    valid = load_sets(DATA, "valid")
    assert len(merged.items) == 480
    answerable = {t.set_name: 0 for t in read_translations()}
    for item in merged.items[1::2]:
        set_name = item.id.split(":")[0]
        answerable[set_name] += item.answerable
    assert answerable == {"tydiqa-id": 200, "idk-mrc": 0}
    assert len(merged.contexts) == len(set().union(*(s.contexts for s in valid.values())))


def test_the_train_translations_are_english_and_disjoint_from_the_valid_ones() -> None:
    translations = read_translations(TRAIN_QUESTIONS_FILE)
    assert len(translations) == 600 == len({(t.set_name, t.id) for t in translations})
    assert {t.set_name for t in translations} == {"tydiqa-id", "idk-mrc"} and {t.lang for t in translations} == {"en"}
    assert all(t.question.strip().endswith("?") for t in translations)
    assert not {t.id for t in translations} & {t.id for t in read_translations()}, "no valid question is a train one"


@pytest.mark.skipif(not (DATA / "tydiqa-id" / "train.json").is_file(), reason="../shared/eval-data is not here")
def test_every_train_translation_names_a_train_question_of_its_set() -> None:
    train = load_sets(DATA, "train")
    ids = {name: {item.id for item in qaset.items} for name, qaset in train.items()}
    missing = [(t.set_name, t.id) for t in read_translations(TRAIN_QUESTIONS_FILE) if t.id not in ids[t.set_name]]
    assert not missing
