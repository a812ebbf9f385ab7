"""P(answer) from the cross-encoder's logit together with what retrieval already knows.

Measured on engine candidate pools (five retrieved passages, about 18 sentences), the
cross-encoder alone ranks the answer first less often than it does within one passage:
sentences from lower-ranked passages compete. A logistic regression over the logit and the
answerer's cheap signals (dense similarity, word overlap, support, the passage's retrieval
rank) fixes most of that. It is fitted on engine pools built from the *training* splits
(``python -m training combiner``), so the valid figures stay held out, and stored in
``reranker.json``; its output is the calibrated probability the threshold applies to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Feature names, in column order.
FEATURES = ("logit", "dense", "overlap", "support", "rank_prior")


@dataclass(frozen=True)
class Candidate:
    """One candidate sentence as the answerer sees it."""

    text: str
    dense: float
    overlap: float
    support: float
    passage_rank: int


def feature_matrix(logits: np.ndarray, candidates: Sequence[Candidate]) -> np.ndarray:
    """Rows of :data:`FEATURES` for each candidate."""
    rows = [
        (float(logit), c.dense, c.overlap, c.support, 1.0 / max(1, c.passage_rank))
        for logit, c in zip(logits, candidates, strict=True)
    ]
    return np.array(rows, dtype=np.float64).reshape(len(rows), len(FEATURES))


@dataclass(frozen=True)
class Combiner:
    """Logistic regression weights over :data:`FEATURES`."""

    weights: tuple[float, ...]
    bias: float

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """sigmoid(features · weights + bias)."""
        z = features @ np.asarray(self.weights, dtype=np.float64) + self.bias
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"features": list(FEATURES), "weights": list(self.weights), "bias": self.bias}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Combiner:
        features = tuple(raw.get("features", ()))
        if features != FEATURES:
            raise ValueError(f"combiner features {features} differ from this code's {FEATURES}")
        return cls(tuple(float(w) for w in raw["weights"]), float(raw["bias"]))


def fit_logistic(features: np.ndarray, labels: np.ndarray, l2: float = 1e-3) -> Combiner:
    """Maximum-likelihood logistic regression with a small L2 penalty (L-BFGS in torch)."""
    import torch

    x = torch.tensor(features, dtype=torch.float64)
    y = torch.tensor(labels, dtype=torch.float64)
    w = torch.zeros(x.shape[1] + 1, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([w], lr=0.5, max_iter=500, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        z = x @ w[:-1] + w[-1]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z, y) + l2 * (w[:-1] ** 2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    values = w.detach().tolist()
    return Combiner(tuple(values[:-1]), values[-1])
