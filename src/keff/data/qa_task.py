"""Turn a Q/A pair set into a retrieval task: queries, a pool of distinct answers, and qrels."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from keff.data.qa import QAPairs
from keff.errors import DataError


@dataclass(frozen=True)
class QARetrievalTask:
    """Questions to run against a pool of answers, with their relevance judgements.

    Attributes
    ----------
    query_ids : list of str, length n_queries
        The pair ids of the queries.
    query_texts : list of str, length n_queries
        The questions.
    pool_ids : list of str, length n_pool
        ``"a" + sha1(answer text)[:16]`` per distinct answer text.
    pool_texts : list of str, length n_pool
        Distinct answer texts of the pool rows, in order of first appearance.
    qrels : dict
        ``query id -> {pool id: 1}`` for every relevant pool answer.
    query_rows : ndarray of int64, shape (n_queries,)
        Row of each query in the :class:`~keff.data.qa.QAPairs` it came from.
    """

    query_ids: list[str]
    query_texts: list[str]
    pool_ids: list[str]
    pool_texts: list[str]
    qrels: dict[str, dict[str, int]]
    query_rows: np.ndarray


def answer_id(text: str) -> str:
    """Stable pool id of an answer text: ``"a"`` + the first 16 hex digits of its SHA-1."""
    return "a" + hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


def _rows(rows: Sequence[int] | None, n: int, name: str) -> np.ndarray:
    """Validate row indices into a pair set of size ``n`` (default: all rows)."""
    if rows is None:
        return np.arange(n, dtype=np.int64)
    arr = np.asarray(rows)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise DataError(f"{name} must be a 1-D sequence of integer row indices")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        raise DataError(f"{name} has indices outside [0, {n}) (the pair set has {n} rows)")
    return arr


def qa_retrieval_task(
    pairs: QAPairs,
    query_rows: Sequence[int] | None = None,
    pool_rows: Sequence[int] | None = None,
) -> QARetrievalTask:
    """Build a retrieval task from a Q/A pair set.

    The pool holds the distinct answer texts of ``pool_rows``. An answer text's key set is the
    union of the relevance keys of every pair (in the whole set) with that exact text; a pool
    answer is relevant to a query when its key set meets the query pair's relevance keys.

    Parameters
    ----------
    pairs : QAPairs
        The loaded pair set.
    query_rows : sequence of int, optional
        Rows whose questions are the queries (no repeats); default all rows.
    pool_rows : sequence of int, optional
        Rows whose answers form the pool; default all rows.

    Returns
    -------
    QARetrievalTask

    Raises
    ------
    DataError
        Bad row indices, an empty pool, or a query with no relevant answer in the pool (the
        message names the query: choose a pool that holds an answer for every query).
    """
    n = len(pairs.ids)
    qrows = _rows(query_rows, n, "query_rows")
    prows = _rows(pool_rows, n, "pool_rows")
    if len(np.unique(qrows)) != len(qrows):
        raise DataError("query_rows has repeated rows")
    if prows.size == 0:
        raise DataError("pool_rows is empty: the pool needs at least one answer")

    text_keys: dict[str, set[str]] = {}
    for text, keys in zip(pairs.answers, pairs.relevance_keys):
        text_keys.setdefault(text, set()).update(keys)
    pool_texts = list(dict.fromkeys(pairs.answers[i] for i in prows))
    pool_ids = [answer_id(t) for t in pool_texts]
    if len(set(pool_ids)) != len(pool_ids):  # pragma: no cover - a 64-bit SHA-1 prefix collision
        raise DataError("two distinct answer texts share a pool id (SHA-1 prefix collision)")

    # invert: key -> pool positions, so each query touches only the answers it shares a key with
    by_key: dict[str, list[int]] = {}
    for pos, text in enumerate(pool_texts):
        for key in text_keys[text]:
            by_key.setdefault(key, []).append(pos)

    qrels: dict[str, dict[str, int]] = {}
    for row in qrows:
        qid = pairs.ids[row]
        hits = sorted({pos for key in pairs.relevance_keys[row] for pos in by_key.get(key, ())})
        if not hits:
            raise DataError(
                "query has no relevant answer in the pool (choose pool_rows that include an "
                "answer sharing one of its relevance keys)",
                path=pairs.path,
                item_id=qid,
            )
        qrels[qid] = {pool_ids[pos]: 1 for pos in hits}
    return QARetrievalTask(
        query_ids=[pairs.ids[r] for r in qrows],
        query_texts=[pairs.questions[r] for r in qrows],
        pool_ids=pool_ids,
        pool_texts=pool_texts,
        qrels=qrels,
        query_rows=qrows,
    )
