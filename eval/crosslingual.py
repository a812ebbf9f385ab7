"""Cross-lingual valid questions: the valid splits asked in the *other* language, over one bilingual corpus.

Tanya's users ask in English about Indonesian sources and in Indonesian about English ones
(more than a third of the gold set's answerable questions). Every public QA set here is
monolingual, so nothing measured how the reader ranks a sentence in another language than the
question against same-language sentences from other documents, the gold set's commonest miss.

``crosslingual/valid-questions.jsonl`` holds 240 valid questions translated into English by
this project (not by a machine translation system; see ``crosslingual/README.md``): 200
answerable TyDi QA-id valid questions and 40 unanswerable IDK-MRC valid ones, sampled at
random. Only the questions are stored; passages and answers are read from
``../shared/eval-data``. (SQuAD 2.0 dev may not be translated, so the other direction is not
covered.)

:func:`bilingual_set` makes one :class:`QASet` of the valid sets' contexts (an index in
both languages: SQuAD's valid articles are its English part, so a question meets distractors in its own language) with every sampled
question twice: as written and translated. The pairs measure the cost of asking across
languages on the same passages.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from eval.squad import QAItem, QASet, load_sets

#: The translated questions shipped with the repository.
QUESTIONS_FILE = Path(__file__).parent / "crosslingual" / "valid-questions.jsonl"
#: 600 *train* questions translated the same way (300 TyDi QA-id, 300 IDK-MRC, seed 23), for a
#: training stage that teaches English questions over Indonesian passages (the reader's stage 4:
#: the ``crosslingual`` training set).
TRAIN_QUESTIONS_FILE = Path(__file__).parent / "crosslingual" / "train-questions.jsonl"
#: Suffix of a translated item's id (the original keeps the set's id).
TRANSLATED = ":x"


@dataclass(frozen=True)
class Translation:
    """One valid question in the other language."""

    set_name: str
    id: str
    lang: str
    question: str


def read_translations(path: Path = QUESTIONS_FILE) -> list[Translation]:
    """The translated questions of ``path`` (JSON lines: ``set``, ``id``, ``lang``, ``question``)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            raw = json.loads(line)
            out.append(Translation(str(raw["set"]), str(raw["id"]), str(raw["lang"]), str(raw["question"])))
    return out


def is_translated(item: QAItem) -> bool:
    """Whether ``item`` is the translated twin made by :func:`bilingual_set`."""
    return item.id.endswith(TRANSLATED)


def bilingual_set(sets: Mapping[str, QASet], translations: list[Translation], name: str = "crosslingual") -> QASet:
    """Every context of ``sets`` (identical texts once) and, per translation, the original item and its twin.

    Raises ``KeyError`` naming a translation whose set or question id is not in ``sets``.
    """
    contexts: list[str] = []
    titles: list[str] = []
    where: dict[str, int] = {}
    moved: dict[str, list[int]] = {}
    for set_name, qaset in sets.items():
        mapping = []
        for context, title in zip(qaset.contexts, qaset.titles, strict=True):
            if context not in where:
                where[context] = len(contexts)
                contexts.append(context)
                titles.append(title)
            mapping.append(where[context])
        moved[set_name] = mapping
    by_id = {(name, item.id): item for name, qaset in sets.items() for item in qaset.items}
    items: list[QAItem] = []
    for t in translations:
        found = by_id.get((t.set_name, t.id))
        if found is None:
            raise KeyError(f"{t.set_name} has no question {t.id}")
        at = moved[t.set_name][found.context]
        items.append(QAItem(f"{t.set_name}:{found.id}", found.question, at, found.answers, found.spans))
        items.append(QAItem(f"{t.set_name}:{found.id}{TRANSLATED}", t.question, at, found.answers, found.spans))
    return QASet(name, tuple(contexts), tuple(titles), tuple(items))


def load_bilingual(data_dir: Path, questions: Path = QUESTIONS_FILE) -> QASet:
    """:func:`bilingual_set` of the valid splits in ``data_dir`` (``../shared/eval-data``) and ``questions``."""
    return bilingual_set(load_sets(data_dir, "valid"), read_translations(questions))


def translated_only(qaset: QASet) -> QASet:
    """``qaset`` with only its translated items (what calibration reads: the originals are in their own sets)."""
    return QASet(qaset.name, qaset.contexts, qaset.titles, tuple(i for i in qaset.items if is_translated(i)))
