"""The answer combiner: logistic regression over the cross-encoder logit and the retrieval signals."""

from __future__ import annotations

import numpy as np
import pytest

from service.qa.reranker.combiner import FEATURES, Candidate, Combiner, feature_matrix, fit_logistic


def test_features_are_read_in_order_with_a_reciprocal_rank_prior() -> None:
    rows = feature_matrix(np.array([2.0, -1.0]), [Candidate("a", 0.5, 0.25, 0.4, 1), Candidate("b", 0.1, 0.0, 0.05, 4)])
    assert rows.shape == (2, len(FEATURES))
    np.testing.assert_allclose(rows[1], [-1.0, 0.1, 0.0, 0.05, 0.25])


def test_fit_recovers_known_weights() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30_000, len(FEATURES)))
    true = np.array([1.5, -0.5, 0.0, 0.8, 2.0])
    y = (rng.random(30_000) < 1 / (1 + np.exp(-(x @ true - 1.0)))).astype(float)
    fitted = fit_logistic(x, y, l2=0.0)
    np.testing.assert_allclose(fitted.weights, true, atol=0.08)
    assert fitted.bias == pytest.approx(-1.0, abs=0.08)
    probs = fitted.probabilities(x[:5])
    assert probs.shape == (5,) and np.all((probs > 0) & (probs < 1))


def test_a_stored_combiner_round_trips_and_other_features_are_refused() -> None:
    combiner = Combiner((1.0, 2.0, 3.0, 4.0, 5.0), -0.5)
    assert Combiner.from_dict(combiner.to_dict()) == combiner
    with pytest.raises(ValueError, match="differ"):
        Combiner.from_dict({**combiner.to_dict(), "features": ["logit"]})
