"""Held-out evaluation of adapters against the frozen encoder (the CLI's and the study's protocol).

:func:`evaluate_adapters` fits each adapter on every fold's training pairs and scores that fold's
test questions (the answer pool is never refitted; an asymmetric adapter's document head
transforms the pool); the per-question scores feed :func:`keff.projection.summarise`
(bootstrap CIs, paired differences and randomisation tests against the identity). Folds may be
grouped k-fold, a data set's own train/test split, or one fold per held-out domain
(:func:`domain_folds`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from keff.adapters.asym import AsymAdapter
from keff.adapters.query import QueryAdapter
from keff.arrays import l2_normalize
from keff.errors import KeffError
from keff.estimator import n_parameters
from keff.eval import evaluate_retrieval
from keff.maps import ContrastiveMap
from keff.projection import FoldOutcome, ProjectionSetup

#: A row to evaluate: None (the identity), or (class, parameters) with the class one of
#: QueryAdapter, AsymAdapter or ContrastiveMap.
MethodSpec = tuple[type, dict[str, Any]] | None
KINDS = {"query": QueryAdapter, "asym": AsymAdapter}


def domain_folds(domains: np.ndarray) -> tuple[list[str], list[tuple[np.ndarray, np.ndarray]]]:
    """One fold per domain: (train on every other domain, test on it); returns (names, folds)."""
    domains = np.asarray(domains)
    names = sorted(set(domains.tolist()))
    if len(names) < 2:
        raise KeffError(f"leave-one-domain-out needs at least two domains, got {names}")
    return names, [(np.flatnonzero(domains != d), np.flatnonzero(domains == d)) for d in names]


def fit_method(spec: tuple[type, dict[str, Any]], Q, A, groups, domains, seed: int) -> Any:
    """Fit one row's estimator on training pairs (adapters as trained: ``do_no_harm=False``; the
    rule is applied when scoring a default row)."""
    cls, params = spec
    if cls is ContrastiveMap:
        return cls(seed=seed).fit(Q, A, groups=groups)
    return cls(**{"do_no_harm": False, **params, "seed": seed}).fit(Q, A, groups, domains, progress=False)


def searched(m: Any, Q: np.ndarray, pool: np.ndarray, *, refused: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(queries, pool) as searched: normalised, through the adapter's heads unless ``refused``."""
    if m is None or refused:
        return Q, pool
    if isinstance(m, AsymAdapter):
        return l2_normalize(m.transform_queries(Q)), l2_normalize(m.transform_docs(pool))
    return l2_normalize(m.transform(Q)), pool


def evaluate_adapters(
    setup: ProjectionSetup,
    folds: list[tuple[np.ndarray, np.ndarray]],
    methods: Mapping[str, MethodSpec],
    defaults: Mapping[str, str] | None = None,
    *,
    domains: np.ndarray | None = None,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> dict[str, FoldOutcome]:
    """Fit every method on each fold's training pairs and score its test questions.

    Parameters
    ----------
    setup : ProjectionSetup
        Pair vectors, the answer pool, judgements and groups (``setup.folds`` is not used).
    folds : list of (train rows, test rows)
    methods : mapping of row name to MethodSpec
        Must include ``"identity": None``.
    defaults : mapping of row name to a method name, optional
        Extra rows scoring that method's fitted adapter after the do-no-harm rule: the identity
        wherever the adapter's validation did not accept it.
    domains : ndarray, optional
        A domain per pair, passed to adapters validated by domain.

    Returns
    -------
    dict of row name to FoldOutcome
        Per-question metrics, plus ``train_seconds``, ``parameters``, ``best_epoch`` and
        ``accepted_by_do_no_harm`` per fold in ``extra``.
    """
    if "identity" not in methods or methods["identity"] is not None:
        raise KeffError("methods must include the identity as 'identity': None")
    defaults = dict(defaults or {})
    Q, A, pool, groups, metrics = setup.Q, setup.A, setup.pool, setup.groups, setup.metrics
    names = [*methods, *defaults]
    out = {name: FoldOutcome({mt: {} for mt in metrics}, {}) for name in names}
    for f, (train, test) in enumerate(folds):
        test_ids = [setup.query_ids[i] for i in test]
        fold_qrels = {q: setup.qrels[q] for q in test_ids}
        dom = None if domains is None else np.asarray(domains)[train]
        fitted: dict[str, Any] = {}
        for name, spec in methods.items():
            t0 = time.perf_counter()
            fitted[name] = None if spec is None else fit_method(spec, Q[train], A[train], groups[train], dom, seed)
            m, extra = fitted[name], out[name].extra
            extra.setdefault("train_seconds", []).append(time.perf_counter() - t0)
            extra.setdefault("parameters", []).append(n_parameters(m))
            if hasattr(m, "best_epoch_"):
                extra.setdefault("best_epoch", []).append(int(m.best_epoch_))
            if hasattr(m, "improved_"):
                extra.setdefault("accepted_by_do_no_harm", []).append(float(m.improved_))
        for name in names:
            m = fitted[defaults.get(name, name)]
            refused = name in defaults and not m.improved_
            if name in defaults:
                out[name].extra.setdefault("accepted_by_do_no_harm", []).append(float(not refused))
            q, p = searched(m, Q[test], pool, refused=refused)
            res = evaluate_retrieval(q, p, test_ids, setup.pool_ids, fold_qrels, system=name, dataset="fold",
                                     metrics=tuple(metrics), latency_queries=0)  # fmt: skip
            for mt in metrics:
                out[name].per_query[mt].update(res.per_query[mt])
        if log:
            log(f"  fold {f + 1}/{len(folds)} done ({len(test)} questions)")
    return out
