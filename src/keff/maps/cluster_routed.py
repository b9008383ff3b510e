"""Cluster-routed query->answer map: one small subspace map per cluster of answers.

Answers are clustered by spherical k-means; each cluster gets a map that is the identity outside
its data subspace (plus a translation); a query is routed to a few clusters and its output is
the routing-weighted sum of their maps. Unlike the attempt this replaces (dense 768 x 768
rotations on ~15 pairs each, translation dropped, question-space centroids), each map moves only
the directions its pairs determine, keeps the translation, and routes on answer-space centroids.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keff.arrays import as_matrix, l2_normalize
from keff.errors import FormatError, KeffError
from keff.estimator import ArraySpec, ScalarSpec, is_finite_number
from keff.index import ExactIndex
from keff.maps.base import Floor, Map, product_floor, register_map
from keff.maps.kmeans import resolve_n_clusters, spherical_kmeans
from keff.maps.procrustes import check_flag
from keff.maps.routing import (
    centroid_routing,
    check_temperature,
    question_routing,
    routing_entropy,
    top_k_renormalise,
)
from keff.progress import progress_bar
from keff.sef import shown
from keff.threads import one_thread

ROUTINGS = ("centroid", "question")
#: The maps a ClusterRouted can apply before its clusters.
BASES = ("none", "procrustes")
#: Smallest importance p_i kept, so that log p_i stays finite for a perfectly uniform router.
P_FLOOR = 1e-6
#: Subspace directions with singular value below this fraction of the largest are dropped.
RANK_TOL = 1e-6
KMEANS_MAX_ITER, KMEANS_TOL = 100, 1e-6


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise KeffError(f"{name} must be an integer >= {minimum}; got {shown(value)}")
    return int(value)


def fit_subspace_map(
    Xq: np.ndarray, Ya: np.ndarray, rank: int, alpha: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One cluster's map ``x -> x + ((x - mu_q) @ U) @ (R - I) @ U.T + t``.

    ``U`` holds the top principal directions of the cluster's centred questions and centred
    answers stacked (``r = min(rank, m - 1)`` of them; directions with singular value below
    ``RANK_TOL`` times the largest are dropped; the rest of the columns are zero). ``R``
    maximises ``trace(R^T (Qc^T Ac + alpha * e * I))`` over orthogonal matrices, where ``Qc``,
    ``Ac`` are the centred coordinates in ``U`` and ``e`` their mean energy per direction: the
    Procrustes least-squares fit plus ``alpha * e * ||R - I||^2``, which keeps directions the
    pairs do not determine unrotated. ``t = mu_a - mu_q``.

    Parameters
    ----------
    Xq, Ya : ndarray, shape (m, d)
        The cluster's questions and answers (m may be 0 or 1: then ``U = 0``, ``R = I``).
    rank : int
    alpha : float

    Returns
    -------
    U : (d, rank), R : (rank, rank), mu_q : (d,), t : (d,), all float64
    """
    m, d = Xq.shape
    U, R = np.zeros((d, rank)), np.eye(rank)
    if m == 0:
        return U, R, np.zeros(d), np.zeros(d)
    mu_q, mu_a = Xq.mean(axis=0), Ya.mean(axis=0)
    Qc, Ac = Xq - mu_q, Ya - mu_a
    _, s, Vt = np.linalg.svd(np.vstack([Qc, Ac]), full_matrices=False)
    r = min(rank, m - 1, int((s > RANK_TOL * s[0]).sum()) if s[0] > 0 else 0)
    if r > 0:
        B = Vt[:r].T
        Qs, As = Qc @ B, Ac @ B
        energy = ((Qs**2).sum() + (As**2).sum()) / (2 * r)
        u, _, vt = np.linalg.svd(Qs.T @ As + alpha * energy * np.eye(r))
        U[:, :r], R[:r, :r] = B, u @ vt
    return U, R, mu_q, mu_a - mu_q


