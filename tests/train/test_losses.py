"""Row-wise losses against numpy references."""

from __future__ import annotations

import numpy as np
import pytest

from keff.errors import KeffError
from keff.train.losses import alignment_loss, cosine_loss, sq_distance_loss

torch = pytest.importorskip("torch", reason="keff.train needs torch: pip install 'keff[st]'")


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    return rng.standard_normal((50, 7)).astype(np.float32), rng.standard_normal((50, 7)).astype(np.float32)


def _cos(a, b):
    return np.sum(a * b, axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_cosine_loss_matches_numpy(pair):
    a, b = pair
    got = float(cosine_loss(torch.from_numpy(a), torch.from_numpy(b)))
    assert got == pytest.approx(1 - _cos(a, b).mean(), abs=1e-6)


def test_sq_distance_sums_dims_and_equals_2_minus_2cos_on_unit_rows(pair):
    a, b = pair
    assert float(sq_distance_loss(torch.from_numpy(a), torch.from_numpy(b))) == pytest.approx(
        np.mean(np.sum((a - b) ** 2, axis=1)), rel=1e-6
    )
    ua, ub = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in pair)
    got = float(sq_distance_loss(torch.from_numpy(ua), torch.from_numpy(ub)))
    assert got == pytest.approx(np.mean(2 - 2 * _cos(ua, ub)), abs=1e-5)


def test_alignment_loss_adds_weighted_sq_distance(pair):
    a, b = (torch.from_numpy(x) for x in pair)
    assert alignment_loss("cosine") is cosine_loss
    assert alignment_loss("mse") is sq_distance_loss
    combined = float(alignment_loss("cosine", 0.5)(a, b))
    assert combined == pytest.approx(float(cosine_loss(a, b)) + 0.5 * float(sq_distance_loss(a, b)), rel=1e-6)


@pytest.mark.parametrize("kind, weight, match", [("l1", 0.0, "unknown loss"), ("cosine", -1.0, "mse_weight")])
def test_alignment_loss_rejects_bad_arguments(kind, weight, match):
    with pytest.raises(KeffError, match=match):
        alignment_loss(kind, weight)
