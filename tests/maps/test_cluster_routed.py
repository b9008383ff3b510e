"""keff.maps.cluster_routed: planted per-cluster rotations, subspace identity, routing, SEF."""

from __future__ import annotations

import numpy as np
import pytest

from keff.errors import FormatError, KeffError, NotFittedError
from keff.maps import load_map
from keff.maps.cluster_routed import P_FLOOR, ClusterRouted, fit_subspace_map
from keff.maps.routing import routing_entropy, softmax_rows

D, PER, SUB = 24, 40, 4


def rotation(rng, r, min_angle=0.6):
    """A proper r x r rotation whose planes all turn by at least ``min_angle`` radians."""
    Q = np.linalg.qr(rng.standard_normal((r, r)))[0]
    R = np.eye(r)
    for i in range(0, r - 1, 2):
        a = rng.uniform(min_angle, np.pi - min_angle)
        R[i : i + 2, i : i + 2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    return Q @ R @ Q.T


def planted(rng, n_per=PER):
    """Three answer clusters around orthonormal centres; inside each, answer = centre +
    (question offset rotated by a known R_c inside a known 4-d subspace S_c), and the
    questions sit at centre - t_c. Returns X, Y, cluster of each row, and a sampler of fresh
    pairs per cluster."""
    centres = np.linalg.qr(rng.standard_normal((D, 3)))[0].T
    subs = [np.linalg.qr(rng.standard_normal((D, SUB)))[0] for _ in range(3)]
    rots = [rotation(rng, SUB) for _ in range(3)]
    shifts = [0.1 * rng.standard_normal(D) for _ in range(3)]

    def sample(c, n):
        z = 0.15 * rng.standard_normal((n, SUB))
        q = centres[c] - shifts[c] + z @ subs[c].T
        a = centres[c] + (z @ rots[c]) @ subs[c].T
        return q.astype(np.float32), a.astype(np.float32)

    parts = [sample(c, n_per) for c in range(3)]
    X = np.vstack([p[0] for p in parts])
    Y = np.vstack([p[1] for p in parts])
    return X, Y, np.repeat(np.arange(3), n_per), sample, subs


def cos_err(P, Y):
    return 1.0 - (P * Y).sum(1) / (np.linalg.norm(P, axis=1) * np.linalg.norm(Y, axis=1))


def cluster_of_group(m, X, groups):
    """The fitted cluster of each planted group (asserting a clean one-to-one recovery)."""
    ids = m.route(X)[0][:, 0]
    per_group = [np.unique(ids[groups == g]) for g in range(3)]
    assert all(u.size == 1 for u in per_group)
    found = [int(u[0]) for u in per_group]
    assert sorted(found) == [0, 1, 2]
    return found


@pytest.fixture
def fitted(rng):
    X, Y, groups, sample, subs = planted(rng)
    m = ClusterRouted(n_clusters=3, rank=SUB, temperature=0.01, top_k=2).fit(X, Y)
    return m, X, Y, groups, sample, subs


def test_planted_rotations_are_recovered_in_row_orientation(fitted):
    m, X, Y, groups, sample, subs = fitted
    assert m.n_clusters_ == 3 and m.U_.shape == (3, D, SUB) and m.R_.shape == (3, SUB, SUB)
    clusters = cluster_of_group(m, X, groups)
    assert cos_err(m.transform(X), Y).max() < 1e-3
    for c in range(3):  # fresh pairs, not seen in fitting
        q, a = sample(c, 20)
        assert cos_err(m.transform(q), a).max() < 1e-3
    # Each basis spans its planted subspace.
    for k, c in enumerate(clusters):
        assert np.allclose(np.linalg.svd(subs[k].T @ m.U_[c], compute_uv=False), 1.0, atol=1e-4)
    # Orientation: the same formula with R_k transposed misses the answers by far.
    ids = m.route(X)[0][:, 0]
    U, R, mu, t = m.U_[ids], m.R_[ids], m.mu_q_[ids], m.t_[ids]
    xc = np.einsum("nd,ndr->nr", X - mu, U)
    rot_t = np.einsum("nr,nsr->ns", xc, R)  # xc @ R^T
    moved = X + np.einsum("nr,ndr->nd", rot_t - xc, U) + t
    assert cos_err(moved, Y).mean() > 1e-2
    right = X + np.einsum("nr,ndr->nd", np.einsum("nr,nrs->ns", xc, R) - xc, U) + t
    assert np.allclose(right, m.transform(X), atol=1e-4)


def test_identity_outside_the_cluster_subspace(fitted, rng):
    m, *_ = fitted
    m.top_k = 1
    for c in range(3):
        U = m.U_[c].astype(np.float64)
        v = rng.standard_normal((5, D))
        v -= (v @ U) @ U.T  # orthogonal to U_c
        x = (m.mu_q_[c] + 0.05 * v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
        assert (m.route(x)[0][:, 0] == c).all()
        assert np.allclose(m.transform(x), x + m.t_[c], atol=1e-5)
        # Any query routed to c moves only inside span(U_c), apart from the translation.
        y = (m.mu_q_[c] + 0.05 * rng.standard_normal((5, D))).astype(np.float32)
        change = m.transform(y) - y - m.t_[c]
        assert np.abs(change - (change @ U) @ U.T).max() < 1e-5
        assert np.abs(change).max() > 1e-3  # and inside it, it does move


def test_subspace_map_edge_cases(rng):
    q, a = rng.standard_normal((1, 6)), rng.standard_normal((1, 6))
    U, R, mu, t = fit_subspace_map(q, a, 3, 1e-3)
    assert not U.any() and np.array_equal(R, np.eye(3)) and np.allclose(t, a[0] - q[0]) and np.allclose(mu, q[0])
    U, R, mu, t = fit_subspace_map(np.zeros((0, 6)), np.zeros((0, 6)), 3, 1e-3)
    assert not U.any() and not t.any()
    U, R, mu, t = fit_subspace_map(rng.standard_normal((3, 6)), rng.standard_normal((3, 6)), 5, 1e-3)
    assert np.abs(U[:, :2]).sum() > 0 and not U[:, 2:].any()  # r = m - 1 = 2, zero padding
    assert np.allclose(U[:, :2].T @ U[:, :2], np.eye(2), atol=1e-10)
    assert np.allclose(R[2:, 2:], np.eye(3)) and np.allclose(R[:2, :2] @ R[:2, :2].T, np.eye(2))


def dense_question_reference(m, X):
    """Softmax over ALL training questions, (importance-weighted), summed per cluster."""
    Xu = X / np.linalg.norm(X, axis=1, keepdims=True)
    logits = (Xu @ m.questions_.T) / m.temperature
    if m.importance:
        logits = logits + np.log(m.p_)
    w = softmax_rows(logits)
    mass = np.stack([w[:, m.labels_ == k].sum(1) for k in range(m.n_clusters_)], axis=1)
    if m.final_softmax:
        with np.errstate(divide="ignore"):
            mass = softmax_rows(np.log(mass) / m.temperature)
    order = np.argsort(-mass, axis=1, kind="stable")[:, : m.top_k]
    top = np.take_along_axis(mass, order, 1)
    return order, top / top.sum(1, keepdims=True)


@pytest.mark.parametrize("importance,final", [(False, False), (True, False), (False, True), (True, True)])
def test_question_routing_equals_the_dense_reference(rng, importance, final):
    X, Y, *_ = planted(rng, n_per=15)
    m = ClusterRouted(
        n_clusters=5, rank=3, routing="question", temperature=0.3, top_k=3,
        question_top_n=1000, importance=importance, final_softmax=final,
    ).fit(X, Y)  # fmt: skip
    Xt = rng.standard_normal((30, D)).astype(np.float32)
    ids, w = m.route(Xt)
    ref_ids, ref_w = dense_question_reference(m, Xt)
    assert np.array_equal(ids, ref_ids) and np.allclose(w, ref_w, atol=1e-5)
    # Keeping only the nearest few questions changes the weights.
    m.question_top_n = 3
    assert not np.allclose(m.route(Xt)[1], ref_w, atol=1e-3)


@pytest.mark.parametrize("routing", ["centroid", "question"])
def test_routing_weights_are_valid(rng, routing):
    X, Y, *_ = planted(rng, n_per=15)
    m = ClusterRouted(n_clusters=6, rank=3, routing=routing, top_k=4, question_top_n=10).fit(X, Y)
    ids, w = m.route(rng.standard_normal((50, D)))
    assert ids.shape == w.shape == (50, 4) and ids.dtype == np.int64 and w.dtype == np.float32
    assert np.allclose(w.sum(1), 1.0, atol=1e-6) and (w >= 0).all() and (np.diff(w, axis=1) <= 0).all()
    assert ((ids >= 0) & (ids < 6)).all() and all(len(set(r)) == 4 for r in ids.tolist())
    m.top_k = 50  # capped at K
    assert m.route(X[:3])[0].shape == (3, 6)


def test_importance_weights(rng):
    X, Y, *_ = planted(rng, n_per=15)
    m = ClusterRouted(n_clusters=3, rank=3, routing="question", importance=True, temperature=0.5).fit(X, Y)
    probs = softmax_rows(m.questions_ @ m.centroids_.T / 0.5)
    expected = np.clip(1 - routing_entropy(probs) / np.log(3), P_FLOOR, 1)
    assert np.allclose(m.p_, expected, atol=1e-5) and m.p_.shape == (45,)
    # A question between two centroids is routed less sharply than one on a centroid.
    mid = (m.centroids_[0] + m.centroids_[1])[None]
    on = m.centroids_[:1]
    H = routing_entropy(softmax_rows(np.vstack([mid, on]) @ m.centroids_.T / 0.5))
    assert H[0] > H[1]


def test_n_clusters_rules(rng):
    X, Y, *_ = planted(rng, n_per=15)
    assert ClusterRouted(n_clusters="sqrt", rank=2).fit(X, Y).n_clusters_ == 6
    assert ClusterRouted(n_clusters=100, rank=2).fit(X, Y).n_clusters_ == 22  # clamped to n // 2
    m = ClusterRouted(rank=2).fit(X, Y)
    s = np.linalg.svd(Y.astype(np.float64), compute_uv=False)
    assert m.n_clusters_ == int(s.sum() ** 2 / (s**2).sum())
    assert m.cluster_sizes_.sum() == 45 and m.centroids_.shape == (m.n_clusters_, D)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"routing": "question", "question_top_n": 7},
        {"routing": "question", "importance": True, "final_softmax": True},
        {"base": "procrustes"},
    ],
)
def test_save_load_gives_identical_outputs(rng, tmp_path, kwargs):
    X, Y, *_ = planted(rng, n_per=15)
    m = ClusterRouted(n_clusters=4, rank=3, **kwargs).fit(X, Y)
    path = m.save(tmp_path / "routed.sef")
    loaded, meta = load_map(path)
    assert isinstance(loaded, ClusterRouted) and meta["fitted"]["n_clusters_"] == 4
    Xt = rng.standard_normal((20, D)).astype(np.float32)
    assert np.array_equal(loaded.transform(Xt), m.transform(Xt))
    for a, b in zip(loaded.route(Xt), m.route(Xt)):
        assert np.array_equal(a, b)
    assert loaded.nbytes_ == m.nbytes_


