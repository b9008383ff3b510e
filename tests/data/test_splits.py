"""Tests for keff.data.splits: grouped train/val/test splits and grouped k-fold."""

from __future__ import annotations

import numpy as np
import pytest

from keff.data.splits import Split, as_groups, grouped_kfold, grouped_split
from keff.errors import DataError


def groups_of(n_groups: int, seed: int = 0, max_size: int = 6) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, max_size + 1, size=n_groups)
    labels = np.repeat(rng.permutation(n_groups) * 7 + 3, sizes)  # arbitrary, non-dense ids
    return labels[rng.permutation(labels.size)]


def assert_partition(parts, n):
    allrows = np.concatenate(parts)
    assert sorted(allrows.tolist()) == list(range(n))
    for p in parts:
        assert p.dtype == np.int64
        assert np.all(np.diff(p) > 0)


def test_ungrouped_fractions_and_partition():
    s = grouped_split(1000, val_frac=0.1, test_frac=0.2, seed=1)
    assert isinstance(s, Split)
    assert_partition([s.train, s.val, s.test], 1000)
    assert (len(s.train), len(s.val), len(s.test)) == (700, 100, 200)


@pytest.mark.parametrize(("n_groups", "seed"), [(5, 0), (9, 11), (23, 7), (40, 123), (80, 9999)])
def test_no_group_on_two_sides(n_groups, seed):
    g = groups_of(n_groups, seed)
    s = grouped_split(g, val_frac=0.15, test_frac=0.25, seed=seed)
    assert_partition([s.train, s.val, s.test], g.size)
    sides = [set(g[s.train]), set(g[s.val]), set(g[s.test])]
    assert not sides[0] & sides[1] and not sides[0] & sides[2] and not sides[1] & sides[2]
    # test is filled first until it reaches its share: it overshoots by less than one group
    assert 0.25 * g.size <= len(s.test) < 0.25 * g.size + 6


def test_deterministic_and_seed_dependent():
    g = groups_of(60)
    a, b = grouped_split(g, seed=5), grouped_split(g, seed=5)
    c = grouped_split(g, seed=6)
    assert a.to_dict() == b.to_dict()
    assert a.to_dict() != c.to_dict()


def test_zero_val_fraction_gives_empty_val():
    s = grouped_split(50, val_frac=0.0, test_frac=0.3)
    assert s.val.size == 0 and s.test.size == 15


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"val_frac": -0.1}, "val_frac must be in"),
        ({"test_frac": 1.0}, "test_frac must be in"),
        ({"val_frac": 0.5, "test_frac": 0.5}, "must be < 1"),
    ],
)
def test_bad_fractions(kwargs, message):
    with pytest.raises(DataError, match=message):
        grouped_split(100, **kwargs)


def test_too_few_groups():
    with pytest.raises(DataError, match=r"empty part\(s\): train, val; 10 items in 1 groups"):
        grouped_split(np.zeros(10, dtype=int))
    with pytest.raises(DataError, match=r"empty part\(s\): train; 5 items in 2 groups"):
        grouped_split(np.array([0, 0, 0, 0, 1]), val_frac=0.1, test_frac=0.2)


def test_bad_groups():
    with pytest.raises(DataError, match="integers"):
        as_groups(np.array([0.5, 1.0]))
    with pytest.raises(DataError, match="1-D"):
        as_groups(np.zeros((2, 2), dtype=int))
    with pytest.raises(DataError, match=">= 0"):
        as_groups(-1)


def test_kfold_partitions_items_and_respects_groups():
    g = groups_of(40, seed=2)
    folds = grouped_kfold(g, 5, seed=0)
    assert len(folds) == 5
    assert_partition([test for _, test in folds], g.size)
    for train, test in folds:
        assert_partition([train, test], g.size)
        assert not set(g[train]) & set(g[test])
    sizes = [len(test) for _, test in folds]
    assert max(sizes) - min(sizes) <= 6  # balanced to within one group


def test_kfold_ungrouped_is_balanced_and_seeded():
    folds = grouped_kfold(10, 3, seed=0)
    assert sorted(len(t) for _, t in folds) == [3, 3, 4]
    assert [t.tolist() for _, t in folds] == [t.tolist() for _, t in grouped_kfold(10, 3, seed=0)]
    assert [t.tolist() for _, t in folds] != [t.tolist() for _, t in grouped_kfold(10, 3, seed=1)]


def test_kfold_errors():
    with pytest.raises(DataError, match="k must be an integer >= 2"):
        grouped_kfold(10, 1)
    with pytest.raises(DataError, match="need at least 4 groups, got 3"):
        grouped_kfold(np.array([0, 0, 1, 2]), 4)