@register_map("cluster-routed")
class ClusterRouted(Map):
    """Per-cluster subspace maps over answer clusters, mixed by query routing.

    ``transform(X)[i] = sum_j w_ij * map_{c_ij}(X[i])`` over the clusters ``c_ij`` and weights
    ``w_ij`` of :meth:`route`; one loop over clusters (never over queries) applies each map to
    the rows routed to it. The output is not normalised (callers normalise).

    Parameters
    ----------
    n_clusters : int or {"effective_rank", "sqrt"}, default "effective_rank"
        K. "effective_rank": ``floor((sum s)^2 / sum s^2)`` over the singular values of the
        answers Y as given (NOT centred); "sqrt": ``floor(sqrt(n))``. Clamped to ``[1, n // 2]``.
    rank : int, default 16
        Subspace dimension r of every cluster map (capped at d; fewer pairs give zero columns).
    routing : {"centroid", "question"}, default "centroid"
        "centroid": ``softmax(cos(query, centroid_k) / temperature)``. "question": softmax over
        the cosines to the ``question_top_n`` nearest training questions (found with
        :class:`keff.index.ExactIndex`), summed per cluster of each neighbour's pair.
    temperature : float, default 0.1
    top_k : int, default 4
        Clusters kept per query (capped at K); their weights are renormalised to sum to one.
    question_top_n : int, default 50
        Neighbours per query for question routing.
    final_softmax : bool, default False
        Question routing only: ``softmax(log mass / temperature)`` over clusters before top-k.
    importance : bool, default False
        Question routing only: weight training question i's softmax term by
        ``p_i = 1 - H_i / log K`` (``H_i``: entropy of its own centroid routing; floored at
        ``P_FLOOR``; computed once at fit time), so sharply routed questions count more.
    alpha : float, default 1e-3
        Shrinks every cluster rotation toward the identity (see :func:`fit_subspace_map`).
    seed : int, default 0
        Seeds k-means++.
    base : {"none", "procrustes"}, default "none"
        "procrustes": first a centred, scaled orthogonal Procrustes map fitted on all pairs
        (source and target from two models, e.g. a model upgrade); the clusters, routing and
        per-cluster maps then work on its output, so each cluster corrects locally what one
        global map cannot (a "local Procrustes" map).

    Attributes
    ----------
    centroids_ : (K, d) float32, unit rows in answer space
    U_ : (K, d, r) float32; R_ : (K, r, r) float32; mu_q_, t_ : (K, d) float32
    cluster_sizes_ : (K,) int64, training pairs per cluster
    questions_ : (n_train, d) float32 unit rows, labels_ : (n_train,) int64 (question routing)
    p_ : (n_train,) float32 (importance)
    n_clusters_ : int
    """

    # Every array lives in one d-dim space (source_dim_ == target_dim_, checked on load); r is
    # the subspace rank and n the number of training questions, both bound by the arrays.
    _state = {
        "centroids_": ("n_clusters_", "source_dim_"),
        "U_": ("n_clusters_", "source_dim_", "r"),
        "R_": ("n_clusters_", "r", "r"),
        "mu_q_": ("n_clusters_", "source_dim_"),
        "t_": ("n_clusters_", "source_dim_"),
        "cluster_sizes_": ArraySpec(("n_clusters_",), np.int64),
    }
    _question_state = {
        "questions_": ArraySpec(("n", "source_dim_")),
        "labels_": ArraySpec(("n",), np.int64),
        "p_": ArraySpec(("n",)),
    }
    _base_state = {"base_W_": ArraySpec(("source_dim_", "source_dim_")), "base_b_": ArraySpec(("source_dim_",))}
    _scalars = {"n_clusters_": ScalarSpec(int, minimum=1)}

    def __init__(
        self,
        n_clusters: int | str = "effective_rank",
        rank: int = 16,
        routing: str = "centroid",
        temperature: float = 0.1,
        top_k: int = 4,
        question_top_n: int = 50,
        final_softmax: bool = False,
        importance: bool = False,
        alpha: float = 1e-3,
        seed: int = 0,
        base: str = "none",
    ) -> None:
        self.n_clusters = n_clusters
        self.rank = rank
        self.routing = routing
        self.temperature = temperature
        self.top_k = top_k
        self.question_top_n = question_top_n
        self.final_softmax = final_softmax
        self.importance = importance
        self.alpha = alpha
        self.seed = seed
        self.base = base

    # -- parameters ----------------------------------------------------------------------
    def _routing_mode(self) -> str:
        if not isinstance(self.routing, str) or self.routing not in ROUTINGS:
            raise KeffError(f"routing must be one of {ROUTINGS}; got {shown(self.routing)}")
        question_only = [n for n in ("final_softmax", "importance") if check_flag(n, getattr(self, n))]
        if self.routing == "centroid" and question_only:
            raise KeffError(f"{', '.join(question_only)} apply to routing='question' only")
        check_temperature(self.temperature)
        _check_int("top_k", self.top_k, 1)
        _check_int("question_top_n", self.question_top_n, 1)
        return self.routing

    def _check_params(self) -> None:
        self._routing_mode()
        _check_int("rank", self.rank, 1)
        _check_int("seed", self.seed, 0)
        if self.base not in BASES:
            raise KeffError(f"base must be one of {BASES}; got {shown(self.base)}")
        if not (is_finite_number(self.alpha) and self.alpha >= 0):
            raise KeffError(f"alpha must be a number >= 0; got {shown(self.alpha)}")

    def _routing_state(self) -> tuple[str, ...]:
        if self.routing != "question":
            return ()
        return ("questions_", "labels_", "p_") if self.importance else ("questions_", "labels_")

    def _state_specs(self) -> dict[str, ArraySpec]:
        """The cluster maps, plus the training questions (and importances) of question routing."""
        base = self._base_state if self.base == "procrustes" else {}
        return {**self._state, **base, **{name: self._question_state[name] for name in self._routing_state()}}

    # -- fitting -------------------------------------------------------------------------
    def _fit(self, X: np.ndarray, Y: np.ndarray) -> None:
        self._check_params()
        routing, rank = self.routing, int(self.rank)
        if X.shape[1] != Y.shape[1]:
            raise KeffError(f"questions and answers must share one space; got {X.shape[1]}-d and {Y.shape[1]}-d")
        if self.base == "procrustes":
            from keff.maps.procrustes import Procrustes

            p = Procrustes(center=True, scale=True).fit(X, Y)
            self.base_W_, self.base_b_ = (p.scale_ * p.W_).astype(np.float32), p.b_.astype(np.float32)
            X = self._base(X)
        n, d = X.shape
        K = resolve_n_clusters(self.n_clusters, Y)
        km = spherical_kmeans(Y, K, seed=int(self.seed), max_iter=KMEANS_MAX_ITER, tol=KMEANS_TOL)
        r = min(rank, d)
        U, R = np.zeros((K, d, r), np.float32), np.zeros((K, r, r), np.float32)
        mu_q, t = np.zeros((K, d), np.float32), np.zeros((K, d), np.float32)
        X64, Y64 = X.astype(np.float64), Y.astype(np.float64)
        # many small factorisations: one BLAS thread each is faster than two (keff.threads)
        with progress_bar("fitting cluster maps", total=K) as bar, one_thread():
            for k in range(K):
                rows = km.labels == k
                U[k], R[k], mu_q[k], t[k] = fit_subspace_map(X64[rows], Y64[rows], r, float(self.alpha))
                bar.advance(1)
        self.centroids_, self.U_, self.R_, self.mu_q_, self.t_ = km.centroids, U, R, mu_q, t
        self.cluster_sizes_ = np.bincount(km.labels, minlength=K).astype(np.int64)
        self.n_clusters_ = int(K)
        self._clear_cache()
        if routing == "question":
            self.questions_, self.labels_ = (
                l2_normalize(as_matrix(X, "X"), zero_rows="error", name="X"),
                km.labels.astype(np.int64),
            )
            if self.importance:
                self.p_ = self._importance(self.questions_)

    def _importance(self, Q_unit: np.ndarray) -> np.ndarray:
        K = self.centroids_.shape[0]
        if K == 1:
            return np.ones(Q_unit.shape[0], np.float32)
        H = routing_entropy(centroid_routing(Q_unit, self.centroids_, float(self.temperature)))
        return np.clip(1.0 - H / np.log(K), P_FLOOR, 1.0).astype(np.float32)

    # -- routing and applying --------------------------------------------------------------
    def route(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Clusters and weights for every row of ``X``.

        Parameters
        ----------
        X : array, shape (n, d)
            Queries (any non-zero norm: routing uses cosines).

        Returns
        -------
        ids : ndarray, shape (n, min(top_k, K)), int64
        weights : ndarray, shape (n, min(top_k, K)), float32
            Each row sums to one.
        """
        self._check_fitted()
        X = as_matrix(X)
        if X.shape[1] != self.source_dim_:
            raise KeffError(f"ClusterRouted was fitted on {self.source_dim_}-d input; got {X.shape[1]}-d")
        return self._route(self._base(X))

    def _base(self, X: np.ndarray) -> np.ndarray:
        """The base map's output (``X`` itself without one)."""
        return X if self.base != "procrustes" else (X @ self.base_W_ + self.base_b_).astype(np.float32)

    def _route(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        routing, T = self._routing_mode(), float(self.temperature)
        Xu = l2_normalize(X, zero_rows="error", name="X")
        if routing == "centroid":
            mass = centroid_routing(Xu, self.centroids_, T)
        else:
            if self._index is None:
                self._index = ExactIndex(self.questions_)
            sims, nb = self._index.search(Xu, int(self.question_top_n))
            log_p = np.log(self.p_) if self.importance else None
            mass = question_routing(
                sims, nb, self.labels_, len(self.centroids_), T, log_prior=log_p, final_softmax=self.final_softmax
            )
        return top_k_renormalise(mass, int(self.top_k))

    def _transform(self, X: np.ndarray) -> np.ndarray:
        X = self._base(X)
        ids, weights = self._route(X)
        delta, offset = self._factors()
        k = ids.shape[1]
        flat_w = weights.ravel()
        keep = np.flatnonzero(flat_w > 0)
        order = keep[np.argsort(ids.ravel()[keep], kind="stable")]
        clusters = ids.ravel()[order]
        rows, w = order // k, flat_w[order][:, None]
        bounds = np.searchsorted(clusters, np.arange(len(self.centroids_) + 1))
        out = X.copy()  # the weights sum to one, so sum_k w_k (x + delta_k(x)) = x + sum_k w_k delta_k(x)
        for c in np.flatnonzero(np.diff(bounds)):
            lo, hi = bounds[c], bounds[c + 1]
            sel = rows[lo:hi]  # a query picks a cluster at most once: no repeated rows here
            out[sel] += w[lo:hi] * ((X[sel] @ self.U_[c]) @ delta[c] + offset[c])
        return out

    def matmul_floor(self, rng: np.random.Generator) -> Floor:
        """The products of :meth:`transform` (see :meth:`Map.matmul_floor`): the base map's
        ``x @ W`` if any, the routing scores
        ``x @ centroids.T`` (or ``x @ questions.T`` with question routing), then for each of the
        ``min(top_k, K)`` clusters a row is routed to, ``(x @ U) @ D`` with ``U`` (d, r) and
        ``D`` (r, d)."""
        self._check_fitted()
        d, r = self.source_dim_, self.U_.shape[2]
        keys = self.questions_ if self.routing == "question" else self.centroids_
        route = rng.standard_normal(keys.shape[::-1]).astype(np.float32)
        clusters = product_floor(rng, *[((d, r), (r, d))] * min(int(self.top_k), self.centroids_.shape[0]))
        base = rng.standard_normal((d, d)).astype(np.float32) if self.base == "procrustes" else None

        def floor(x: np.ndarray) -> np.ndarray:
            if base is not None:
                x = x @ base
            _ = x @ route  # the routing scores: computed for their cost only
            return clusters(x)

        return floor

    def _factors(self) -> tuple[np.ndarray, np.ndarray]:
        """Cached ``D_k = (R_k - I) U_k^T`` (K, r, d) and ``o_k = t_k - (mu_q_k U_k) D_k`` (K, d)."""
        if self._delta is None:
            r = self.R_.shape[1]
            D = np.matmul(self.R_.astype(np.float64) - np.eye(r), np.swapaxes(self.U_, 1, 2).astype(np.float64))
            proj = np.einsum("kd,kdr->kr", self.mu_q_.astype(np.float64), self.U_.astype(np.float64))
            self._delta = D.astype(np.float32)
            self._offset = (self.t_ - np.einsum("kr,krd->kd", proj, D)).astype(np.float32)
        return self._delta, self._offset

    def _clear_cache(self) -> None:
        self._delta = self._offset = self._index = None

    # -- size and persistence ------------------------------------------------------------
    @property
    def nbytes_(self) -> int:
        """Bytes of every saved array (cluster maps, centroids, training questions if any)."""
        return int(sum(a.nbytes for a in self.get_state().values()))

    def _after_restore(self) -> None:
        """Cross-checks the shapes cannot express; drops cached factors."""
        if self.source_dim_ != self.target_dim_:
            claim = f"{self.source_dim_} -> {self.target_dim_}"
            raise FormatError(f"ClusterRouted arrays are {self.source_dim_}-d but the map claims {claim}")
        K = self.centroids_.shape[0]
        labels = self.labels_ if "labels_" in self._routing_state() else np.zeros(0, np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= K):
            raise FormatError(f"ClusterRouted labels_ must lie in [0, {K})")
        if "p_" in self._routing_state() and not ((self.p_ > 0) & (self.p_ <= 1)).all():
            raise FormatError("ClusterRouted importances p_ must lie in (0, 1]")
        self._clear_cache()
