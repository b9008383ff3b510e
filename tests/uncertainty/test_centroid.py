"""keff.uncertainty.centroid: distance to the domain centroid, squashed with a wide range."""

from __future__ import annotations

import numpy as np
import pytest

from keff.errors import KeffError
from keff.uncertainty import CentroidDistance, ConstantVariance, variance_spread

from .conftest import unit


def test_centroid_and_reference_statistics(axes, cluster):
    a, _ = axes
    V = cluster(a, 400, 0.5)
    est = CentroidDistance().fit(V)
    assert est.centroid_.dtype == np.float32 and np.linalg.norm(est.centroid_) == pytest.approx(1.0, abs=1e-6)
    assert float(est.centroid_ @ a) > 0.99
    d = est.raw_score(V)
    assert est.median_ == pytest.approx(np.median(d))
    assert est.scale_ == pytest.approx(np.subtract(*np.percentile(d, [75, 25])) / 1.349, rel=1e-3)
    # A reference-typical row (distance = median) gets variance floor + 1.
    assert np.isclose(est._squash(np.array([est.median_]))[0], 1.0 + est.floor)


def test_variance_grows_with_the_angle_to_the_centroid(axes, cluster):
    a, b = axes
    est = CentroidDistance().fit(cluster(a, 300, 0.5))
    angles = np.linspace(0.0, np.pi, 25)
    Q = unit(np.cos(angles)[:, None] * a + np.sin(angles)[:, None] * b)
    var = est.variance(Q)
    assert var.dtype == np.float64 and np.all(var > 0) and np.all(np.isfinite(var))
    assert np.all(np.diff(var) >= 0) and var[-1] > 1e6 * var[0]
    # Query norm does not matter: the statistic is a cosine.
    assert np.allclose(est.variance(5.0 * Q), var, rtol=1e-5)


def test_mixed_in_and_out_of_domain_queries_span_a_wide_range(axes, cluster):
    a, b = axes
    est = CentroidDistance().fit(cluster(a, 500, 0.5))
    mixed = np.vstack([cluster(a, 100, 0.5), cluster(b, 100, 0.5)])
    spread = variance_spread(est.variance(mixed))
    assert spread["ratio_p95_p5"] > 100
    var = est.variance(mixed)
    assert np.median(var[:100]) * 1000 < np.median(var[100:])
    flat = ConstantVariance().fit(cluster(a, 500, 0.5))
    assert variance_spread(flat.variance(mixed))["ratio_p95_p5"] == 1.0


def test_sharpness_controls_the_range(axes, cluster):
    a, b = axes
    V, mixed = cluster(a, 300, 0.5), np.vstack([cluster(a, 50, 0.5), cluster(b, 50, 0.5)])
    gentle = variance_spread(CentroidDistance(sharpness=0.5).fit(V).variance(mixed))["ratio_p95_p5"]
    sharp = variance_spread(CentroidDistance(sharpness=3.0).fit(V).variance(mixed))["ratio_p95_p5"]
    assert 1.0 < gentle < sharp


def test_degenerate_references_are_errors(axes):
    a, _ = axes
    with pytest.raises(KeffError, match="no spread"):
        CentroidDistance().fit(np.tile(a, (10, 1)))
    with pytest.raises(KeffError, match="cancel out"):
        CentroidDistance().fit(np.vstack([a, -a]))
    with pytest.raises(KeffError, match="at least 2 rows"):
        CentroidDistance().fit(a[None, :])
    with pytest.raises(KeffError, match="zero norm"):
        CentroidDistance().fit(np.vstack([a, np.zeros_like(a), a]))
    with pytest.raises(KeffError, match="sharpness must be"):
        CentroidDistance(sharpness=0).fit(np.eye(3, dtype=np.float32))


@pytest.mark.slow
def test_real_scifact_claims_vs_skills_questions(minilm_slices):
    """Fitted on SciFact abstracts, SciFact claims are in-domain and skills Q/A questions are not."""
    est = CentroidDistance().fit(minilm_slices["scifact_docs"])
    own = est.variance(minilm_slices["scifact_queries"])
    other = est.variance(minilm_slices["skills_questions"])
    assert np.median(own) * 100 < np.median(other)
    assert variance_spread(np.concatenate([own, other]))["ratio_p95_p5"] > 100
