"""Connected components of items that share keys (union-find), for leak-free grouped splits."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def key_components(item_keys: Sequence[Iterable[str]]) -> np.ndarray:
    """Group items that share any key, transitively.

    Parameters
    ----------
    item_keys : sequence of iterables of str, length n
        The keys of each item (e.g. ``"doc=123"``, ``"answer=<sha1>"``).

    Returns
    -------
    groups : ndarray of int64, shape (n,)
        Component id per item, numbered 0, 1, ... in order of first appearance: item 0 is in
        group 0, the first item not connected to it opens group 1, and so on.
    """
    n = len(item_keys)
    parent = list(range(n))

    def find(i: int) -> int:
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:  # path compression
            parent[i], i = root, parent[i]
        return root

    owner: dict[str, int] = {}
    for i, keys in enumerate(item_keys):
        for key in keys:
            j = owner.setdefault(key, i)
            if j != i:
                ri, rj = find(i), find(j)
                if ri != rj:
                    # keep the smaller index as root so numbering follows first appearance
                    parent[max(ri, rj)] = min(ri, rj)
    groups = np.empty(n, dtype=np.int64)
    label: dict[int, int] = {}
    for i in range(n):
        groups[i] = label.setdefault(find(i), len(label))
    return groups
