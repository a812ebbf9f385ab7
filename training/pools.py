"""Reading pools shaped like the ones the answerer reads at query time.

For each question, a pool is its own passage followed by the ``distractors`` passages of the
same file that BM25 ranks highest for the question, as retrieval would bring them; every
passage is split into sentences by the product's own splitter (``indexer.sentences``). A
sentence is positive when it overlaps a gold answer span. Unanswerable questions (IDK-MRC,
SQuAD 2.0) have pools with no positive: the training softmax then puts its mass on the
null option, which teaches abstention.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from eval.squad import QASet
from indexer.lexical import Analyzer, LexicalIndex
from indexer.sentences import split_sentences


@dataclass(frozen=True)
class Pool:
    """One question, the passages it is read with (own passage first) and per-sentence labels."""

    set_name: str
    question_id: str
    question: str
    passages: tuple[tuple[str, ...], ...]
    #: 1 where the sentence holds a gold answer, per passage.
    labels: tuple[tuple[int, ...], ...]

    @property
    def answerable(self) -> bool:
        return any(any(row) for row in self.labels)

    @property
    def flat_labels(self) -> list[int]:
        """Labels of every sentence, passage after passage."""
        return [label for row in self.labels for label in row]


def sentence_spans(context: str) -> list[tuple[int, int]]:
    """The product's sentence spans of a context."""
    return [(s.start, s.end) for s in split_sentences(context) if s.end > s.start]


def distractors(qaset: QASet, analyzer: Analyzer, k: int) -> list[list[int]]:
    """For each item, the ``k`` contexts BM25 ranks highest among the *other* contexts (best first)."""
    if k <= 0:
        return [[] for _ in qaset.items]
    index = LexicalIndex.build([analyzer.analyse_query(c) for c in qaset.contexts])
    out = []
    for item in qaset.items:
        scores = index.scores(analyzer.analyse_query(item.question)).copy()
        scores[item.context] = -np.inf
        ranked = np.argsort(-scores, kind="stable")[:k]
        out.append([int(i) for i in ranked if scores[i] > 0])
    return out


def build_pools(qaset: QASet, k: int, analyzer: Analyzer | None = None, items: Iterable[int] | None = None) -> list[Pool]:
    """A pool per item (or per index in ``items``): own passage, labelled, then ``k`` BM25 distractors."""
    analyzer = analyzer or Analyzer()
    spans_of = [sentence_spans(c) for c in qaset.contexts]
    others = distractors(qaset, analyzer, k)
    chosen = range(len(qaset.items)) if items is None else items
    pools = []
    for i in chosen:
        item = qaset.items[i]
        own = qaset.contexts[item.context]
        passages = [tuple(own[a:b] for a, b in spans_of[item.context])]
        labels = [tuple(int(any(s < b and a < e for s, e in item.spans)) for a, b in spans_of[item.context])]
        for other in others[i]:
            context = qaset.contexts[other]
            passages.append(tuple(context[a:b] for a, b in spans_of[other]))
            labels.append((0,) * len(spans_of[other]))
        pools.append(Pool(qaset.name, item.id, item.question, tuple(passages), tuple(labels)))
    return pools
