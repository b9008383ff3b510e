"""Tests for keff.encoders.base: validation, batching, normalisation, prefixes, dim checks."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from keff.arrays import l2_normalize
from keff.encoders import get_encoder
from keff.encoders.base import MAX_TEXT_CHARS, BaseEncoder, Encoder, check_texts, encode_in_batches
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


# -- input limits: long texts and lone surrogates ----------------------------------------------

BIG = 50_000_000  # one 50 MB line


def huge_text() -> str:
    """50 MB whose first MAX_TEXT_CHARS characters hold other words than the rest."""
    head = "alpha beta " * (MAX_TEXT_CHARS // 11 + 1)
    return head + "omega " * ((BIG - len(head)) // 6)


def test_text_of_exactly_the_limit_is_unchanged():
    enc = _Echo()
    exact = "a" * MAX_TEXT_CHARS
    assert enc.prepare([exact]) == [exact]
    assert enc.prepare([exact + "b"]) == [exact]
    q = _Echo(query_prefix="query: ")
    (got,) = q.prepare([exact], "query")
    assert len(got) == MAX_TEXT_CHARS and got.startswith("query: a")  # the prefix counts


def test_model_never_sees_more_than_the_limit():
    enc = _Echo(normalize=False)
    out = enc.encode(["x" * (MAX_TEXT_CHARS * 3), "short"])
    assert max(len(t) for b in enc.batches for t in b) == MAX_TEXT_CHARS
    assert out[:, 0].tolist() == [MAX_TEXT_CHARS, 5]


def test_50mb_text_through_hash_encoder_is_fast_and_cut(tmp_path):
    text = huge_text()
    enc = HashEncoder()
    start = time.perf_counter()
    got = enc.encode([text])
    assert time.perf_counter() - start < 10
    assert np.array_equal(got, enc.encode([text[:MAX_TEXT_CHARS]]))  # "omega" never counted
    cached = get_encoder("hash", cache=tmp_path / "cache")
    assert np.array_equal(cached.encode([text]), got)  # cache keys are the cut texts


def test_one_warning_per_encode_counts_cut_texts(caplog):
    long = "w " * MAX_TEXT_CHARS
    with caplog.at_level(logging.WARNING, logger="keff.encoders.base"):
        HashEncoder().encode([long, "short", long + "x", "also short"], batch_size=1)
    records = [r for r in caplog.records if r.name == "keff.encoders.base"]
    assert len(records) == 1
    assert f"2 of 4 texts are longer than {MAX_TEXT_CHARS} characters" in records[0].getMessage()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="keff.encoders.base"):
        HashEncoder().encode(["short", "a" * MAX_TEXT_CHARS])
    assert not caplog.records


def test_lone_surrogates_replaced_in_prepared_text():
    enc = HashEncoder(query_prefix="q: ")
    assert enc.prepare(["abc\ud800", "\udcff", "x\ud83d\ude00y"]) == ["abc\ufffd", "\ufffd", "x\U0001f600y"]
    assert enc.prepare(["abc\ud800"], "query") == ["q: abc\ufffd"]


def test_valid_texts_prepared_unchanged():
    texts = [
        "plain ascii",
        "",
        "naïve café",
        "日本語のテキスト",
        "emoji \U0001f600 ok",
        "\ufffd already",
        "tab\tnew\nline",
    ]
    assert HashEncoder().prepare(texts) == texts
    assert HashEncoder(doc_prefix="passage: ").prepare(texts) == ["passage: " + t for t in texts]


def test_lone_surrogate_encodes_like_replacement_char(tmp_path):
    enc = HashEncoder()
    assert np.array_equal(enc.encode(["abc\ud800 def"]), enc.encode(["abc\ufffd def"]))
    cached = get_encoder("hash", cache=tmp_path / "cache")  # the disk cache keys are the prepared texts
    assert np.array_equal(cached.encode(["abc\ud800 def"]), enc.encode(["abc\ufffd def"]))
    assert np.array_equal(cached.encode(["abc\ud800 def"]), enc.encode(["abc\ufffd def"]))  # from the cache
