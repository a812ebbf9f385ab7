"""SQuAD-format question-answering files: SQuAD 2.0, and the TyDi QA / IDK-MRC splits in ``../shared/eval-data``.

Two record shapes are read: SQuAD's ``{"data": [{"title", "paragraphs": [...]}]}`` and the
IDK-MRC authors' flat list of paragraphs. A paragraph is ``{"context", "qas": [{"id",
"question", "is_impossible", "answers": [{"text", "answer_start"}]}]}``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class QAItem:
    """One question about one context; unanswerable ones have no answers."""

    id: str
    question: str
    context: int  # index into QASet.contexts
    answers: tuple[str, ...]
    #: ``(start, end)`` character spans of the answers in the context.
    spans: tuple[tuple[int, int], ...]

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


@dataclass(frozen=True)
class QASet:
    """The contexts of a file and the questions about them."""

    name: str
    contexts: tuple[str, ...]
    titles: tuple[str, ...]
    items: tuple[QAItem, ...]


def _paragraphs(raw: Any) -> list[tuple[str, dict[str, Any]]]:
    if isinstance(raw, dict) and "data" in raw:
        return [(str(article.get("title", "")), p) for article in raw["data"] for p in article["paragraphs"]]
    if isinstance(raw, list):
        return [("", p) for p in raw]
    raise ValueError("not a SQuAD-format file: expected {'data': [...]} or a list of paragraphs")


def load_squad(path: Path, titles: Sequence[str] | None = None) -> QASet:
    """Read ``path``; ``titles`` keeps only those SQuAD articles (all when ``None``)."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    contexts: list[str] = []
    names: list[str] = []
    items: list[QAItem] = []
    for title, paragraph in _paragraphs(raw):
        if titles is not None and title not in titles:
            continue
        context = str(paragraph["context"])
        index = len(contexts)
        contexts.append(context)
        names.append(title)
        for qa in paragraph["qas"]:
            answers = [] if qa.get("is_impossible") else qa.get("answers", [])
            spans = []
            texts = []
            for answer in answers:
                text = str(answer["text"])
                start = int(answer["answer_start"])
                # A few files' offsets are off by a character or two; find the text near them.
                if context[start : start + len(text)] != text:
                    found = context.find(text, max(0, start - 20))
                    start = found if found >= 0 else context.find(text)
                if start < 0 or not text.strip():
                    continue
                spans.append((start, start + len(text)))
                texts.append(text)
            if answers and not texts:
                continue  # an answer that is not in its context: unusable either way
            items.append(QAItem(str(qa["id"]), str(qa["question"]), index, tuple(texts), tuple(spans)))
    return QASet(path.stem, tuple(contexts), tuple(names), tuple(items))


def load_facqa(path: Path, split: str) -> QASet:
    """IndoNLU FacQA's ``{split}_preprocess.csv`` as a QASet: tokens joined by spaces, the B/I-labelled span as the answer.

    Questions about the same passage share one context. Every FacQA question is answerable.
    """
    import ast
    import csv

    contexts: dict[str, int] = {}
    items: list[QAItem] = []
    with open(path / f"{split}_preprocess.csv", encoding="utf-8") as handle:
        for n, row in enumerate(csv.DictReader(handle)):
            tokens = [str(t) for t in ast.literal_eval(row["passage"])]
            labels = [str(t) for t in ast.literal_eval(row["seq_label"])]
            text = " ".join(tokens)
            starts = []
            offset = 0
            for token in tokens:
                starts.append(offset)
                offset += len(token) + 1
            spans: list[tuple[int, int]] = []
            for i, label in enumerate(labels):
                if label == "B" or (label == "I" and (not spans or i == 0 or labels[i - 1] == "O")):
                    spans.append((starts[i], starts[i] + len(tokens[i])))
                elif label == "I":
                    spans[-1] = (spans[-1][0], starts[i] + len(tokens[i]))
            if not spans:
                continue
            context = contexts.setdefault(text, len(contexts))
            question = " ".join(str(t) for t in ast.literal_eval(row["question"]))
            answers = tuple(text[a:b] for a, b in spans)
            items.append(QAItem(f"facqa-{split}-{n}", question, context, answers, tuple(spans)))
    return QASet(f"facqa-{split}", tuple(contexts), ("",) * len(contexts), tuple(items))


def article_titles(path: Path) -> list[str]:
    """The article titles of a SQuAD file, in file order."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    return [str(article.get("title", "")) for article in raw.get("data", [])] if isinstance(raw, dict) else []


def answer_in(text: str, answers: Sequence[str]) -> bool:
    """Whether any gold answer occurs in ``text`` (case-insensitive, whitespace-normalised)."""
    haystack = " ".join(text.lower().split())
    return any(" ".join(a.lower().split()) in haystack for a in answers if a.strip())


#: SQuAD 2.0 articles held out of training for validation.
SQUAD_VALID_ARTICLES = 2
#: The sets the figures are reported on (their valid splits calibrate).
SETS = ("tydiqa-id", "idk-mrc", "squad2-en")
#: FacQA (IndoNLU, Indonesian news) adds training questions only.
TRAIN_SETS = (*SETS, "facqa")


def load_sets(data_dir: Path, split: str) -> dict[str, QASet]:
    """The sets' ``split`` ("train": :data:`TRAIN_SETS`, "valid": :data:`SETS`); SQuAD's split is by article."""
    squad_path = data_dir / "squad2-en" / "train-10-articles.json"
    titles = article_titles(squad_path)
    squad_titles = titles[:-SQUAD_VALID_ARTICLES] if split == "train" else titles[-SQUAD_VALID_ARTICLES:]
    sets = {
        "tydiqa-id": replace(load_squad(data_dir / "tydiqa-id" / f"{split}.json"), name="tydiqa-id"),
        "idk-mrc": replace(load_squad(data_dir / "idk-mrc" / f"{split}.json"), name="idk-mrc"),
        "squad2-en": replace(load_squad(squad_path, squad_titles), name="squad2-en"),
    }
    if split == "train":
        sets["facqa"] = replace(load_facqa(data_dir / "facqa", "train"), name="facqa")
    return sets
