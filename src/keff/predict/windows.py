"""(context, next unit) windows over documents of ordered unit vectors.

A window at position t of a document holds the vectors of units t-k .. t-1 (the context, oldest
first) and the vector of unit t (the target). Every window also records its document, its
position and the global rows of its context and target units, so an evaluation can remove the
context units from a retrieval pool and rank the target within its own document.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keff.errors import DataError


@dataclass(frozen=True)
class Windows:
    """Windows of one set of documents.

    Attributes
    ----------
    contexts : ndarray (n, k, d)
    targets : ndarray (n, d)
    doc : ndarray of int (n,)
        Document index of each window.
    position : ndarray of int (n,)
        Position of the target in its document (>= k).
    context_rows, target_rows : ndarray of int, (n, k) and (n,)
        Global rows (into the unit matrix the windows were cut from) of the context and target units.
    """

    contexts: np.ndarray
    targets: np.ndarray
    doc: np.ndarray
    position: np.ndarray
    context_rows: np.ndarray
    target_rows: np.ndarray

    def __len__(self) -> int:
        return len(self.targets)

    def subset(self, rows: np.ndarray) -> Windows:
        rows = np.asarray(rows)
        return Windows(self.contexts[rows], self.targets[rows], self.doc[rows], self.position[rows],
                       self.context_rows[rows], self.target_rows[rows])  # fmt: skip


def make_windows(vectors: np.ndarray, doc: np.ndarray, position: np.ndarray, k: int, docs: np.ndarray) -> Windows:
    """Every window of context length ``k`` in the documents ``docs``.

    Parameters
    ----------
    vectors : ndarray (m, d)
        One vector per unit, units of a document contiguous and in order.
    doc, position : ndarray of int (m,)
        Document index and position of each unit.
    k : int
        Context length (>= 1).
    docs : array-like of int
        The documents to cut windows from.
    """
    if k < 1:
        raise DataError(f"the context length k must be >= 1, got {k}")
    vectors = np.asarray(vectors, dtype=np.float32)
    doc, position = np.asarray(doc), np.asarray(position)
    wanted = np.isin(doc, np.asarray(docs)) & (position >= k)
    targets = np.flatnonzero(wanted)
    ctx = targets[:, None] - np.arange(k, 0, -1)[None, :]
    if len(targets) and not (doc[ctx] == doc[targets][:, None]).all():
        raise DataError("units of a document must be contiguous and in order (position counts from 0)")
    return Windows(vectors[ctx], vectors[targets], doc[targets], position[targets], ctx, targets)
