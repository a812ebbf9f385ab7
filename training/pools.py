"""Candidate pools shaped like the ones the answerer ranks at query time.

For each question, a pool is every sentence of its passage (split by the product's own
sentence splitter, ``indexer.sentences``) plus the sentences of the best BM25 distractor
passage from the same file, as retrieval would bring. A sentence is positive when it
overlaps a gold answer span; unanswerable questions (IDK-MRC, SQuAD 2.0) have pools with no
positive, which teach the model to give every sentence a low score.

Training uses a few pairs per question: every positive, the negatives of its own passage
that share the most words with the question (the restatements the old answerer picked),
and one distractor sentence. Evaluation pools keep every sentence.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from eval.squad import QASet
from indexer.lexical import Analyzer, LexicalIndex
from indexer.sentences import split_sentences

_WORD = re.compile(r"\w+", re.UNICODE)
#: Sentences shorter than this (characters) are headings or fragments; kept only as negatives.
MIN_SENTENCE_CHARS = 8


@dataclass(frozen=True)
class Pool:
    """One question and its candidate sentences, with labels (1 = holds a gold answer)."""

    set_name: str
    question_id: str
    question: str
    sentences: tuple[str, ...]
    labels: tuple[int, ...]
    #: How many of ``sentences`` come from the question's own passage (they come first).
    own: int

    @property
    def answerable(self) -> bool:
        return any(self.labels)


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def sentence_spans(context: str) -> list[tuple[int, int]]:
    """The product's sentence spans of a context."""
    return [(s.start, s.end) for s in split_sentences(context) if s.end - s.start > 0]


def distractors(qaset: QASet, analyzer: Analyzer) -> list[int]:
    """For each item, the context BM25 ranks highest among the *other* contexts (-1 if none)."""
    tokens = [analyzer.analyse_query(c) for c in qaset.contexts]
    index = LexicalIndex.build(tokens)
    out = []
    for item in qaset.items:
        scores = index.scores(analyzer.analyse_query(item.question)).copy()
        scores[item.context] = -1.0
        best = int(np.argmax(scores)) if len(scores) > 1 else -1
        out.append(best if best >= 0 and scores[best] > 0 else -1)
    return out


def build_pools(qaset: QASet, analyzer: Analyzer | None = None) -> list[Pool]:
    """A full pool per item: own-passage sentences (labelled) then the distractor passage's sentences."""
    analyzer = analyzer or Analyzer()
    spans_of = [sentence_spans(c) for c in qaset.contexts]
    other = distractors(qaset, analyzer)
    pools = []
    for item, distractor in zip(qaset.items, other, strict=True):
        context = qaset.contexts[item.context]
        texts, labels = [], []
        for start, end in spans_of[item.context]:
            texts.append(context[start:end])
            labels.append(int(any(s < end and start < e for s, e in item.spans)))
        own = len(texts)
        if distractor >= 0:
            extra = qaset.contexts[distractor]
            texts.extend(extra[s:e] for s, e in spans_of[distractor])
            labels.extend([0] * len(spans_of[distractor]))
        pools.append(Pool(qaset.name, item.id, item.question, tuple(texts), tuple(labels), own))
    return pools


def training_pairs(
    pools: Sequence[Pool], rng: random.Random, hard_negatives: int = 2, distractor_negatives: int = 1
) -> Iterator[tuple[str, str, int]]:
    """``(question, sentence, label)``: positives, the most question-like own negatives, distractor sentences."""
    for pool in pools:
        question_words = _words(pool.question)
        own = range(pool.own)
        for i in own:
            if pool.labels[i]:
                yield pool.question, pool.sentences[i], 1
        negatives = [i for i in own if not pool.labels[i]]
        # Most shared words first (the restatements), ties broken at random.
        negatives.sort(key=lambda i: (-len(question_words & _words(pool.sentences[i])), rng.random()))
        wanted = hard_negatives + (0 if pool.answerable else 1)
        for i in negatives[:wanted]:
            yield pool.question, pool.sentences[i], 0
        extra = [i for i in range(pool.own, len(pool.sentences)) if len(pool.sentences[i]) >= MIN_SENTENCE_CHARS]
        for i in rng.sample(extra, min(distractor_negatives, len(extra))):
            yield pool.question, pool.sentences[i], 0