def test_load_refuses_missing_or_misshapen_state(rng):
    X, Y, *_ = planted(rng, n_per=15)
    m = ClusterRouted(n_clusters=4, rank=3, routing="question").fit(X, Y)
    state = m.get_state()
    with pytest.raises(FormatError, match="lacks arrays"):
        ClusterRouted(routing="question").set_state({k: v for k, v in state.items() if k != "labels_"}, D, D)
    with pytest.raises(FormatError, match="R_ has shape"):
        ClusterRouted(routing="question").set_state({**state, "R_": state["R_"][:, :2, :2]}, D, D)


def test_unfitted_shape_and_parameter_errors(rng):
    X, Y, *_ = planted(rng, n_per=10)
    with pytest.raises(NotFittedError):
        ClusterRouted().transform(X)
    with pytest.raises(NotFittedError):
        ClusterRouted().route(X)
    with pytest.raises(KeffError, match="share one space"):
        ClusterRouted().fit(X, Y[:, :10])
    with pytest.raises(KeffError, match="rows must be paired"):
        ClusterRouted().fit(X, Y[:5])
    m = ClusterRouted(n_clusters=3, rank=2).fit(X, Y)
    with pytest.raises(KeffError, match="fitted on 24-d"):
        m.transform(X[:, :10])
    with pytest.raises(KeffError, match="fitted on 24-d"):
        m.route(X[:, :10])
    with pytest.raises(KeffError, match="2-D"):
        m.route(X[0])
    with pytest.raises(KeffError, match="row 1 has zero norm"):
        m.transform(np.vstack([X[:1], np.zeros((1, D), np.float32)]))
    bad = [
        ({"routing": "nearest"}, "routing must be"),
        ({"temperature": 0.0}, "temperature"),
        ({"top_k": 0}, "top_k"),
        ({"question_top_n": 0}, "question_top_n"),
        ({"importance": True}, "routing='question' only"),
        ({"final_softmax": 1}, "final_softmax must be True or False"),
        ({"n_clusters": "bogus"}, "n_clusters"),
        ({"rank": 0}, "rank"),
        ({"alpha": -1.0}, "alpha"),
    ]
    for kwargs, match in bad:
        with pytest.raises(KeffError, match=match):
            ClusterRouted(**kwargs).fit(X, Y)


