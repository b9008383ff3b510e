"""Seeded splits that keep whole groups together (train/val/test and k-fold)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keff.errors import DataError


@dataclass(frozen=True)
class Split:
    """Sorted int64 row indices of each part; every item is in exactly one part."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def to_dict(self) -> dict[str, list[int]]:
        """The three parts as lists of ints (JSON-ready)."""
        return {name: getattr(self, name).tolist() for name in ("train", "val", "test")}


def as_groups(n_or_groups: int | np.ndarray) -> np.ndarray:
    """Group label per item: ``arange(n)`` for an int n, else a validated 1-D int array.

    Returns
    -------
    ndarray of int64, shape (n,)
        Dense labels 0..n_groups-1 (``np.unique`` inverse) per item.
    """
    if isinstance(n_or_groups, (int, np.integer)) and not isinstance(n_or_groups, bool):
        if n_or_groups < 0:
            raise DataError(f"number of items must be >= 0, got {n_or_groups}")
        return np.arange(int(n_or_groups), dtype=np.int64)
    groups = np.asarray(n_or_groups)
    if groups.ndim != 1:
        raise DataError(f"groups must be 1-D (one id per item), got shape {groups.shape}")
    if groups.size and not np.issubdtype(groups.dtype, np.integer):
        raise DataError(f"groups must be integers, got dtype {groups.dtype}")
    return np.unique(groups, return_inverse=True)[1].astype(np.int64).reshape(-1)


def _shuffled_groups(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(group order after a seeded shuffle, items per group)."""
    n_groups = int(labels.max()) + 1 if labels.size else 0
    sizes = np.bincount(labels, minlength=n_groups)
    order = np.random.default_rng(seed).permutation(n_groups)
    return order, sizes


def _rows_of(labels: np.ndarray, part_of_group: np.ndarray, part: int) -> np.ndarray:
    return np.flatnonzero(part_of_group[labels] == part).astype(np.int64)


def grouped_split(
    n_or_groups: int | np.ndarray, *, val_frac: float = 0.1, test_frac: float = 0.2, seed: int = 0
) -> Split:
    """Split items into train/val/test, assigning whole groups.

    Groups are shuffled with ``np.random.default_rng(seed)``; test is filled first, then val,
    each until it holds at least its fraction of the *items*; the rest is train. Sizes are
    therefore approximate when groups are large.

    Parameters
    ----------
    n_or_groups : int or array-like of int, shape (n,)
        Number of (ungrouped) items, or a group id per item.
    val_frac, test_frac : float
        Target fractions of items, each in [0, 1), summing to less than 1.
    seed : int
        Seed of the shuffle.

    Returns
    -------
    Split

    Raises
    ------
    DataError
        Bad fractions or groups, or too few items/groups to give every requested part (and
        train) at least one item.
    """
    for name, frac in (("val_frac", val_frac), ("test_frac", test_frac)):
        if not 0.0 <= frac < 1.0:
            raise DataError(f"{name} must be in [0, 1), got {frac}")
    if val_frac + test_frac >= 1.0:
        raise DataError(f"val_frac + test_frac must be < 1, got {val_frac + test_frac}")
    labels = as_groups(n_or_groups)
    n = labels.size
    order, sizes = _shuffled_groups(labels, seed)
    part_of_group = np.zeros(sizes.size, dtype=np.int64)  # 0 train, 1 val, 2 test
    targets = ((2, test_frac * n), (1, val_frac * n))
    i = 0
    for part, target in targets:
        filled = 0
        while filled < target and i < order.size:
            part_of_group[order[i]] = part
            filled += sizes[order[i]]
            i += 1
    split = Split(*(_rows_of(labels, part_of_group, p) for p in (0, 1, 2)))
    wanted = {"train": True, "val": val_frac > 0, "test": test_frac > 0}
    empty = [name for name, needed in wanted.items() if needed and getattr(split, name).size == 0]
    if empty:
        raise DataError(
            f"empty part(s): {', '.join(empty)}; {n} items in {sizes.size} groups are too few "
            f"for val_frac={val_frac}, test_frac={test_frac}"
        )
    return split


def grouped_kfold(groups: int | np.ndarray, k: int, *, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """K folds over whole groups, balanced by item count.

    Groups are shuffled with ``np.random.default_rng(seed)``, then taken largest first (ties in
    shuffled order) and each is given to the fold with the fewest items so far.

    Parameters
    ----------
    groups : int or array-like of int, shape (n,)
        Number of (ungrouped) items, or a group id per item.
    k : int
        Number of folds, at least 2 and at most the number of groups.
    seed : int
        Seed of the shuffle.

    Returns
    -------
    list of (train, test), length k
        Sorted int64 row indices; the test parts partition the items.
    """
    labels = as_groups(groups)
    order, sizes = _shuffled_groups(labels, seed)
    if not isinstance(k, (int, np.integer)) or k < 2:
        raise DataError(f"k must be an integer >= 2, got {k!r}")
    if k > sizes.size:
        raise DataError(f"k={k} folds need at least {k} groups, got {sizes.size}")
    order = order[np.argsort(-sizes[order], kind="stable")]
    fold_of_group = np.empty(sizes.size, dtype=np.int64)
    load = np.zeros(k, dtype=np.int64)
    for g in order:
        fold = int(np.argmin(load))
        fold_of_group[g] = fold
        load[fold] += sizes[g]
    folds = []
    for fold in range(k):
        test = _rows_of(labels, fold_of_group, fold)
        train = np.flatnonzero(fold_of_group[labels] != fold).astype(np.int64)
        folds.append((train, test))
    return folds


def sample_groups(groups: np.ndarray, n_groups: int, *, seed: int = 0) -> np.ndarray:
    """Sorted row indices of ``n_groups`` whole groups drawn at random with ``seed``.

    Parameters
    ----------
    groups : ndarray of int, shape (n,)
        Group id per row.
    n_groups : int
        How many distinct groups to keep; must not exceed the number of groups.
    """
    unique = np.unique(groups)
    if not 0 < n_groups <= unique.size:
        raise DataError(f"cannot sample {n_groups} groups from {unique.size}")
    chosen = np.random.default_rng(seed).choice(unique, size=n_groups, replace=False)
    return np.flatnonzero(np.isin(groups, chosen))
