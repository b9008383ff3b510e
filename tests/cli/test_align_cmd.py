"""``keff align fit / apply / diagnose``."""

from __future__ import annotations

import numpy as np
import pytest

from keff.cli import main
from keff.cli.demo_cmd import sample_corpus_dir
from keff.maps import load_map

SAMPLE = str(sample_corpus_dir())


def planted_pair(tmp_path, n=300, d=16, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    Y = (X @ Q).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y)
    return X, Y, Q


def test_fit_from_vectors_recovers_rotation_and_records_provenance(run, tmp_path):
    X, Y, Q = planted_pair(tmp_path)
    out = tmp_path / "m.sef"
    res = run("align", "fit", "--source", "hash", "--target", "hash", "--source-vectors", str(tmp_path / "x.npy"),
              "--target-vectors", str(tmp_path / "y.npy"), "--map", "procrustes", "--out", str(out))  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "mean cosine" in res.output
    m, meta = load_map(out)
    assert np.allclose(m.transform(X[:5]), Y[:5], atol=1e-4)
    prov = meta["provenance"]
    assert prov["anchors"]["n_fit"] == 270 and prov["fit_quality"]["n"] == 30
    assert prov["fit_quality"]["cosine_after"] > 0.999
    assert prov["source"]["fingerprint"] and prov["command"]


def test_fit_on_texts_then_apply_texts_and_vectors(run, tmp_path):
    out = tmp_path / "m.sef"
    res = run("align", "fit", "--source", "hash", "--target", "hash", "--anchors", SAMPLE, "--map", "affine",
              "--holdout", "0.2", "--out", str(out))  # fmt: skip
    assert res.exit_code == 0, res.output
    texts = tmp_path / "t.txt"
    texts.write_text("how to knead dough\n\nwhat is a pod\n")
    res = run("align", "apply", "--map", str(out), "--texts", str(texts), "--out", str(tmp_path / "o.npy"))
    assert res.exit_code == 0, res.output
    mapped = np.load(tmp_path / "o.npy")
    assert mapped.shape == (2, 64)
    assert np.allclose(np.linalg.norm(mapped, axis=1), 1, atol=1e-5)


def test_apply_refuses_a_map_from_another_encoder(tmp_path, capsys):
    X, Y, _ = planted_pair(tmp_path, d=64)
    out = tmp_path / "m.sef"
    assert main_ok(["align", "fit", "--source", "hash", "--target", "hash", "--source-vectors", str(tmp_path / "x.npy"),
                    "--target-vectors", str(tmp_path / "y.npy"), "--out", str(out)])  # fmt: skip
    m, meta = load_map(out)
    meta["provenance"]["source"]["fingerprint"] = "0" * 64  # as if fitted on another model's vectors
    m.save(out, meta=meta["provenance"])
    texts = tmp_path / "t.txt"
    texts.write_text("hello\n")
    with pytest.raises(SystemExit) as exc:
        main(["align", "apply", "--map", str(out), "--texts", str(texts), "--out", str(tmp_path / "o.npy")])
    assert exc.value.code == 2
    assert "fingerprint" in capsys.readouterr().err
    assert not (tmp_path / "o.npy").exists()


def main_ok(argv):
    try:
        main(argv)
    except SystemExit as exc:
        return exc.code in (0, None)
    return True


def test_diagnose_prints_before_and_after(run):
    res = run("align", "diagnose", "--source", "hash", "--target", "minilm", "--texts", SAMPLE, "--n", "40")
    assert res.exit_code == 0, res.output
    assert "before" in res.output and "after" in res.output
    assert "n/a: different dimensions" in res.output  # 64-d hash vs 384-d minilm
