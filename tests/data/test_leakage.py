"""Tests for keff.data.leakage: group/text/near-duplicate leak counts and split parity."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import ks_2samp

from keff.data.leakage import LeakReport, leak_check, normalize_text, repeats, split_parity
from keff.errors import DataError


def unit(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_clean_when_nothing_shared():
    rng = np.random.default_rng(0)
    a, b = unit(rng.normal(size=(50, 32))), unit(rng.normal(size=(30, 32)))
    rep = leak_check(
        [f"a{i}" for i in range(50)],
        [f"b{i}" for i in range(30)],
        a_groups=np.arange(50),
        b_groups=np.arange(50, 80),
        a_vecs=a,
        b_vecs=b,
    )
    assert rep == LeakReport(0, 0, 0, [])
    assert rep.clean


def test_group_overlap_counts_rows_of_b():
    rep = leak_check(["x", "y"], ["p", "q", "r"], a_groups=[1, 2], b_groups=[2, 2, 3])
    assert rep.group_overlap == 2
    assert rep.near_duplicates is None
    assert not rep.clean
    assert rep.examples[0] == "group: b[0] is in group 2, which also occurs in a"


def test_exact_text_overlap_ignores_case_and_whitespace():
    assert normalize_text("  Hello\n  WORLD ") == "hello world"
    rep = leak_check(["Hello world", "other"], ["hello   WORLD", "new", "OTHER\t"])
    assert rep.exact_text_overlap == 2
    assert rep.group_overlap == 0
    assert "b[0] == a[0]" in rep.examples[0]


def test_near_duplicates_in_small_batches_match_brute_force():
    rng = np.random.default_rng(1)
    a = unit(rng.normal(size=(40, 16)))
    noise = rng.normal(size=(10, 16)) * 0.01
    b = unit(np.vstack([a[:10] + noise, rng.normal(size=(25, 16))]))
    texts_a, texts_b = [f"a{i}" for i in range(40)], [f"b{i}" for i in range(35)]
    rep = leak_check(texts_a, texts_b, a_vecs=a, b_vecs=b, near_dup_cosine=0.98, batch=7)
    expected = int(((b @ a.T).max(axis=1) >= 0.98).sum())
    assert rep.near_duplicates == expected == 10
    assert rep.exact_text_overlap == 0
    assert any(e.startswith("near-duplicate: b[0] ~ a[0]") for e in rep.examples)
    strict = leak_check(texts_a, texts_b, a_vecs=a, b_vecs=b, near_dup_cosine=0.99999)
    assert strict.near_duplicates < 10


def test_to_dict_is_json_ready():
    rep = leak_check(["a"], ["a"], a_groups=["g"], b_groups=["g"])
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["group_overlap"] == 1 and d["exact_text_overlap"] == 1 and d["clean"] is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"a_groups": [1]}, "both a_groups and b_groups"),
        ({"a_groups": [1, 2], "b_groups": [1]}, "one id per text"),
        ({"a_vecs": np.eye(1, dtype=np.float32)}, "both a_vecs and b_vecs"),
        ({"a_vecs": np.ones((1, 2), np.float32), "b_vecs": unit(np.ones((1, 2)))}, "L2-normalised; row 0"),
        ({"a_vecs": unit(np.ones((2, 2))), "b_vecs": unit(np.ones((1, 2)))}, r"a_vecs must have shape \(1, d\)"),
        ({"a_vecs": np.eye(1, 2, dtype=np.float32), "b_vecs": np.eye(1, 3, dtype=np.float32)}, "differ in dimension"),
        ({"a_vecs": np.eye(1, 2, dtype=np.int64), "b_vecs": np.eye(1, 2, dtype=np.int64)}, "float array"),
        ({"a_vecs": np.full((1, 2), np.nan, np.float32), "b_vecs": unit(np.ones((1, 2)))}, "NaN"),
        ({"batch": 0}, "batch must be"),
    ],
)
def test_input_errors(kwargs, message):
    with pytest.raises(DataError, match=message):
        leak_check(["a"], ["b"], **kwargs)


def test_split_parity_matches_numpy_and_scipy():
    rng = np.random.default_rng(2)
    x, y = rng.normal(0, 1, 500), rng.normal(0.5, 1, 300)
    out = split_parity(x, y, names=("train", "test"))
    assert set(out) == {"train", "test", "ks_statistic", "ks_pvalue"}
    assert out["train"]["n"] == 500 and out["test"]["n"] == 300
    assert out["train"]["mean"] == pytest.approx(x.mean())
    assert out["test"]["std"] == pytest.approx(y.std())
    assert list(out["train"]["quantiles"]) == ["5", "25", "50", "75", "95"]
    assert out["train"]["quantiles"]["50"] == pytest.approx(np.median(x))
    ks = ks_2samp(x, y)
    assert out["ks_statistic"] == pytest.approx(ks.statistic)
    assert out["ks_pvalue"] == pytest.approx(ks.pvalue)
    assert out["ks_pvalue"] < 1e-6  # shifted distributions are told apart
    json.dumps(out)


def test_split_parity_errors():
    with pytest.raises(DataError, match="non-empty"):
        split_parity([], [1.0])
    with pytest.raises(DataError, match="NaN"):
        split_parity([1.0, float("nan")], [1.0])
    with pytest.raises(DataError, match="distinct"):
        split_parity([1.0], [1.0], names=("a", "a"))


def test_repeats_flags_word_for_word_copies_only():
    reference = ["Aspirin lowers  the risk of stroke.", "Vitamin D helps."]
    texts = ["aspirin lowers the risk of STROKE.", "Aspirin lowers the risk of strokes.", "vitamin d helps."]
    assert repeats(texts, reference) == [True, False, True]
    assert repeats([], reference) == [] and repeats(texts, []) == [False, False, False]
