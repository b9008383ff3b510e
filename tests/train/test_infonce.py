"""keff.train.infonce: hard-negative mining, group reciprocal rank, the isotropy loss, and the
trainer's guardrails, seeding and settings checks on planted failures."""

from __future__ import annotations

import numpy as np
import pytest

from keff.errors import KeffError
from keff.train import guardrails as G
from keff.train.infonce import InfoNCEConfig, _isotropy, group_rr, mine_hard_negatives, train_infonce

torch = pytest.importorskip("torch", reason="keff.train needs torch: pip install 'keff[st]'")
from keff.train.heads import make_head  # noqa: E402  (imports torch)


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture
def pairs():
    """200 related pairs in 16-d (answer = question through a fixed linear distortion plus noise),
    160 to train and 40 to validate."""
    rng = np.random.default_rng(0)
    M = np.eye(16) + 1.5 * rng.standard_normal((16, 16)) / 4
    X = unit(rng.standard_normal((200, 16)))
    Y = unit(X @ M + 0.1 * rng.standard_normal((200, 16)))
    return X, Y, np.arange(200) // 2, np.arange(160), np.arange(160, 200)


def brute_force_negatives(Q, A, groups, k):
    s = unit(Q) @ unit(A).T
    out = np.full((len(Q), k), -1)
    for i in range(len(Q)):
        others = [j for j in np.argsort(-s[i], kind="stable") if groups[j] != groups[i]]
        out[i, : min(k, len(others))] = others[:k]
    return out


# --- mining, ranking, isotropy ----------------------------------------------------------------


@pytest.mark.parametrize("block", [7, 2048])
def test_hard_negatives_are_the_top_k_outside_the_own_group(block):
    rng = np.random.default_rng(0)
    Q, A = rng.standard_normal((50, 8)), rng.standard_normal((50, 8))
    groups = rng.integers(0, 12, 50)
    got = mine_hard_negatives(Q, A, groups, 5, block=block)
    assert got.shape == (50, 5) and got.dtype == np.int64
    assert not (groups[got] == groups[:, None]).any()
    assert np.array_equal(got, brute_force_negatives(Q, A, groups, 5))


def test_hard_negatives_pad_with_minus_one_when_candidates_run_out():
    rng = np.random.default_rng(1)
    Q, A = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    groups = np.array([0, 0, 0, 0, 1, 2])  # group 0 has 2 outside answers; groups 1, 2 have 5
    got = mine_hard_negatives(Q, A, groups, 8)  # k above the number of answers
    assert np.array_equal(got, brute_force_negatives(Q, A, groups, 8))
    assert (got[:4, 2:] == -1).all() and (got[:4, :2] >= 4).all()
    assert (got[4:, :5] >= 0).all() and (got[4:, 5:] == -1).all()
    assert (mine_hard_negatives(Q, A, np.zeros(6, int), 3) == -1).all()  # one group: no negatives


def test_group_rr_on_a_hand_made_pool():
    pool = np.eye(4, dtype=np.float32)
    queries = np.array([[1, 0.5, 0, 0], [1, 0.5, 0, 0], [0, 0, 0, 1]], dtype=np.float32)
    rr = group_rr(queries, pool, np.array([0, 1, 9]), np.array([0, 1, 2, 3]))
    assert rr.tolist() == [1.0, 0.5, 0.0]  # first, second, group absent from the pool
    both = group_rr(queries[:1], pool, np.array([1]), np.array([0, 1, 1, 3]))
    assert both.tolist() == [0.5]  # the best row of the group counts


def test_isotropy_loss_is_zero_when_isotropic_and_scale_free():
    iso = torch.cat([torch.eye(8), -torch.eye(8)])  # centred covariance proportional to I
    assert float(_isotropy(iso, None)) == pytest.approx(0.0, abs=1e-6)
    gen = torch.Generator().manual_seed(0)
    squashed = torch.randn(64, 8, generator=gen) * torch.tensor([5.0] + [0.1] * 7)
    value = float(_isotropy(squashed, None))
    assert value > 1.0
    assert float(_isotropy(3 * squashed, None)) == pytest.approx(value, rel=1e-4)
    assert float(_isotropy(squashed[:32], squashed[32:])) == pytest.approx(value, rel=1e-4)  # the bank counts


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"temperature": 0.5}, "temperature 0.5 must lie in its bounds"),
        ({"hard_negatives": -1}, "hard_negatives must be >= 0"),
        ({"epochs": 0}, "epochs must be >= 1"),
        ({"lr": 0.0}, "lr must be > 0"),
        ({"isotropy_weight": -0.1}, "isotropy_weight must be >= 0"),
        ({"weight_decay": float("nan")}, "weight_decay must be >= 0"),
    ],
)
def test_bad_settings_are_keff_errors(pairs, settings, message):
    X, Y, g, fit, val = pairs
    with pytest.raises(KeffError, match=message):
        train_infonce(X, Y, g, fit, val, query_head=lambda d: make_head("linear", d), config=InfoNCEConfig(**settings))


