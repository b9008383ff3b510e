"""Guardrail monitors: each one on a planted failure and on a healthy case.

The last three tests replay the earlier project's failures with small seeded torch runs:
unnormalised dot-product InfoNCE (norms explode), a magnitude-dependent isotropy loss on a batch of
16 (dead regulariser) and InfoNCE on a projection plus cosine on the raw space (anti-correlation).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from keff.errors import DataError, KeffError
from keff.train import guardrails as g
from keff.train.loop import TrainingDiverged

torch = pytest.importorskip("torch", reason="keff.train needs torch: pip install 'keff[st]'")
F = torch.nn.functional


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# --- monitors on planted numpy failures ------------------------------------------------------


def test_norm_growth_flags_growing_vectors_only():
    assert g.norm_growth([1.0, 1.0], [1.0, 1.0]).status == "ok"
    assert g.norm_growth(1.6, 1.0).status == "warn"
    bad = g.norm_growth(np.array([5.0, 6.0]), np.array([1.0, 1.0]))
    assert bad.status == "fail" and bad.value == pytest.approx(5.5)
    assert "normalise" in bad.message


def test_positive_similarity_growth_floor_keeps_cosine_safe():
    # the historical run: positive dot product 32 -> 164 in three epochs
    assert g.positive_similarity_growth(164.0, 32.0).status == "fail"
    # cosine starting near 0 cannot explode through the floor
    assert g.positive_similarity_growth(0.9, 0.01).status == "ok"


def test_effective_rank_and_pairwise_cosine_catch_collapse(rng):
    healthy = rng.standard_normal((200, 32))
    r = g.effective_rank(healthy)
    assert r.status == "ok" and r.value > 20
    assert g.mean_pairwise_cosine(healthy).status == "ok"
    direction = rng.standard_normal(32)
    collapsed = direction + 0.01 * rng.standard_normal((200, 32))
    r = g.effective_rank(collapsed)
    assert r.status == "fail" and r.value < 1.6
    c = g.mean_pairwise_cosine(collapsed)
    assert c.status == "fail" and c.value > 0.99 and "collapse" in c.message


def test_identity_distance_is_reported_never_failed(rng):
    x = rng.standard_normal((10, 8))
    same = g.identity_distance(x.copy(), x)
    assert same.status == "ok" and same.value == 0.0 and "equals the identity" in same.message
    moved = g.identity_distance(x * 1.1, x)
    assert moved.status == "ok" and moved.value == pytest.approx(0.1) and "identity" not in moved.message
    with pytest.raises(DataError, match="shape"):
        g.identity_distance(x[:5], x)


def test_anticorrelation_fails_below_zero(rng):
    t = rng.standard_normal((50, 16))
    assert g.anticorrelation(t + 0.1 * rng.standard_normal(t.shape), t).status == "ok"
    bad = g.anticorrelation(-t, t, space="projected")
    assert bad.name == "anticorrelation_projected" and bad.status == "fail"
    assert bad.value == pytest.approx(-1.0) and "anti-correlated" in bad.message


def test_regulariser_share_and_batch_rank(rng):
    assert g.regulariser_gradient_share(1e-6, 1.0).status == "fail"
    assert g.regulariser_gradient_share(0.2, 1.0, name="isotropy").status == "ok"
    small = g.regulariser_batch_rank(rng.standard_normal((16, 64)))
    assert small.status == "fail" and small.value == 15 and "memory bank" in small.message
    assert g.regulariser_batch_rank(rng.standard_normal((128, 64))).status == "ok"


def test_loss_dominance():
    assert g.loss_dominance({"infonce": 1.0, "isotropy": 0.5}).status == "ok"
    d = g.loss_dominance({"infonce": 1.0, "isotropy": 1e-5})
    assert d.status == "warn" and "'infonce'" in d.message
    assert g.loss_dominance({"a": 1.0, "b": 1e-5}, fail_share=0.999).status == "fail"
    with pytest.raises(DataError):
        g.loss_dominance({"only": 1.0})


def test_divergence_counts_epochs_of_falling_loss_and_metric():
    loss = [1.0, 0.8, 0.6, 0.5, 0.4]
    assert g.divergence(loss, [0.3, 0.35, 0.4, 0.42, 0.45]).status == "ok"
    d = g.divergence(loss, [0.3, 0.35, 0.33, 0.31, 0.30])
    assert d.status == "fail" and d.value == 3
    # lower-is-better metric (a validation loss) rising is the same failure
    assert g.divergence(loss, [1.0, 0.9, 1.0, 1.1, 1.2], higher_is_better=False).status == "fail"


def test_similarity_mismatch():
    assert g.similarity_mismatch("cosine", "cosine").status == "ok"
    m = g.similarity_mismatch("dot", "cosine")
    assert m.status == "fail" and "trained with dot but evaluated with cosine" in m.message
    with pytest.raises(DataError, match="eval_similarity"):
        g.similarity_mismatch("cosine", "angular")


def test_leakage_wraps_keff_data():
    train = ["The cat sat.", "A dog ran.", "Birds fly south."]
    assert g.leakage(train, ["Fish swim.", "Trees grow."]).status == "ok"
    leak = g.leakage(train, ["Fish swim.", "the  CAT sat."])
    assert leak.status == "fail" and leak.value == 1 and "b[1] == a[0]" in leak.message
    groups = g.leakage(train, ["x", "y"], a_groups=[1, 2, 3], b_groups=[3, 4])
    assert groups.status == "fail" and "1 shared group" in groups.message


def test_split_parity_grades_ks_distance(rng):
    assert g.split_parity(rng.normal(10, 2, 500), rng.normal(10, 2, 500), what="length").status == "ok"
    drift = g.split_parity(rng.normal(10, 2, 500), rng.normal(14, 2, 500), what="length")
    assert drift.status == "fail" and drift.name == "split_parity_length" and drift.value > 0.5


def test_checkpoint_roundtrip(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 8)
    path = tmp_path / "adapter.pt"
    torch.save(model.state_dict(), path)
    probe = np.random.default_rng(1).standard_normal((5, 8)).astype(np.float32)

    def apply(m):
        return lambda x: m(torch.from_numpy(x)).detach().numpy()

    def reload(lossy=False):
        m = torch.nn.Linear(8, 8)
        state = torch.load(path)
        if lossy:  # a checkpoint that forgets the bias
            state = {k: v for k, v in state.items() if k != "bias"}
        m.load_state_dict(state, strict=False)
        return apply(m)

    ok = g.checkpoint_roundtrip(apply(model), reload, probe)
    assert ok.status == "ok" and ok.value == 0.0
    bad = g.checkpoint_roundtrip(apply(model), lambda: reload(lossy=True), probe)
    assert bad.status == "fail" and bad.value > 0 and "different outputs" in bad.message


# --- the monitor -----------------------------------------------------------------------------


def test_monitor_logs_jsonl_and_stops_on_fail(tmp_path):
    log = tmp_path / "logs" / "guardrails.jsonl"
    monitor = g.GuardrailMonitor(
        [
            lambda s: g.norm_growth(s["norm"], 1.0),
            lambda s: [g.similarity_mismatch("cosine", "cosine"), g.anticorrelation(s["out"], s["tgt"])],
        ],
        log_path=log,
    )
    t = np.eye(4)
    checks = monitor.epoch(0, norm=1.0, out=t, tgt=t)
    assert [c.status for c in checks] == ["ok", "ok", "ok"]
    with pytest.raises(g.GuardrailTripped, match="epoch 1: norm_growth") as err:
        monitor.epoch(1, norm=float("inf"), out=t, tgt=t)
    assert isinstance(err.value, TrainingDiverged) and isinstance(err.value, KeffError)
    assert [c.name for c in err.value.checks] == ["norm_growth"]
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines == monitor.log and [e["epoch"] for e in lines] == [0, 1]
    assert lines[1]["checks"][0]["value"] is None  # non-finite -> null, still valid JSON
    assert monitor.failures[0]["epoch"] == 1 and monitor.failures[0]["name"] == "norm_growth"


def test_monitor_without_stop_only_records():
    monitor = g.GuardrailMonitor(stop_on_fail=False)
    monitor.record(3, [g.similarity_mismatch("dot", "cosine")])
    assert monitor.failures[0]["epoch"] == 3
    json.dumps(monitor.log)


def test_check_rejects_unknown_status():
    with pytest.raises(DataError, match="status"):
        g.Check("x", 1.0, 0.0, "bad", "msg")


# --- the earlier project's failures, replayed ------------------------------------------------


def _pairs(n, d=64, seed=0, common=0.0):
    gen = torch.Generator().manual_seed(seed)
    x = F.normalize(torch.randn(n, d, generator=gen), dim=1)
    y = F.normalize(x + 0.5 * torch.randn(n, d, generator=gen) / d**0.5, dim=1)
    if common:
        y = y + common * F.normalize(torch.randn(d, generator=gen), dim=0)
    return x, y


def _identity_head(d=64):
    head = torch.nn.Linear(d, d, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.eye(d))
    return head


@pytest.mark.parametrize("similarity", ["dot", "cosine"])
def test_dot_product_infonce_norm_explosion_caught_in_first_epoch(similarity):
    """Asymmetric query/doc heads: dot-product logits grow norms; cosine logits do not."""
    torch.manual_seed(0)
    x, y = _pairs(2048)
    hq, hd = _identity_head(), _identity_head()
    opt = torch.optim.Adam([*hq.parameters(), *hd.parameters()], lr=1e-2)

    def stats():
        with torch.no_grad():
            q, d = hq(x), hd(y)
            return (q * d).sum(1).numpy(), torch.cat([q, d]).norm(dim=1).numpy()

    pos0, norms0 = stats()
    for i in range(0, len(x), 32):  # one epoch
        q, d = hq(x[i : i + 32]), hd(y[i : i + 32])
        if similarity == "cosine":
            logits = F.normalize(q, dim=1) @ F.normalize(d, dim=1).T / 0.05
        else:
            logits = q @ d.T
        loss = F.cross_entropy(logits, torch.arange(len(q)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    pos1, norms1 = stats()
    monitor = g.GuardrailMonitor(
        [lambda s: g.norm_growth(s["norms"], norms0), lambda s: g.positive_similarity_growth(s["pos"], pos0)]
    )
    if similarity == "dot":
        with pytest.raises(g.GuardrailTripped, match="epoch 1") as err:
            monitor.epoch(1, norms=norms1, pos=pos1)
        assert {c.name for c in err.value.checks} == {"norm_growth", "positive_similarity_growth"}
    else:
        assert all(c.status == "ok" for c in monitor.epoch(1, norms=norms1, pos=pos1))


def _iso_magnitude(z):
    """Isotropy penalty on the raw covariance: scales with the 4th power of the magnitude."""
    c = torch.cov(z.T)
    return ((c - torch.eye(z.shape[1]) * c.diagonal().mean()) ** 2).mean()


def _iso_scale_free(z):
    """Isotropy penalty on the trace-normalised covariance of unit vectors."""
    c = torch.cov(F.normalize(z, dim=1).T)
    c = c / c.trace()
    return ((c - torch.eye(z.shape[1]) / z.shape[1]) ** 2).sum() * z.shape[1]


@pytest.mark.parametrize("variant", ["magnitude_batch16", "scale_free_bank128"])
def test_isotropy_on_batch_of_16_is_flagged_dead(variant):
    torch.manual_seed(0)
    x, y = _pairs(512)
    head = _identity_head()
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    iso, bank = (_iso_magnitude, 16) if variant == "magnitude_batch16" else (_iso_scale_free, 128)
    shares, ranks = [], []
    for i in range(bank - 16, len(x), 16):
        z = head(x[i : i + 16])
        main = (1 - F.cosine_similarity(z, y[i : i + 16])).mean()
        rows = z if bank == 16 else head(x[i + 16 - bank : i + 16])
        reg = 0.1 * iso(rows)
        norms = g.gradient_norms({"main": main, "isotropy": reg}, head.parameters())
        shares.append(g.regulariser_gradient_share(norms["isotropy"], norms["main"], name="isotropy"))
        ranks.append(g.regulariser_batch_rank(rows.detach().numpy(), name="isotropy"))
        opt.zero_grad()
        (main + reg).backward()
        opt.step()
    if variant == "magnitude_batch16":
        assert all(c.status == "fail" for c in shares) and max(c.value for c in shares) < 1e-3
        assert all(c.status == "fail" and c.value == 15 for c in ranks)
    else:
        assert all(c.status == "ok" for c in shares + ranks)
        assert min(c.value for c in shares) > 0.01


@pytest.mark.parametrize("objective", ["split", "single_space"])
def test_split_projection_objective_is_flagged_anticorrelated(objective):
    """0.7 InfoNCE on projection heads + 0.3 cosine on the raw space (the LVM run).

    InfoNCE logits of one query all shift together when every target moves by the same vector, so
    the document head's offset gets no gradient and the raw cosine term cannot see the projection:
    an offset planted against the outputs stays, and the projection ends anti-correlated with its
    targets while the raw space looks fine. The single-space objective has no such blind spot.
    """
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1024, 64, generator=gen) / 8
    y = F.normalize(x + 0.5 * torch.randn(1024, 64, generator=gen) / 8, dim=1)
    y = y + 2 * F.normalize(torch.randn(64, generator=gen), dim=0)  # anisotropic targets
    model = torch.nn.Linear(64, 64)
    pq, pd = torch.nn.Linear(64, 32, bias=False), torch.nn.Linear(64, 32)
    with torch.no_grad():
        m = pq(y).mean(0)
        pd.bias.copy_(-20 * m / m.norm())
    opt = torch.optim.Adam([*model.parameters(), *pq.parameters(), *pd.parameters()], lr=1e-2)
    for _ in range(2):
        for i in range(0, len(x), 64):
            pred, tgt = model(x[i : i + 64]), y[i : i + 64]
            raw = (1 - F.cosine_similarity(pred, tgt)).mean()
            if objective == "split":
                a, b = pq(pred), pd(tgt)
                nce = F.cross_entropy(a @ b.T / a.shape[1] ** 0.5, torch.arange(len(a)))
            else:
                a, b = F.normalize(pred, dim=1), F.normalize(tgt, dim=1)
                nce = F.cross_entropy(a @ b.T / 0.07, torch.arange(len(a)))
            loss = 0.7 * nce + 0.3 * raw
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        pred = model(x)
        raw_check = g.anticorrelation(pred.numpy(), y.numpy(), space="raw")
        proj_check = g.anticorrelation(pq(pred).numpy(), pd(y).numpy(), space="projected")
    assert raw_check.status == "ok"
    if objective == "split":  # every space the loss uses is checked
        assert proj_check.status == "fail" and proj_check.value < -0.1
        assert float(pd.bias.detach().norm()) == pytest.approx(20, abs=0.1)  # InfoNCE never moved it
    # the single-space objective uses the raw space only, which is fine


def test_norm_growth_under_a_scale_invariant_loss_warns_but_never_fails():
    check = g.norm_growth(np.full(10, 5.0), np.ones(10), scale_invariant=True)
    assert check.status == "warn" and "scale-invariant" in check.message
    assert g.norm_growth(np.full(10, 5.0), np.ones(10)).status == "fail"
