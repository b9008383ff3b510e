"""keff.fusion.gate: the learned soft gate over specialists."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keff.errors import KeffError, NotFittedError
from keff.estimator import rebuild
from keff.fusion.gate import LearnedGate, soft_target_loss


def planted(rng: np.random.Generator, n: int, n_equal: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features (n, 4) and utilities (n, 3): specialist 0 wins when feature 0 > 0, else 1; the
    last ``n_equal`` rows have all-equal utilities."""
    F = rng.standard_normal((n, 4)) * [1.0, 3.0, 0.5, 2.0] + [0.0, 5.0, -1.0, 0.0]
    first = F[:, 0] > 0
    U = np.where(first[:, None], [0.7, 0.4, 0.2], [0.4, 0.7, 0.2]) + rng.normal(0, 0.05, (n, 3))
    U[n - n_equal :] = 0.5
    return F, U


@pytest.fixture(scope="module")
def fitted() -> LearnedGate:
    F, U = planted(np.random.default_rng(0), 300, n_equal=40)
    return LearnedGate().fit(F, U)


def test_learns_planted_rule_on_held_out_rows(fitted):
    F, _ = planted(np.random.default_rng(1), 500)
    W = fitted.weights(F)
    want = np.where(F[:, 0] > 0, 0, 1)
    assert (W.argmax(axis=1) == want).mean() > 0.9
    assert W[:, 2].max() < 0.2  # the never-best specialist gets little weight
    assert fitted.coef_.shape == (4, 3) and fitted.intercept_.shape == (3,)
    assert fitted.converged_ and fitted.n_specialists_ == 3 and fitted.n_features_in_ == 4


def test_weights_rows_sum_to_one(fitted):
    W = fitted.weights(np.random.default_rng(2).standard_normal((50, 4)) * 100)
    assert W.shape == (50, 3) and W.dtype == np.float32
    np.testing.assert_allclose(W.sum(axis=1), 1, atol=1e-6)
    assert np.isfinite(W).all() and (W >= 0).all()


def test_save_and_rebuild_gives_identical_weights(fitted):
    description = json.loads(json.dumps(fitted.describe()))
    arrays = {k: np.array(v) for k, v in fitted.get_state().items()}
    again = rebuild({"LearnedGate": LearnedGate}, description, arrays, what="gate")
    F = np.random.default_rng(3).standard_normal((20, 4))
    np.testing.assert_array_equal(again.weights(F), fitted.weights(F))
    assert again.get_params() == fitted.get_params()


def test_errors_are_clear():
    F, U = planted(np.random.default_rng(4), 30)
    with pytest.raises(NotFittedError, match="LearnedGate is not fitted"):
        LearnedGate().weights(F)
    with pytest.raises(KeffError, match="every row of U is constant"):
        LearnedGate().fit(F, np.ones((30, 3)))
    with pytest.raises(KeffError, match="F has 30 rows but U has 29"):
        LearnedGate().fit(F, U[:29])
    with pytest.raises(KeffError, match="at least 2"):
        LearnedGate().fit(F, U[:, :1])
    with pytest.raises(KeffError, match="temperature"):
        LearnedGate(temperature=0).fit(F, U)
    with pytest.raises(KeffError, match="fitted on 4 features; got 3"):
        LearnedGate().fit(F, U).weights(F[:, :3])


def test_not_converging_is_a_warning():
    F, U = planted(np.random.default_rng(5), 60)
    with pytest.warns(RuntimeWarning, match="did not converge in 1 iterations"):
        gate = LearnedGate(max_iter=1).fit(F, U)
    assert gate.converged_ is False


def test_analytic_gradient_matches_finite_differences():
    from scipy.optimize import check_grad

    rng = np.random.default_rng(6)
    X = rng.standard_normal((25, 3))
    targets = rng.dirichlet(np.ones(4), size=25)
    row_w = rng.random(25)
    row_w[:5] = 0
    row_w /= row_w.sum()
    theta = rng.standard_normal(3 * 4 + 4)

    def loss(t):
        return soft_target_loss(t, X, targets, row_w, 0.3)[0]

    def grad(t):
        return soft_target_loss(t, X, targets, row_w, 0.3)[1]

    assert check_grad(loss, grad, theta) < 1e-5
