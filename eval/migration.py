"""Passages and questions about labour migration, written by this project: the sources' register and topic.

The abstract questions (:mod:`eval.abstracts`) taught the reader to pass over a study's aim
sentence in biomedical abstracts. Tanya's sources are social-science and policy writing about
labour migration, in English and Indonesian, and its users ask across the two languages and ask
*who* takes part ("which institutions ...") more than any public set does.
``migration/passages.jsonl`` holds 120 short passages in that register, written here about
other countries' and other schemes' labour migration (Korea, Taiwan, the Gulf, Europe,
Oceania, the Americas; nothing about Japan or the bodies Tanya's corpus describes), half in
English and half in Indonesian, each with four questions, two per language (so half are asked
across languages), some not answered by their passage. See ``migration/README.md``.

:func:`load_migration` splits them by passage with the abstracts' rule (a CRC32 of the id).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from eval.abstracts import is_valid
from eval.squad import QAItem, QASet

#: The passages shipped with the repository.
PASSAGES_FILE = Path(__file__).parent / "migration" / "passages.jsonl"
#: A second batch, 60 journal abstracts in the same format (``load_migration(split, JOURNAL_ABSTRACTS_FILE)``).
#: The shipped reader was not trained on them: a third stage over both files read the public valid
#: pools worse and was not kept (``eval/README.md``, "A third stage on migration passages").
JOURNAL_ABSTRACTS_FILE = Path(__file__).parent / "migration" / "journal-abstracts.jsonl"
#: The name of the set in training records and tables.
NAME = "migration"


@dataclass(frozen=True)
class WrittenQuestion:
    """One question: its language and its answer, an exact span of the passage (``None``: unanswerable)."""

    lang: str
    question: str
    answer: str | None


@dataclass(frozen=True)
class WrittenPassage:
    """One written passage and its questions."""

    id: str
    lang: str
    title: str
    text: str
    questions: tuple[WrittenQuestion, ...]


def read_passages(path: Path = PASSAGES_FILE) -> list[WrittenPassage]:
    """The passages of ``path`` (JSON lines: ``id``, ``lang``, ``title``, ``text``, ``questions``)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        raw = json.loads(line)
        questions = tuple(
            WrittenQuestion(str(q["lang"]), str(q["question"]), None if q.get("answer") is None else str(q["answer"]))
            for q in raw["questions"]
        )
        out.append(WrittenPassage(str(raw["id"]), str(raw["lang"]), str(raw["title"]), str(raw["text"]), questions))
    return out


def load_migration(split: str, path: Path = PASSAGES_FILE) -> QASet:
    """The ``split`` ("train" or "valid") of the written passages and their questions.

    An answer's span is its only occurrence in the passage; an answer that is missing from its
    passage or occurs in it more than once is an error in the file (:class:`ValueError`), since
    the span would not say which sentence answers.
    """
    passages = [p for p in read_passages(path) if is_valid(p.id) == (split == "valid")]
    items = []
    for n, passage in enumerate(passages):
        for k, q in enumerate(passage.questions):
            spans: tuple[tuple[int, int], ...] = ()
            if q.answer is not None:
                count = passage.text.count(q.answer)
                if count != 1:
                    raise ValueError(f"{path}: the answer of {passage.id} question {k} occurs {count} times in it")
                start = passage.text.index(q.answer)
                spans = ((start, start + len(q.answer)),)
            answers = (q.answer,) if q.answer is not None else ()
            items.append(QAItem(f"{NAME}-{passage.id}-{k}", q.question, n, answers, spans))
    return QASet(NAME, tuple(p.text for p in passages), tuple(p.title for p in passages), tuple(items))
