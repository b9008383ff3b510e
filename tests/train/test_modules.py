"""ResidualNet: exact base at initialisation, data-dependent init, exported arrays."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="keff.train needs torch: pip install 'keff[st]'")

from keff.train.modules import ResidualNet  # noqa: E402  (imports torch)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 6)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)  # unit rows: tiny pre-activations by default
    W = rng.standard_normal((6, 5)).astype(np.float32)
    Y = (X @ W + 0.1 * rng.standard_normal((300, 5))).astype(np.float32)
    return X, Y, W


def test_identity_base_is_exact_at_initialisation(data):
    X, _, _ = data
    net = ResidualNet(6, 6, 32)
    net.init_from_data(torch.from_numpy(X), torch.from_numpy(X[:, ::-1].copy()))
    with torch.no_grad():
        assert torch.equal(net(torch.from_numpy(X)), torch.from_numpy(X))


def test_linear_base_is_exact_at_initialisation(data):
    X, Y, W = data
    b = np.arange(5, dtype=np.float32)
    net = ResidualNet(6, 5, 32, base_W=W, base_b=b)
    net.init_from_data(torch.from_numpy(X), torch.from_numpy(Y))
    with torch.no_grad():
        out = net(torch.from_numpy(X)).numpy()
    np.testing.assert_array_equal(out, (torch.from_numpy(X) @ torch.from_numpy(W) + torch.from_numpy(b)).numpy())
    assert "base_W" not in net.state_dict()  # frozen, never trained or snapshotted


def test_init_from_data_standardises_hidden_and_scales_output(data):
    X, Y, W = data
    net = ResidualNet(6, 5, 64, base_W=W)
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    net.init_from_data(Xt, Yt)
    with torch.no_grad():
        pre = net.fc1(Xt)
    np.testing.assert_allclose(pre.mean(0).numpy(), 0, atol=1e-4)
    np.testing.assert_allclose(pre.std(0, unbiased=False).numpy(), 1, rtol=1e-3)
    assert float(net.out_scale) == pytest.approx(float(np.sqrt(np.mean((Y - X @ W) ** 2))), rel=1e-5)


def test_mlp_arrays_fold_the_output_scale(data):
    X, Y, W = data
    net = ResidualNet(6, 5, 16, base_W=W)
    net.init_from_data(torch.from_numpy(X), torch.from_numpy(Y))
    with torch.no_grad():
        net.fc2.weight.normal_()
        net.fc2.bias.normal_()
        want = net(torch.from_numpy(X)).numpy()
    a = net.mlp_arrays()
    assert a["W1"].shape == (6, 16) and a["W2"].shape == (16, 5) and a["W2"].dtype == np.float32
    hidden = torch.nn.functional.gelu(torch.from_numpy(X @ a["W1"] + a["b1"])).numpy()
    np.testing.assert_allclose(X @ W + hidden @ a["W2"] + a["b2"], want, rtol=1e-5, atol=1e-5)


def test_identity_base_needs_equal_dims():
    with pytest.raises(ValueError, match="equal dims"):
        ResidualNet(6, 5, 8)
