"""Calibrate the answer reader on the valid splits, read exactly as the answerer reads them.

Each valid set's contexts are indexed with the product's encoders and chunker (one document
per context, as ``tanya eval qa`` does), and every question is retrieved by the product's own
retriever; the passages and sentences the answerer would read (``Answerer.reading_groups``)
form the question's *engine pool*. A sentence is positive when it overlaps a gold answer span
of its own context.

On those pools the sentences are ranked by ``(logit − null) + k / passage rank``: a
retrieval-rank prior, since a sentence from the passage retrieval ranked first is more often the
answer than an equally scored one from the fifth. ``k`` is fitted *listwise*, as a conditional
logit over each answerable pool's sentences (the likelihood that the softmax of ``a · margin +
c / rank`` over the pool puts its mass on the positives; ``k = c / a``), because what the prior
must get right is which sentence of a pool leads the answer. A pointwise fit of both weights
(the earlier recipe) let the many rank-1 positives of all pools pull the prior to about three
times that weight: on two-fold cross-fits of the valid pools it led with the right sentence
2-5 points less often. A logistic regression on that one score then gives P(the sentence
answers) (Platt scaling; ``Calibration.rank`` is ``k`` times its slope). A second logistic
regression maps the logit of 1 − Π(1 − P(sentence)) over the question's sentences (without the
cross-language term) to P(the passages answer it); the earlier recipe used the question's
``logsumexp`` of margins, which ignores the retrieval rank and caught fewer unanswerable
questions on cross-fits. Abstention thresholds on P(answerable) are chosen per question
language (as the product detects it): the highest that turns away at most
``max_false_abstention`` of that language's answerable valid questions, so one language's
easier questions do not buy the other's false abstentions. The sentence
threshold (for a second or third answer sentence) is chosen the same way on the best
sentence's probability. Gradient steps never see these questions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from eval.qa import write_documents
from eval.squad import QASet
from indexer.embedders import Embedder
from indexer.pipeline import build_index
from service.config import Settings
from service.qa.answering import ReaderScores
from service.qa.engine import Engine
from service.qa.reranker.reader import AnswerReader, Calibration

Progress = Callable[[str, int, int, str], None]  # (stage, done, total, detail)


@dataclass(frozen=True)
class EnginePool:
    """One question as the answerer reads it: passages in retrieval order, their sentences and labels."""

    set_name: str
    question: str
    passages: tuple[tuple[str, ...], ...]
    labels: tuple[tuple[int, ...], ...]
    #: The question's language as the product detects it (the abstention threshold is per language).
    lang: str = "en"
    #: 1 where the sentence is in another language than the question, per passage (empty: none is).
    foreign: tuple[tuple[int, ...], ...] = ()

    @property
    def answerable_here(self) -> bool:
        """Whether a sentence holding the answer was retrieved."""
        return any(any(row) for row in self.labels)


def engine_pools(
    qaset: QASet, settings: Settings, work_dir: Path, embedders: list[Embedder], progress: Progress | None = None
) -> tuple[list[EnginePool], list[bool]]:
    """The engine pool of every question of ``qaset`` (indexed in ``work_dir``) and whether each is answerable."""
    doc_ids = write_documents(qaset, work_dir / "docs")
    build_index([work_dir / "docs"], settings.model_copy(update={"index_dir": work_dir / "index"}).index, embedders)
    engine = Engine.load(settings.model_copy(update={"index_dir": work_dir / "index", "reranker": "off"}).engine, embedders)
    own_context = {doc_id: i for i, doc_id in enumerate(doc_ids)}
    candidates = engine.config.answer.candidate_passages
    pools: list[EnginePool] = []
    answerable: list[bool] = []
    for n, item in enumerate(qaset.items, start=1):
        query = engine.analyser.analyse(item.question, engine.config.retrieval.mode)
        groups = engine.answerer.reading_groups(engine.retriever.search(query, candidates))
        passages, labels, foreign = [], [], []
        for _, _, rows in groups:
            texts, marks, other = [], [], []
            for row in rows:
                sentence = engine.index.sentences[row]
                texts.append(sentence.text)
                # The language alone, not the answerer's twin rule (``Answerer.reading_foreign``): the
                # weight read here is the lift a sentence needs when nothing in the question's language
                # says the same. No valid context is bilingual; under the twin rule one flag of 2,293
                # pools changed (a sentence of another set's passage), and it moved this weight from
                # 1.74 to 1.51 (eval/README.md, "Abstention from the sentences").
                other.append(int(sentence.lang != query.lang))
                mine = own_context.get(sentence.doc_id) == item.context
                marks.append(int(mine and any(s < sentence.end and sentence.start < e for s, e in item.spans)))
            passages.append(tuple(texts))
            labels.append(tuple(marks))
            foreign.append(tuple(other))
        pools.append(
            EnginePool(qaset.name, item.question, tuple(passages), tuple(labels), query.lang, tuple(foreign))
        )
        answerable.append(item.answerable)
        if progress:
            progress(f"engine pools {qaset.name}", n, len(qaset.items), "")
    return pools, answerable


def pool_foreign(pool: EnginePool) -> list[np.ndarray]:
    """Per passage, 1.0 where a sentence of ``pool`` is in another language than its question."""
    if not pool.foreign:
        return [np.zeros(len(row)) for row in pool.labels]
    return [np.asarray(row, dtype=np.float64) for row in pool.foreign]


def features(margins: Sequence[np.ndarray], foreign: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """Rows of ``[margin, 1 / passage rank, foreign]`` for every sentence, passage after passage."""
    flags = foreign if foreign is not None else [np.zeros(len(m)) for m in margins]
    rows = [
        (float(m), 1.0 / rank, float(f))
        for rank, (values, other) in enumerate(zip(margins, flags, strict=True), start=1)
        for m, f in zip(values, other, strict=True)
    ]
    return np.array(rows, dtype=np.float64).reshape(len(rows), 3)


@dataclass(frozen=True)
class LeadScore:
    """Which sentence leads the answer: ``margin + rank / passage rank + foreign · [other language]``."""

    rank: float = 0.0
    foreign: float = 0.0


def fit_lead_score(margins: Sequence[Sequence[np.ndarray]], pools: Sequence[EnginePool]) -> LeadScore:
    """The weights next to the margin that best rank each pool's positives first.

    A conditional logit (L-BFGS in torch): over every pool with a positive sentence, maximise the
    log of the softmax mass that ``a · margin + c / rank + d · foreign`` puts on its positives;
    ``rank = c / a`` (at least 0) and ``foreign = d / a``. Without a sentence in another language
    than its question among those pools, ``foreign`` is 0 (nothing to read it from).
    """
    import torch

    rows = []
    for values, pool in zip(margins, pools, strict=True):
        labels = np.array([label for row in pool.labels for label in row], dtype=bool)
        if labels.any():
            rows.append((features(values, pool_foreign(pool)), labels))
    if not rows:
        return LeadScore()
    width = max(len(x) for x, _ in rows)
    # Padded to one matrix: padding scores -inf in both the pool's and its positives' logsumexp.
    feats = torch.zeros(len(rows), width, 3, dtype=torch.float64)
    present = torch.zeros(len(rows), width, dtype=torch.bool)
    positive = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, (x, labels) in enumerate(rows):
        feats[i, : len(x)] = torch.from_numpy(x)
        present[i, : len(x)] = True
        positive[i, : len(x)] = torch.from_numpy(labels)
    mixed = bool(feats[:, :, 2][present].any())
    if not mixed:
        feats = feats[:, :, :2]

    def loss(w: torch.Tensor) -> torch.Tensor:
        scores = feats @ w
        everything = torch.logsumexp(scores.masked_fill(~present, -torch.inf), dim=1)
        answers = torch.logsumexp(scores.masked_fill(~positive, -torch.inf), dim=1)
        return (everything - answers).mean()

    start = torch.tensor([1.0, 0.0, 0.0][: feats.shape[2]], dtype=torch.float64)
    a, c, *d = (float(v) for v in _minimise(start, loss))
    if a <= 0:  # margins that do not rank at all: no prior can be read off them
        return LeadScore()
    return LeadScore(rank=max(0.0, c / a), foreign=d[0] / a if d else 0.0)


def fit_rank_prior(margins: Sequence[Sequence[np.ndarray]], pools: Sequence[EnginePool]) -> float:
    """The weight ``k`` of ``1 / passage rank`` next to the margin (see :func:`fit_lead_score`)."""
    return fit_lead_score(margins, pools).rank


def fit_logistic(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Maximum-likelihood logistic regression (L-BFGS in torch): weights and bias."""
    import torch

    xt = torch.tensor(x, dtype=torch.float64)
    yt = torch.tensor(y, dtype=torch.float64)
    start = torch.zeros(x.shape[1] + 1, dtype=torch.float64)
    start[0] = 1.0
    values = _minimise(
        start, lambda w: torch.nn.functional.binary_cross_entropy_with_logits(xt @ w[:-1] + w[-1], yt)
    )
    return values[:-1].copy(), float(values[-1])


