"""Tests for keff.encoders.base: validation, batching, normalisation, prefixes, dim checks."""

from __future__ import annotations

import numpy as np
import pytest

from keff.encoders.base import BaseEncoder, Encoder, check_texts, encode_in_batches, l2_normalize
from keff.encoders.hash_encoder import HashEncoder
from keff.errors import KeffError, ModelNotAvailable


class _Echo(BaseEncoder):
    """Encodes a text as [len(text), 1]; records the batches it saw."""

    backend = "echo"

    def __init__(self, declared: int | None = 2, actual: int = 2, **kw) -> None:
        super().__init__("echo", dim=declared, **kw)
        self.actual = actual
        self.batches: list[list[str]] = []

    def _load(self) -> int:
        return self.actual

    def _identity(self) -> dict:
        return {"backend": self.backend, "model": "echo"}

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        self.batches.append(texts)
        return np.array([[len(t), 1.0] + [0.0] * (self.actual - 2) for t in texts], dtype=np.float32)


def test_hash_encoder_satisfies_protocol():
    assert isinstance(HashEncoder(), Encoder)


def test_non_str_text_names_index():
    with pytest.raises(KeffError, match=r"texts\[2\] is int"):
        HashEncoder().encode(["a", "b", 3])  # type: ignore[list-item]


def test_single_string_refused():
    with pytest.raises(KeffError, match="single string"):
        check_texts("hello")  # type: ignore[arg-type]


def test_bad_kind_refused():
    with pytest.raises(KeffError, match="kind must be 'query' or 'doc'"):
        HashEncoder().encode(["a"], kind="passage")  # type: ignore[arg-type]


def test_empty_input_has_dim_columns():
    out = _Echo().encode([])
    assert out.shape == (0, 2) and out.dtype == np.float32


def test_rows_back_in_input_order_despite_length_sorting():
    enc = _Echo(normalize=False, batch_size=2)
    texts = ["a", "ccc", "bb", "dddd", "e"]
    out = enc.encode(texts)
    assert out[:, 0].tolist() == [1, 3, 2, 4, 1]
    assert enc.batches[0] == ["dddd", "ccc"]  # longest first
    assert [len(b) for b in enc.batches] == [2, 2, 1]


def test_batch_size_override_and_validation():
    enc = _Echo()
    enc.encode(["a", "b", "c"], batch_size=1)
    assert len(enc.batches) == 3
    with pytest.raises(KeffError, match="batch_size"):
        enc.encode(["a"], batch_size=0)


def test_normalised_by_default_and_optional():
    texts = ["abc", "a"]
    assert np.allclose(np.linalg.norm(_Echo().encode(texts), axis=1), 1.0)
    assert _Echo(normalize=False).encode(texts)[0].tolist() == [3.0, 1.0]


def test_prefixes_applied_per_kind():
    enc = _Echo(normalize=False, query_prefix="query: ", doc_prefix="passage: ")
    assert enc.prepare(["x"], "query") == ["query: x"]
    assert enc.prepare(["x"], "doc") == ["passage: x"]
    assert enc.encode(["x"], kind="query")[0, 0] == len("query: x")


def test_declared_dim_checked_against_model():
    enc = _Echo(declared=3, actual=2)
    with pytest.raises(ModelNotAvailable, match="2-d vectors, but 3 was declared"):
        enc.encode(["a"])


def test_undeclared_dim_loads_model():
    enc = _Echo(declared=None, actual=4)
    assert enc.dim == 4


def test_wrong_batch_shape_is_an_error():
    def bad(texts):
        return np.zeros((len(texts), 3), dtype=np.float32)

    with pytest.raises(KeffError, match=r"returned shape \(2, 3\), expected \(2, 2\)"):
        encode_in_batches(bad, ["a", "b"], 2, batch_size=8, description="t")


def test_non_finite_output_names_text():
    def nan_second(texts):
        return np.array([[np.nan, 0.0] if t == "b" else [1.0, 0.0] for t in texts], dtype=np.float32)

    with pytest.raises(KeffError, match=r"texts\[1\]"):
        encode_in_batches(nan_second, ["a", "b"], 2, batch_size=1, description="t")


def test_progress_bar_enabled_does_not_change_result(capsys):
    enc = _Echo()
    a = enc.encode(["a", "bb"], show_progress=True)
    b = enc.encode(["a", "bb"], show_progress=False)
    assert np.array_equal(a, b)


def test_l2_normalize_keeps_zero_rows():
    out = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert out.dtype == np.float32
    assert np.allclose(out, [[0.6, 0.8], [0.0, 0.0]])


def test_fingerprint_covers_normalisation_and_prefixes():
    base = _Echo().fingerprint
    assert len(base) == 64 and int(base, 16) >= 0
    assert _Echo().fingerprint == base
    assert _Echo(normalize=False).fingerprint != base
    assert _Echo(query_prefix="q: ").fingerprint != base
    assert _Echo(doc_prefix="d: ").fingerprint != base
