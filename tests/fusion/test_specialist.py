"""Specialist: fitted on training vectors only, saved and loaded as one SEF file."""

from __future__ import annotations

import numpy as np
import pytest

from keff.encoders.hash_encoder import HashEncoder
from keff.errors import FingerprintMismatch, FormatError
from keff.fusion import Specialist, fit_specialist
from keff.uncertainty import CalibratedVariance, CentroidDistance


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def spec():
    rng = np.random.default_rng(0)
    d = 16
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    anchors_frame = unit(rng.standard_normal((200, d)))
    anchors_own = unit(anchors_frame @ Q.T)  # own space = frame rotated by Q^T
    domain = unit(rng.standard_normal((50, d)) + 3 * np.eye(d)[0])
    return fit_specialist(
        "toy", HashEncoder(dim=d), anchors_own=anchors_own, anchors_frame=anchors_frame,
        domain_texts_own=unit(domain @ Q.T), uncertainty=CentroidDistance(), domain="toy",
    )  # fmt: skip


def test_map_centroid_and_variance(spec):
    e0 = np.eye(16, dtype=np.float32)[0]
    assert spec.centroid @ e0 > 0.9  # the domain lies along e0 in the frame
    own = np.vstack([e0, -e0]) @ spec.map.W_.T  # frame directions expressed in the own space
    frame = spec.to_frame(own)
    assert np.allclose(np.linalg.norm(frame, axis=1), 1)
    assert frame[0] @ e0 > 0.9  # the map takes own vectors back to the frame
    var = spec.variance(frame)
    assert var[0] < var[1]  # in-domain query more certain than the opposite direction


def test_save_load_round_trip(spec, tmp_path):
    path = spec.save(tmp_path / "toy.sef")
    again = Specialist.load(path)
    X = np.random.default_rng(1).standard_normal((5, 16)).astype(np.float32)
    assert np.array_equal(again.to_frame(X), spec.to_frame(X))
    assert np.array_equal(again.variance(spec.to_frame(X)), spec.variance(spec.to_frame(X)))
    assert again.name == "toy" and again.domain == "toy" and again.fingerprint == spec.fingerprint


def test_nested_calibrated_estimator_round_trip(spec, tmp_path):
    rng = np.random.default_rng(2)
    V = spec.to_frame(rng.standard_normal((40, 16)).astype(np.float32))
    raw = spec.uncertainty.raw_score(V)
    spec.uncertainty = CalibratedVariance().fit_from(spec.uncertainty, V, np.clip(raw / raw.max(), 0, 1))
    again = Specialist.load(spec.save(tmp_path / "cal.sef"))
    assert np.array_equal(again.variance(V), spec.variance(V))


def test_fingerprint_guard_and_wrong_kind(spec, tmp_path, monkeypatch):
    spec.encoder = "hash"
    spec.fingerprint = "0" * 64
    with pytest.raises(FingerprintMismatch, match="refit the specialist"):
        spec.load_encoder()
    from keff.maps import Procrustes

    Procrustes().fit(np.eye(3), np.eye(3)).save(tmp_path / "map.sef")
    with pytest.raises(FormatError, match="expected a 'specialist'"):
        Specialist.load(tmp_path / "map.sef")
