"""Scoring dense query-by-document score matrices against one query set's judgements.

Fusion strategies produce a score for every (query, document) pair. A :class:`Judge` turns such
a matrix into per-query nDCG@10 with the vectorised fast path (for tuning on validation
queries, called thousands of times) and into a full :class:`~keff.eval.Result` with the IR
metrics library (for reported numbers), plus per-domain means.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from keff.eval import DEFAULT_METRICS, Result, evaluate_run, run_from_topk
from keff.eval.fast_metrics import gains_from_topk, topk_metrics
from keff.index.numpy_backend import topk_rows


class Judge:
    """Judgements of one query set over one corpus.

    Parameters
    ----------
    query_ids : sequence of str
        Row ids of every score matrix this judge sees.
    doc_ids : sequence of str
        Column ids.
    qrels : dict
        ``qid -> docid -> relevance``.
    domains : sequence of str, optional
        Domain of each query, for per-domain slices.
    """

    def __init__(self, query_ids: Sequence[str], doc_ids: Sequence[str], qrels, domains: Sequence[str] | None = None):
        self.query_ids = list(query_ids)
        self.doc_ids = list(doc_ids)
        self.qrels = qrels
        self.domains = list(domains) if domains is not None else ["all"] * len(self.query_ids)

    def _check(self, scores: np.ndarray) -> np.ndarray:
        scores = np.asarray(scores, dtype=np.float32)
        if scores.shape != (len(self.query_ids), len(self.doc_ids)):
            raise ValueError(f"score matrix {scores.shape} != ({len(self.query_ids)}, {len(self.doc_ids)})")
        return scores

    def per_query(self, scores: np.ndarray, metric: str = "ndcg@10") -> np.ndarray:
        """Fast per-query metric values (n,) of a dense score matrix."""
        k = int(metric.split("@")[1])
        _, idx = topk_rows(self._check(scores), k)
        gains, ideal, n_rel = gains_from_topk(idx, self.query_ids, self.doc_ids, self.qrels, k)
        return topk_metrics(gains, ideal, n_rel, (metric,))[metric]

    def objective(self, scores: np.ndarray) -> float:
        """Mean nDCG@10: what tuning on validation queries maximises."""
        return float(self.per_query(scores).mean())

    def result(self, scores: np.ndarray, system: str, *, k: int = 100, metrics=DEFAULT_METRICS) -> Result:
        """Library-computed metrics of a dense score matrix (top-``k`` run)."""
        top_scores, idx = topk_rows(self._check(scores), k)
        run = run_from_topk(self.query_ids, self.doc_ids, top_scores, idx)
        aggregate, per_query = evaluate_run(run, self.qrels, metrics)
        return Result(system=system, dataset="mixed", metrics=aggregate, per_query=per_query)

    def by_domain(self, per_query: dict[str, float]) -> dict[str, float]:
        """Mean of per-query values within each domain."""
        out: dict[str, list[float]] = {}
        for q, d in zip(self.query_ids, self.domains):
            out.setdefault(d, []).append(per_query[q])
        return {d: float(np.mean(v)) for d, v in out.items()}

    def domain_rows(self, domain: str) -> np.ndarray:
        """Row numbers of one domain's queries."""
        return np.flatnonzero(np.asarray(self.domains) == domain)
