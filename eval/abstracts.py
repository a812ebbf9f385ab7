"""Questions about scientific abstracts, written by this project: the register the product's sources are in.

Every public QA set here is Wikipedia or news. Tanya's sources are research abstracts and
reports, where the sentence closest to a question is often the study's own aim ("This study
aims to understand the implementation of ...") and the answer is a later finding. Nothing in
the public sets teaches a reader to pass over such a restatement, and the gold set's misses
are mostly that.

``abstracts/questions.jsonl`` holds questions written by this project (an AI agent, not a
machine translation or generation system run here; see ``abstracts/README.md``) about 280
BEIR SciFact abstracts sampled at random among those with an aim or objective sentence, half
in English and half in Indonesian (so half are asked across languages), a fifth of them not
answered by their abstract. Each answerable question stores an exact answer span. Only the
questions are stored; the abstracts are read from ``../shared/eval-data/scifact``.

:func:`load_abstracts` splits them by abstract, deterministically: about a fifth of the
abstracts (and all their questions) are *valid* (calibration and model choice), the rest train.
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

from eval.squad import QAItem, QASet

#: The questions shipped with the repository.
QUESTIONS_FILE = Path(__file__).parent / "abstracts" / "questions.jsonl"
#: The name of the set in training records and tables.
NAME = "abstracts"
#: One abstract in ``VALID_EVERY`` (by a CRC32 of its id) is valid.
VALID_EVERY = 5


@dataclass(frozen=True)
class AbstractQuestion:
    """One written question: the abstract's id, the question's language, and its answer span (``None``: unanswerable)."""

    doc_id: str
    lang: str
    question: str
    answer: str | None


def read_questions(path: Path = QUESTIONS_FILE) -> list[AbstractQuestion]:
    """The questions of ``path`` (JSON lines: ``doc_id``, ``lang``, ``question``, ``answer``)."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            raw = json.loads(line)
            answer = raw.get("answer")
            answer = None if answer is None else str(answer)
            out.append(AbstractQuestion(str(raw["doc_id"]), str(raw["lang"]), str(raw["question"]), answer))
    return out


def is_valid(doc_id: str) -> bool:
    """Whether the abstract ``doc_id`` belongs to the valid split."""
    return zlib.crc32(doc_id.encode("utf-8")) % VALID_EVERY == 0


def load_abstracts(data_dir: Path, split: str, path: Path = QUESTIONS_FILE) -> QASet:
    """The ``split`` ("train" or "valid") of the written questions, over their SciFact abstracts in ``data_dir``.

    An answer span is the first occurrence of the stored answer in its abstract; a question
    whose answer is not in it is an error in the file (:class:`ValueError`).
    """
    # Numbered in file order, so an item's id does not depend on the split.
    questions = [(n, q) for n, q in enumerate(read_questions(path)) if is_valid(q.doc_id) == (split == "valid")]
    wanted = {q.doc_id for _, q in questions}
    texts: dict[str, tuple[str, str]] = {}
    with gzip.open(data_dir / "scifact" / "corpus.jsonl.gz", "rt", encoding="utf-8") as lines:
        for line in lines:
            raw = json.loads(line)
            if raw["_id"] in wanted:
                texts[raw["_id"]] = (str(raw.get("title", "")), str(raw["text"]))
    order = sorted(wanted, key=lambda d: (len(d), d))
    index = {doc_id: i for i, doc_id in enumerate(order)}
    items = []
    for n, q in questions:
        if q.doc_id not in texts:
            raise ValueError(f"{path}: abstract {q.doc_id} is not in {data_dir / 'scifact'}")
        text = texts[q.doc_id][1]
        spans: tuple[tuple[int, int], ...] = ()
        if q.answer is not None:
            start = text.find(q.answer)
            if start < 0:
                raise ValueError(f"{path}: the answer of question {n} is not in abstract {q.doc_id}")
            spans = ((start, start + len(q.answer)),)
        answers = (q.answer,) if q.answer is not None else ()
        items.append(QAItem(f"{NAME}-{q.doc_id}-{n}", q.question, index[q.doc_id], answers, spans))
    return QASet(
        NAME, tuple(texts[d][1] for d in order), tuple(texts[d][0] for d in order), tuple(items)
    )
