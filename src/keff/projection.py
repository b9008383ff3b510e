"""Query-to-answer projection: maps learned from (question, answer) pairs, applied to queries.

Questions and their answers sit at different places in embedding space. A map fitted on pairs
moves a question toward its answer before the answer index is searched; the index itself is not
rebuilt. This module names the projection methods keff compares, distils a small student from a
routed teacher, and runs the grouped K-fold protocol: every question is scored exactly once,
by maps fitted on folds that hold none of its group.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from keff.arrays import l2_normalize
from keff.data import QALayout, grouped_kfold, load_beir, load_qa, qa_retrieval_task, sample_groups
from keff.data.leakage import repeats
from keff.encoders import get_encoder
from keff.errors import DataError, KeffError
from keff.estimator import n_parameters
from keff.eval import QA_METRICS, evaluate_retrieval
from keff.eval.significance import paired_bootstrap_ci, randomization_test
from keff.maps import Map, ResidualMLP, make_map, map_params

#: Projection methods: name -> (map kind in :data:`keff.maps.MAPS`, its parameters); ``None`` is
#: the untouched encoder. These are the configurations compared, not a second list of map kinds.
METHODS: dict[str, tuple[str, dict[str, Any]] | None] = {
    "identity": None,
    "procrustes": ("procrustes", {"center": True, "scale": True}),
    "affine": ("affine", {}),
    "lowrank": ("lowrank", {"rank": 64, "base": "identity"}),
    "routed-centroid": ("cluster-routed", {"routing": "centroid"}),
    "routed-question": ("cluster-routed", {"routing": "question"}),
    "contrastive": ("contrastive", {}),
}
STUDENT = "student (distilled from routed-centroid)"


def make_projection(method: str, *, seed: int = 0) -> Map | None:
    """An unfitted projection map by method name (None for ``identity``)."""
    if method not in METHODS:
        raise KeffError(f"unknown projection method {method!r} (choose from {', '.join(METHODS)})")
    if METHODS[method] is None:
        return None
    kind, params = METHODS[method]
    seeded = {"seed": seed} if "seed" in map_params(kind) else {}
    return make_map(kind, **params, **seeded)


def distill_student(teacher: Map, X: np.ndarray, *, hidden: int = 1024, seed: int = 0) -> ResidualMLP:
    """A residual MLP (identity at start) trained to reproduce ``teacher`` on questions ``X``.

    The targets are the teacher's normalised outputs; the loss is cosine; 10% of ``X`` is held
    out for early stopping (the student's own ``val_frac``).
    """
    targets = l2_normalize(teacher.transform(X))
    return ResidualMLP(hidden=hidden, base="identity", loss="cosine", seed=seed).fit(X, targets)


def fit_projection(m: Map, X: np.ndarray, Y: np.ndarray, groups: np.ndarray) -> Map:
    """Fit a projection map on pairs; maps trained against other answers also get the groups."""
    return m.fit(X, Y, groups=groups) if m.fit_takes_groups else m.fit(X, Y)


@dataclass
class ProjectionSetup:
    """Everything the K-fold protocol needs: pair vectors, the answer pool, judgements, folds."""

    Q: np.ndarray  # (n, d) question of pair i
    A: np.ndarray  # (n, d) answer of pair i
    pool: np.ndarray  # (m, d) every distinct answer: the index searched
    query_ids: list[str]
    pool_ids: list[str]
    qrels: dict[str, dict[str, int]]
    folds: list[tuple[np.ndarray, np.ndarray]]
    groups: np.ndarray
    metrics: tuple[str, ...] = QA_METRICS
    note: str | None = None
    fingerprint: str = ""
    slices: dict[str, list[str]] = field(default_factory=dict)  # name -> query ids, reported apart
    layout: dict[str, Any] = field(default_factory=dict)  # the Q/A layout the pairs were read with
    data_sha256: str = ""  # of the file the pairs were read from
    query_texts: list[str] = field(default_factory=list)  # question of pair i (for leak checks)


@dataclass
class FoldOutcome:
    """Per-query metric values of one method over all folds, and side measurements."""

    per_query: dict[str, dict[str, float]]  # metric -> qid -> value
    extra: dict[str, list[float]]


def project(m: Map | None, Q: np.ndarray) -> np.ndarray:
    """Queries mapped (or not) and L2-normalised for cosine search."""
    return Q if m is None else l2_normalize(m.transform(Q))


def kfold_projection(
    setup: ProjectionSetup,
    *,
    methods: Sequence[str],
    student: bool = True,
    seed: int = 0,
    log=None,
) -> dict[str, FoldOutcome]:
    """Fit every method on each fold's training pairs and score its held-out questions.

    Every question is scored once, by maps fitted on the other folds (which hold none of its
    group); the answer pool is never refitted. ``student`` also distils a residual MLP from the
    routed-centroid map of each fold and records its cosine to that teacher.
    """
    Q, A, pool, qrels, groups, metrics = setup.Q, setup.A, setup.pool, setup.qrels, setup.groups, setup.metrics
    query_ids, pool_ids, folds = setup.query_ids, setup.pool_ids, setup.folds
    outcomes = {
        name: FoldOutcome({mt: {} for mt in metrics}, {}) for name in [*methods, *([STUDENT] if student else [])]
    }
    for f, (train, test) in enumerate(folds):
        test_ids = [query_ids[i] for i in test]
        fold_qrels = {q: qrels[q] for q in test_ids}
        fitted = {}
        for name in methods:
            m = make_projection(name, seed=seed)
            fitted[name] = None if m is None else fit_projection(m, Q[train], A[train], groups[train])
        if student:
            fitted[STUDENT] = distill_student(fitted["routed-centroid"], Q[train], seed=seed)
            teacher_out = project(fitted["routed-centroid"], Q[test])
            cos = np.sum(project(fitted[STUDENT], Q[test]) * teacher_out, axis=1)
            outcomes[STUDENT].extra.setdefault("cosine_to_teacher", []).extend(cos.tolist())
            outcomes[STUDENT].extra.setdefault("parameters", []).append(n_parameters(fitted[STUDENT]))
        for name, m in fitted.items():
            if hasattr(m, "best_epoch_"):  # epoch 0 = the identity kept (no epoch beat it on validation)
                outcomes[name].extra.setdefault("best_epoch", []).append(int(m.best_epoch_))
            res = evaluate_retrieval(
                project(m, Q[test]),
                pool,
                test_ids,
                pool_ids,
                fold_qrels,
                system=name,
                dataset="fold",
                metrics=tuple(metrics),
                latency_queries=0,
            )
            for mt in metrics:
                outcomes[name].per_query[mt].update(res.per_query[mt])
        if log:
            log(f"  fold {f + 1}/{len(folds)} done ({len(test)} questions)")
    return outcomes


def qa_setup(
    pairs_path: Path,
    layout: QALayout | str,
    encoder: str,
    sample_groups_n: int | None,
    seed: int,
    *,
    log=print,
) -> ProjectionSetup:
    """Vectors, pool, qrels and grouped folds of one Q/A file, read from exactly ``pairs_path``
    with ``layout`` (see :func:`keff.data.load_qa`), optionally a seeded sample of its groups."""
    pairs = load_qa(pairs_path, layout=layout)
    rows = (
        np.arange(len(pairs.ids))
        if sample_groups_n is None
        else sample_groups(pairs.groups, sample_groups_n, seed=seed)
    )
    task = qa_retrieval_task(pairs, query_rows=rows, pool_rows=rows)
    enc = get_encoder(encoder)
    name = Path(pairs_path).name
    log(
        f"encoding {name} ({pairs.layout.name} layout; {len(rows)} pairs, {len(task.pool_ids)} answers) "
        f"with {encoder} (cached vectors reused)"
    )
    Q = enc.encode(task.query_texts, kind="query")
    A = enc.encode([pairs.answers[i] for i in rows], kind="doc")
    pool = enc.encode(task.pool_texts, kind="doc")
    groups = pairs.groups[rows]
    folds = grouped_kfold(groups, 5, seed=seed)
    note = (
        None
        if sample_groups_n is None
        else f"seeded sample of {sample_groups_n} groups ({len(rows)} pairs, seed {seed})"
    )
    return ProjectionSetup(Q, A, pool, task.query_ids, task.pool_ids, task.qrels, folds, groups, QA_METRICS, note,
                           enc.fingerprint, layout=pairs.layout.describe(), data_sha256=pairs.sha256,
                           query_texts=list(task.query_texts))  # fmt: skip


def summarise(outcomes: dict, metrics, seed: int, query_ids: Sequence[str] | None = None) -> list[dict]:
    """Mean and bootstrap CI of every metric per method, and the paired difference to identity
    (over ``query_ids`` when given: a slice of the evaluated queries)."""
    rows = []
    base = outcomes["identity"].per_query
    for name, out in outcomes.items():
        row = {"method": name, "metrics": {}}
        for mt in metrics:
            qids = sorted(base[mt]) if query_ids is None else sorted(query_ids)
            a = np.array([out.per_query[mt][q] for q in qids])
            b = np.array([base[mt][q] for q in qids])
            _, lo, hi = paired_bootstrap_ci(a, np.zeros_like(a), seed=seed)
            diff, dlo, dhi = paired_bootstrap_ci(a, b, seed=seed)
            p = randomization_test(a, b, seed=seed) if name != "identity" else 1.0
            row["metrics"][mt] = {"mean": float(a.mean()), "ci": [lo, hi], "diff": diff, "diff_ci": [dlo, dhi], "p": p}
        row["n_queries"] = len(base[metrics[0]]) if query_ids is None else len(query_ids)
        row.update({k: float(np.mean(v)) for k, v in out.extra.items()})
        rows.append(row)
    return rows


#: Metrics of a BEIR setup (ranked documents, graded judgements).
BEIR_METRICS = ("ndcg@10", "mrr@10", "recall@100")
#: Slices of a BEIR setup's test queries (see :func:`beir_setup`).
SEEN_SLICE = "a relevant document is also cited by a fitted query"
UNSEEN_SLICE = "only documents no fitted query cites"


def beir_setup(
    folder: str | Path, encoder: str, *, fit_split: str = "train", test_split: str = "test", log=print
) -> ProjectionSetup:
    """A BEIR folder as one fold: (query, relevant document) pairs of ``fit_split`` fit, the
    ``test_split`` queries evaluate against the whole corpus.

    A fitted query whose text repeats a test query word for word is dropped (SciFact's train split
    repeats a few). A query judged against several documents is one group. The test queries are
    also sliced by whether one of their relevant documents is cited by a fitted pair (a map can
    learn where those documents sit) or not (transfer to documents it never saw).

    Raises
    ------
    DataError
        The folder lacks ``qrels/<fit_split>.tsv`` or ``qrels/<test_split>.tsv`` (via
        :meth:`keff.data.BeirDataset.split_queries`), or the fit split has no positive pair.
    """
    ds = load_beir(folder)
    fit_ids, _ = ds.split_queries(fit_split)
    test_ids, test_texts = ds.split_queries(test_split)
    enc = get_encoder(encoder)
    log(f"encoding {Path(folder).name} with {encoder} (cached vectors are reused)")
    docs = enc.encode(ds.doc_texts, kind="doc")
    qvec = dict(zip(ds.query_ids, enc.encode(ds.query_texts, kind="query")))
    row = ds.doc_index()
    text = dict(zip(ds.query_ids, ds.query_texts))
    dropped = {q for q, rep in zip(fit_ids, repeats([text[q] for q in fit_ids], test_texts)) if rep}
    fit_qrels = ds.qrels[fit_split]
    train = [(q, d) for q in fit_ids if q not in dropped for d, r in fit_qrels[q].items() if r > 0 and d in row]
    if not train:
        raise DataError(f"no positive (query, document) pair in qrels/{fit_split}.tsv to fit on", path=folder)
    Q = np.vstack([np.stack([qvec[q] for q, _ in train]), np.stack([qvec[q] for q in test_ids])])
    A = np.vstack([docs[[row[d] for _, d in train]], np.zeros((len(test_ids), docs.shape[1]), np.float32)])
    ids = [f"{fit_split}:{i}" for i in range(len(train))] + test_ids
    fold = (np.arange(len(train)), np.arange(len(train), len(ids)))
    query_group = {q: i for i, q in enumerate(dict.fromkeys(q for q, _ in train))}
    n_fit = len(query_group)
    groups = np.array([query_group[q] for q, _ in train] + list(range(n_fit, n_fit + len(test_ids))))
    fitted_docs = {d for _, d in train}
    test_qrels = ds.qrels[test_split]
    seen = [q for q in test_ids if any(r > 0 and d in fitted_docs for d, r in test_qrels[q].items())]
    slices = {SEEN_SLICE: seen, UNSEEN_SLICE: sorted(set(test_ids) - set(seen))}
    note = (
        f"{len(train)} {fit_split} (query, document) pairs ({len(dropped)} queries identical to a {test_split} "
        f"query dropped); {len(test_ids)} {test_split} queries against all {len(docs)} documents"
    )
    texts = [text[q] for q, _ in train] + list(test_texts)
    return ProjectionSetup(Q, A, docs, ids, ds.doc_ids, test_qrels, [fold], groups, BEIR_METRICS, note,
                           enc.fingerprint, slices, query_texts=texts)  # fmt: skip