def _minimise(start: Any, loss: Callable[[Any], Any]) -> np.ndarray:
    """The minimum of ``loss`` over a small torch parameter vector, from ``start`` (L-BFGS, strong Wolfe)."""
    import torch

    w = start.clone().requires_grad_(True)
    optimiser = torch.optim.LBFGS([w], lr=0.5, max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        value = loss(w)
        value.backward()
        return value

    optimiser.step(closure)
    return w.detach().numpy()


def threshold_for(answerable_best: Sequence[float], max_false_abstention: float) -> float:
    """The highest threshold on the best score that turns away at most ``max_false_abstention`` of these questions."""
    best = np.sort(np.asarray(answerable_best, dtype=np.float64))
    if len(best) == 0:
        return 0.5
    allowed = math.floor(max_false_abstention * len(best))
    # Abstaining below best[allowed] turns away exactly the `allowed` lowest answerable questions.
    return float(best[allowed])


def calibrate(
    reader: AnswerReader, pools: Sequence[EnginePool], answerable: Sequence[bool], max_false_abstention: float,
    progress: Progress | None = None,
) -> tuple[Calibration, list[ReaderScores]]:
    """Fit the calibration on ``pools``; also returns every pool's calibrated scores."""
    margins: list[list[np.ndarray]] = []
    for n, pool in enumerate(pools, start=1):
        reading = reader.logits(pool.question, pool.passages)
        margins.append([values - reading.null for values in reading.logits])
        if progress:
            progress("calibration", n, len(pools), pool.set_name)
    return fit_calibration(margins, pools, answerable, max_false_abstention)


def fit_calibration(
    margins: Sequence[Sequence[np.ndarray]], pools: Sequence[EnginePool], answerable: Sequence[bool],
    max_false_abstention: float,
) -> tuple[Calibration, list[ReaderScores]]:
    """The calibration of these margins (see the module's docstring) and every pool's scores under it."""
    lead = fit_lead_score(margins, pools)
    flags = [pool_foreign(pool) for pool in pools]
    x = np.concatenate([features(m, f) for m, f in zip(margins, flags, strict=True)])
    ranked = (x[:, 0] + lead.rank * x[:, 1] + lead.foreign * x[:, 2]).reshape(-1, 1)
    y = np.array([label for pool in pools for row in pool.labels for label in row], dtype=np.float64)
    (slope,), bias = fit_logistic(ranked, y)
    sentence = Calibration(
        margin=float(slope), rank=float(slope) * lead.rank, foreign=float(slope) * lead.foreign, bias=bias
    )
    probs = [sentence.apply(m, f) for m, f in zip(margins, flags, strict=True)]
    best = [float(max((p.max() for p in ps if len(p)), default=0.0)) for ps in probs]
    threshold = threshold_for([b for b, ok in zip(best, answerable, strict=True) if ok], max_false_abstention)

    # P(answerable) from the sentences' calibrated probabilities (rank prior included, no cross-language
    # term), Platt-scaled so that it reads as a probability where the answer shows it.
    sentence = replace(sentence, answerable_from="sentences")
    read = [(sentence.evidence(m), pool.answerable_here) for m, pool in zip(margins, pools, strict=True)]
    qx = np.array([[f] for f, _ in read if f is not None], dtype=np.float64).reshape(-1, 1)
    qy = np.array([float(here) for f, here in read if f is not None], dtype=np.float64)
    (scale,), answerable_bias = fit_logistic(qx, qy)
    fitted = replace(sentence, threshold=threshold, answerable_scale=float(scale), answerable_bias=answerable_bias)
    scores = [ReaderScores(p, fitted.question_probability(m)) for m, p in zip(margins, probs, strict=True)]

    def cut(lang: str | None) -> float:
        return threshold_for(
            [s.answerable for s, pool, ok in zip(scores, pools, answerable, strict=True) if ok and lang in (None, pool.lang)],
            max_false_abstention,
        )

    thresholds = {lang: cut(lang) for lang in sorted({pool.lang for pool in pools})}
    thresholds["*"] = cut(None)
    return replace(fitted, abstain=thresholds), scores


def pool_metrics(
    pools: Sequence[EnginePool], answerable: Sequence[bool], scores: Sequence[ReaderScores], calibration: Calibration
) -> dict[str, float]:
    """First-sentence hit, top-3 hit and abstention over engine pools (a miss when the answer was not retrieved)."""
    first, top3, turned_away, abstained = [], [], [], []
    for pool, ok, read in zip(pools, answerable, scores, strict=True):
        flat = np.concatenate(list(read.sentences)) if read.sentences else np.zeros(0)
        labels = [label for row in pool.labels for label in row]
        declined = read.answerable < calibration.abstain_threshold(pool.lang)
        if ok:
            order = np.argsort(-flat, kind="stable")
            first.append(bool(len(flat)) and labels[int(order[0])] == 1)
            top3.append(any(labels[int(i)] for i in order[:3]))
            turned_away.append(declined)
        else:
            abstained.append(declined)
    out = {
        "answerable": float(len(first)),
        "first_sentence_hit": float(np.mean(first)) if first else 0.0,
        "top3_hit": float(np.mean(top3)) if top3 else 0.0,
        "false_abstention": float(np.mean(turned_away)) if turned_away else 0.0,
    }
    if abstained:
        out["unanswerable"] = float(len(abstained))
        out["abstention_recall"] = float(np.mean(abstained))
    return out