def test_too_few_rows_are_a_keff_error(pairs):
    X, Y, g, fit, _ = pairs
    with pytest.raises(KeffError, match="at least 2 training pairs and 1 validation pair"):
        train_infonce(X, Y, g, fit, np.array([], int), query_head=lambda d: make_head("linear", d))


# --- planted failures through the trainer -----------------------------------------------------


class GrowingScale(torch.nn.Module):
    """``x * exp(s)`` with a learnable ``s`` whose gradient is forced to -1, so every optimiser
    step grows the output (the cosine loss itself cannot see a scale: this plants the failure an
    unnormalised loss causes)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.s = torch.nn.Parameter(torch.zeros(()))
        self.s.register_hook(lambda grad: torch.full_like(grad, -1.0))

    def forward(self, x):
        return x * self.s.exp()

    def arrays(self):
        return {"s": self.s.detach().numpy().copy()}


class Negated(torch.nn.Module):
    """``-x * w``: every output points away from its frozen input from the start."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))

    def forward(self, x):
        return -x * self.w

    def arrays(self):
        return {"w": self.w.detach().numpy().copy()}


def test_growing_norms_under_the_cosine_loss_are_flagged_in_the_first_epoch_but_not_fatal(pairs):
    """The adapter loss normalises its outputs, so a growing scale cannot change what is learnt:
    the guardrail warns from the first epoch (the log says so) and training goes on. The fatal
    case, an unnormalised dot-product InfoNCE, is replayed in test_guardrails.py."""
    X, Y, g, fit, val = pairs
    config = InfoNCEConfig(lr=0.5, epochs=3, batch_size=32, patience=3)
    result = train_infonce(X, Y, g, fit, val, query_head=GrowingScale, config=config)
    first = next(c for c in result.log[1]["checks"] if c["name"] == "norm_growth")
    assert first["status"] == "warn" and "scale-invariant" in first["message"]


def test_anticorrelated_head_trips_at_epoch_zero(pairs):
    X, Y, g, fit, val = pairs
    with pytest.raises(G.GuardrailTripped) as err:
        train_infonce(X, Y, g, fit, val, query_head=Negated, config=InfoNCEConfig(epochs=2))
    assert err.value.epoch == 0
    assert "anticorrelation_frozen" in [c.name for c in err.value.checks]


def test_monitor_that_does_not_stop_records_the_failure(pairs):
    X, Y, g, fit, val = pairs
    monitor = G.GuardrailMonitor(stop_on_fail=False)
    result = train_infonce(X, Y, g, fit, val, query_head=Negated, config=InfoNCEConfig(epochs=1), monitor=monitor)
    assert result.log is monitor.log and len(result.log) == 2
    assert {"epoch": 0, "name": "anticorrelation_frozen"}.items() <= monitor.failures[0].items()


# --- seeding and the result -------------------------------------------------------------------


def test_seeded_runs_match_and_leave_the_global_torch_rng_alone(pairs):
    X, Y, g, fit, val = pairs
    config = InfoNCEConfig(epochs=3, lr=1e-2, hard_negatives=4, batch_size=32, predictor_weight=0.5, seed=3)

    def run():
        return train_infonce(X, Y, g, fit, val, query_head=lambda d: make_head("lowrank", d, rank=4), config=config)

    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = run()
    assert torch.equal(torch.get_rng_state(), state)
    b = run()
    assert a.best_epoch == b.best_epoch > 0
    assert all(np.array_equal(a.query_arrays[k], b.query_arrays[k]) for k in a.query_arrays)
    assert a.doc_arrays is None and a.history == b.history
    assert len(a.history) == len(a.log) and a.history[0]["train_loss"] is None
    assert a.val_best.mean() == pytest.approx(a.history[a.best_epoch]["val_mrr"])
    assert a.val_identity.mean() == pytest.approx(a.history[0]["val_mrr"])
    assert 0.02 <= a.temperature <= 0.2 and "predictor_identity_distance" in a.extra
