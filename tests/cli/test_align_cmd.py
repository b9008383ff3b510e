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


def _fails(argv, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "Traceback" not in err[0], err
    return err[0]


def test_fit_prints_what_top1_means(run, tmp_path):
    planted_pair(tmp_path)
    res = run("align", "fit", "--source", "hash", "--target", "hash", "--source-vectors", str(tmp_path / "x.npy"),
              "--target-vectors", str(tmp_path / "y.npy"), "--out", str(tmp_path / "m.sef"))  # fmt: skip
    assert "top-1: share of mapped anchors whose nearest target among only these 30 held-out anchors" in res.output


def _npz(path):
    with open(path, "wb") as fh:  # an .npz under a .npy name
        np.savez(fh, a=np.ones((3, 2)))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: np.save(d / "bad.npy", np.array(["a", "b"])), "holds <U1 values; expected numbers"),
        (lambda d: _npz(d / "bad.npy"), "an .npz archive"),
        (lambda d: (d / "bad.npy").write_bytes(b""), "not a readable .npy array"),
        (lambda d: np.save(d / "bad.npy", np.zeros((0, 16), dtype=np.float32)), "holds no vectors"),
        (lambda d: np.save(d / "bad.npy", np.ones(16, dtype=np.float32)), "expected a 2-D array"),
    ],
)
def test_bad_vector_files_are_one_line(tmp_path, capsys, make, message):
    # regression: strings, .npz and empty .npy files gave tracebacks (or a bare "Aborted.")
    planted_pair(tmp_path)
    make(tmp_path)
    fit = ["align", "fit", "--source", "hash", "--target", "hash", "--out", str(tmp_path / "m.sef")]
    line = _fails(
        [*fit, "--source-vectors", str(tmp_path / "bad.npy"), "--target-vectors", str(tmp_path / "y.npy")], capsys
    )
    assert "bad.npy" in line and message in line
    assert not (tmp_path / "m.sef").exists()


def test_rows_that_do_not_pair_and_negative_anchor_counts_are_one_line(tmp_path, capsys):
    X, Y, _ = planted_pair(tmp_path)
    np.save(tmp_path / "y_short.npy", Y[:10])
    fit = ["align", "fit", "--source", "hash", "--target", "hash", "--out", str(tmp_path / "m.sef")]
    line = _fails(
        [*fit, "--source-vectors", str(tmp_path / "x.npy"), "--target-vectors", str(tmp_path / "y_short.npy")], capsys
    )
    assert "300 rows, but" in line and "y_short.npy has 10" in line
    line = _fails(["align", "fit", "--source", "hash", "--target", "hash", "--anchors", SAMPLE, "--n-anchors", "-5",
                   "--out", str(tmp_path / "m.sef")], capsys)  # fmt: skip
    assert "--n-anchors" in line


def test_apply_never_loads_a_hub_model_named_by_the_map(tmp_path, capsys, monkeypatch):
    from keff.encoders import sentence_transformers_backend as st_backend

    planted_pair(tmp_path, d=64)
    out = tmp_path / "m.sef"
    assert main_ok(["align", "fit", "--source", "hash", "--target", "hash", "--source-vectors", str(tmp_path / "x.npy"),
                    "--target-vectors", str(tmp_path / "y.npy"), "--out", str(out)])  # fmt: skip
    m, meta = load_map(out)
    meta["provenance"]["source"]["name"] = "someone/evil-model"
    m.save(out, meta=meta["provenance"])
    monkeypatch.setattr(st_backend, "_hub_snapshot", lambda name: pytest.fail(f"tried to load {name} from the hub"))
    texts = tmp_path / "t.txt"
    texts.write_text("hello\n")
    line = _fails(
        ["align", "apply", "--map", str(out), "--texts", str(texts), "--out", str(tmp_path / "o.npy")], capsys
    )
    assert "someone/evil-model" in line and "--encoder" in line
    # named by the user, the encoder is loaded (and its fingerprint still checked)
    assert main_ok(["align", "apply", "--map", str(out), "--texts", str(texts), "--encoder", "hash",
                    "--out", str(tmp_path / "o.npy")])  # fmt: skip
    assert np.load(tmp_path / "o.npy").shape == (1, 64)


def test_apply_normalises_rows_that_are_not_unit_length(tmp_path, capsys):
    X, Y, _ = planted_pair(tmp_path)
    out = tmp_path / "m.sef"
    assert main_ok(["align", "fit", "--source", "hash", "--target", "hash", "--source-vectors", str(tmp_path / "x.npy"),
                    "--target-vectors", str(tmp_path / "y.npy"), "--out", str(out)])  # fmt: skip
    capsys.readouterr()
    assert main_ok(["align", "apply", "--map", str(out), "--vectors", str(tmp_path / "x.npy"),
                    "--out", str(tmp_path / "o.npy")])  # fmt: skip
    assert "normalised 300 of 300 input rows to unit length" in capsys.readouterr().err
    m, _ = load_map(out)
    unit = X / np.linalg.norm(X, axis=1, keepdims=True)
    expected = m.transform(unit)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(np.load(tmp_path / "o.npy"), expected, atol=1e-5)
    assert main_ok(["align", "apply", "--map", str(out), "--vectors", str(tmp_path / "x.npy"), "--no-normalize-input",
                    "--out", str(tmp_path / "o2.npy")])  # fmt: skip
    assert "mapped as given" in capsys.readouterr().err


def test_diagnose_refuses_a_map_fitted_for_other_encoders(tmp_path, capsys):
    X, Y, _ = planted_pair(tmp_path, d=64)
    out = tmp_path / "m.sef"
    assert main_ok(["align", "fit", "--source", "hash", "--target", "hash", "--source-vectors", str(tmp_path / "x.npy"),
                    "--target-vectors", str(tmp_path / "y.npy"), "--out", str(out)])  # fmt: skip
    m, meta = load_map(out)
    meta["provenance"]["target"]["fingerprint"] = "f" * 64
    m.save(out, meta=meta["provenance"])
    capsys.readouterr()
    line = _fails(["align", "diagnose", "--source", "hash", "--target", "hash", "--texts", SAMPLE, "--map", str(out)],
                  capsys)  # fmt: skip
    assert "fitted with target" in line and "ffffffffffff" in line


def test_fit_defaults_to_the_affine_map(tmp_path):
    planted_pair(tmp_path)
    out = tmp_path / "m.sef"
    assert main_ok(["align", "fit", "--source", "hash", "--target", "hash", "--source-vectors", str(tmp_path / "x.npy"),
                    "--target-vectors", str(tmp_path / "y.npy"), "--out", str(out)])  # fmt: skip
    m, _ = load_map(out)
    assert type(m).__name__ == "Affine"
