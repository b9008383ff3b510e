"""ResidualMLP: exact base at initialisation, learns a planted non-linearity, early stopping,
numpy inference == torch forward, SEF round trip without torch, errors, and a real-data check."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from keff.errors import KeffError, NotFittedError
from keff.maps.affine import Affine
from keff.maps.base import load_map
from keff.maps.residual_mlp import ResidualMLP, gelu

torch = pytest.importorskip("torch", reason="fitting a ResidualMLP needs torch: pip install 'keff[st]'")


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small models train faster on one thread, especially on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def mean_cosine(A: np.ndarray, B: np.ndarray) -> float:
    return float(np.mean(np.sum(A * B, 1) / np.linalg.norm(A, axis=1) / np.linalg.norm(B, axis=1)))


@pytest.fixture(scope="module")
def planted():
    """Unit rows X (2,500 x 16), Y = X Q + 0.3 tanh(X A): a rotation plus a non-linear residual."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((2500, 16)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Q, _ = np.linalg.qr(rng.standard_normal((16, 16)))
    A = rng.standard_normal((16, 16))
    Y = (X @ Q + 0.3 * np.tanh(X @ A)).astype(np.float32)
    return X, Y


@pytest.fixture(scope="module")
def small():
    """A small 8 -> 12 problem and a map fitted on it for a few epochs (non-zero MLP)."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((120, 8)).astype(np.float32)
    Y = np.tanh(X @ rng.standard_normal((8, 12))).astype(np.float32)
    return X, Y, ResidualMLP(hidden=16, epochs=5, lr=1e-2, batch_size=32, val_frac=0.0).fit(X, Y)


def test_untrained_identity_map_equals_its_input(planted):
    X, Y = planted
    m = ResidualMLP(hidden=32, epochs=0).fit(X[:200], Y[:200])
    assert m.base_ == "identity" and m.best_epoch_ == 0
    np.testing.assert_array_equal(m.transform(X[:200]), X[:200])
    assert "base_W_" not in m.get_state()


def test_untrained_linear_map_equals_affine_on_training_rows(small):
    X, Y, _ = small
    m = ResidualMLP(hidden=16, epochs=0, val_frac=0.1).fit(X, Y)  # 8 -> 12: "auto" is linear
    assert m.base_ == "linear" and m.val_rows_.size == 12 and m.train_rows_.size == 108
    affine = Affine().fit(X[m.train_rows_], Y[m.train_rows_])
    np.testing.assert_array_equal(m.base_W_, affine.W_)
    np.testing.assert_array_equal(m.transform(X), (X @ affine.W_ + affine.b_).astype(np.float32))
    assert m.base_alpha_ == affine.alpha_


def test_learns_planted_nonlinear_residual_better_than_affine(planted):
    X, Y = planted
    train, test = slice(0, 2000), slice(2000, None)
    affine_cos = mean_cosine(Affine().fit(X[train], Y[train]).transform(X[test]), Y[test])
    m = ResidualMLP(hidden=128, base="linear", lr=1e-2, batch_size=128, epochs=60, patience=20)
    mlp_cos = mean_cosine(m.fit(X[train], Y[train]).transform(X[test]), Y[test])
    assert m.best_epoch_ > 0
    assert mlp_cos > affine_cos + 0.004, (mlp_cos, affine_cos)


def test_early_stopping_restores_the_best_epoch():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((60, 8)).astype(np.float32)
    Y = rng.standard_normal((60, 8)).astype(np.float32)  # noise: a wide MLP can only overfit
    m = ResidualMLP(hidden=256, lr=1e-2, batch_size=8, epochs=300, patience=4, val_frac=0.25).fit(X, Y)
    report = m.fit_report()
    assert report["stopped_early"] and report["epochs_run"] == m.best_epoch_ + 4 < 300
    vals = [h["val_loss"] for h in report["history"]]
    assert m.best_epoch_ == int(np.argmin(vals)) and vals[-1] > vals[m.best_epoch_]
    # The loss of the restored (numpy) map on the validation rows is the best epoch's loss.
    restored = 1.0 - mean_cosine(m.transform(X[m.val_rows_]), Y[m.val_rows_])
    assert restored == pytest.approx(report["best_val_loss"], rel=1e-5, abs=1e-6)


def test_gelu_matches_torch():
    x = np.linspace(-8, 8, 2001, dtype=np.float32)
    np.testing.assert_allclose(gelu(x), torch.nn.functional.gelu(torch.from_numpy(x)).numpy(), atol=1e-6)


def test_numpy_inference_matches_torch_forward(small):
    from keff.train.modules import ResidualNet

    X, _, m = small
    assert np.abs(m.W2_).max() > 0  # trained: the MLP part contributes
    net = ResidualNet(8, 12, 16, base_W=m.base_W_, base_b=m.base_b_)
    with torch.no_grad():
        net.fc1.weight.copy_(torch.from_numpy(m.W1_.T))
        net.fc1.bias.copy_(torch.from_numpy(m.b1_))
        net.fc2.weight.copy_(torch.from_numpy(m.W2_.T))
        net.fc2.bias.copy_(torch.from_numpy(m.b2_))
        want = net.eval()(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(m.transform(X), want, rtol=1e-5, atol=1e-5)


def test_seeded_fit_repeats(small):
    X, Y, m = small
    again = ResidualMLP(**m.get_params()).fit(X, Y)
    for name, arr in m.get_state().items():
        np.testing.assert_array_equal(arr, again.get_state()[name])
    other = ResidualMLP(**{**m.get_params(), "seed": 1}).fit(X, Y)
    assert not np.array_equal(other.W1_, m.W1_)


@pytest.mark.parametrize("base", ["linear", "identity"])
def test_save_load_round_trip(tmp_path, base):
    rng = np.random.default_rng(9)
    X = rng.standard_normal((80, 6)).astype(np.float32)
    Y = np.sin(X).astype(np.float32)
    m = ResidualMLP(hidden=8, base=base, epochs=3, batch_size=16).fit(X, Y)
    path = m.save(tmp_path / "m.sef", meta={"fit": m.fit_report()["best_epoch"]})
    loaded, meta = load_map(path)
    assert isinstance(loaded, ResidualMLP) and loaded.base_ == base
    assert loaded.best_epoch_ == m.best_epoch_ and meta["provenance"] == {"fit": m.best_epoch_}
    np.testing.assert_array_equal(loaded.transform(X), m.transform(X))
    assert set(loaded.get_state()) == set(m.get_state())
    with pytest.raises(NotFittedError, match="history is not saved"):
        loaded.fit_report()


def test_applying_a_loaded_map_never_imports_torch(tmp_path, small):
    X, _, m = small
    path = m.save(tmp_path / "m.sef")
    np.save(tmp_path / "x.npy", X)
    code = (
        "import sys, numpy as np\n"
        "import keff.maps.residual_mlp\n"
        "from keff.maps.base import load_map\n"
        f"m, _ = load_map({str(path)!r})\n"
        f"out = m.transform(np.load({str(tmp_path / 'x.npy')!r}))\n"
        f"np.save({str(tmp_path / 'out.npy')!r}, out)\n"
        "print(','.join(k for k in ('torch', 'keff.train.modules') if k in sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == ""
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), m.transform(X))


def test_unfitted_and_shape_errors(small):
    X, Y, m = small
    with pytest.raises(NotFittedError):
        ResidualMLP().transform(X)
    with pytest.raises(KeffError, match="fitted on 8-d input; got 5-d"):
        m.transform(X[:, :5])
    with pytest.raises(KeffError, match="base=.identity. needs equal dimensions; got source 8-d and target 12-d"):
        ResidualMLP(base="identity", epochs=0).fit(X, Y)
    with pytest.raises(KeffError, match="rows"):
        ResidualMLP(epochs=0).fit(X, Y[:-1])
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(KeffError, match="NaN"):
        ResidualMLP(epochs=0).fit(bad, Y)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"loss": "l1"}, "unknown loss"),
        ({"base": "pca"}, "base must be one of"),
        ({"val_frac": 1.0}, "val_frac"),
        ({"hidden": 0}, "hidden"),
        ({"dropout": 1.0}, "dropout"),
        ({"patience": 0}, "patience"),
    ],
)
def test_bad_parameters_are_refused(small, params, match):
    X, Y, _ = small
    with pytest.raises(KeffError, match=match):
        ResidualMLP(epochs=1, **params).fit(X, Y)


def test_diverging_training_raises():
    from keff.train.loop import TrainingDiverged

    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 8)).astype(np.float32)
    with pytest.raises(TrainingDiverged, match="lower the learning rate"):
        ResidualMLP(hidden=16, loss="mse", lr=1e30, epochs=5).fit(X, X[:, ::-1])


@pytest.mark.slow
def test_real_scifact_minilm_to_mpnet(shared_data, capsys):
    emb = shared_data / "embeddings" / "scifact"
    X = np.load(emb / "minilm" / "corpus.npy", mmap_mode="r")[:2500]
    Y = np.load(emb / "mpnet" / "corpus.npy", mmap_mode="r")[:2500]
    train, test = slice(0, 2000), slice(2000, 2500)
    m = ResidualMLP(epochs=25, patience=5).fit(X[train], Y[train])
    mlp_cos = mean_cosine(m.transform(X[test]), Y[test])
    base_cos = mean_cosine(m.base_transform(np.asarray(X[test])), Y[test])
    affine_cos = mean_cosine(Affine().fit(X[train], Y[train]).transform(X[test]), Y[test])
    random_map = np.random.default_rng(0).standard_normal((384, 768)).astype(np.float32)
    random_cos = mean_cosine(X[test] @ random_map, Y[test])
    with capsys.disabled():
        print(
            f"\nSciFact minilm->mpnet held-out mean cosine: ResidualMLP {mlp_cos:.4f} "
            f"(best epoch {m.best_epoch_}; its base {base_cos:.4f}), Affine {affine_cos:.4f}, "
            f"random {random_cos:.4f}"
        )
    assert m.base_ == "linear"
    assert mlp_cos > random_cos + 0.5
    assert mlp_cos >= base_cos - 0.01  # early stopping never keeps a clearly worse MLP