def test_storage_for_124_clusters_of_768_d_at_rank_16(rng):
    n, d = 124 * 3, 768
    X = rng.standard_normal((n, d)).astype(np.float32)
    Y = rng.standard_normal((n, d)).astype(np.float32)
    m = ClusterRouted(n_clusters=124, rank=16, routing="question").fit(X, Y)
    assert m.U_.shape == (124, d, 16) and m.R_.shape == (124, 16, 16)
    assert m.nbytes_ == sum(a.nbytes for a in m.get_state().values())
    assert m.nbytes_ >= n * d * 4 + 124 * d * 16 * 4  # training questions are counted
    assert m.nbytes_ < 25_000_000


def test_real_skills_qa_slice(shared_data):
    folder = shared_data / "embeddings" / "skills_qa" / "minilm"
    Q = np.load(folder / "questions.npy", mmap_mode="r")[:600]
    A = np.load(folder / "answers.npy", mmap_mode="r")[:600]
    m = ClusterRouted().fit(Q, A)
    assert 1 <= m.n_clusters_ <= 300 and m.U_.shape[1:] == (384, 16)
    P = m.transform(Q)
    P /= np.linalg.norm(P, axis=1, keepdims=True)
    # In sample, routed maps bring questions clearly closer to their own answers.
    assert (P * A).sum(1).mean() > (np.asarray(Q) * A).sum(1).mean() + 0.05
    ids, w = m.route(Q[:100])
    assert np.allclose(w.sum(1), 1.0, atol=1e-6)


def test_procrustes_base_recovers_a_global_rotation_then_corrects_locally(rng):
    """Two "models": the target is the source turned by one global rotation G, then bent per
    cluster by the planted local rotations. A base Procrustes map undoes G; the clusters then
    recover the local part (which Procrustes alone cannot)."""
    X, Y, groups, sample, _ = planted(rng)
    G = np.linalg.qr(rng.standard_normal((D, D)))[0].astype(np.float32)
    local = ClusterRouted(n_clusters=3, rank=SUB, temperature=0.01, top_k=2, base="procrustes").fit(X @ G.T, Y)
    from keff.maps import Procrustes

    glob = Procrustes(center=True, scale=True).fit(X @ G.T, Y)
    fresh = [sample(c, 30) for c in range(3)]
    Xt, Yt = np.vstack([f[0] for f in fresh]) @ G.T, np.vstack([f[1] for f in fresh])
    assert cos_err(local.transform(Xt), Yt).mean() < 0.8 * cos_err(glob.transform(Xt), Yt).mean()
    assert local.get_state()["base_W_"].shape == (D, D)
    with pytest.raises(KeffError, match="base"):
        ClusterRouted(base="affine").fit(X, Y)
