"""The index scale study: its data model, one tiny end-to-end run through real child processes, the
target verdict, and the rendered section."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from keff.studies.index_scale import IndexScaleConfig, LocalGaussianModel, recall_at, run, target_verdict

pytest.importorskip("faiss", reason="needs keff[faiss]")

ROOT = Path(__file__).resolve().parents[2]


def clustered(n: int, d: int = 64, seed: int = 0) -> np.ndarray:
    """Unit vectors in 12 clusters: a stand-in for real embeddings."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((12, d))
    x = centres[rng.integers(0, 12, n)] + 0.4 * rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_the_model_draws_unit_vectors_near_the_real_ones():
    real = clustered(300)
    model = LocalGaussianModel.fit(real, neighbours=10, rank=4)
    assert model.bases.shape == (300, 4, 64) and model.spreads.shape == (300, 4)
    a = model.sample(500, np.random.default_rng(1))
    b = model.sample(500, np.random.default_rng(1), chunk=7)  # chunking changes nothing but the draw order
    assert a.shape == (500, 64) and a.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1, atol=1e-5)
    assert b.shape == a.shape
    # every draw lies near some real vector, closer than random real vectors are to each other
    assert np.median((a @ real.T).max(axis=1)) > np.median(real @ real.T) + 0.3
    assert model.describe()["components"] == 300


def test_recall_counts_shared_rows_and_ignores_missing_ones():
    truth = np.array([[1, 2, 3], [4, 5, 6]])
    assert recall_at(np.array([[3, 2, 9], [-1, -1, 4]]), truth) == pytest.approx(3 / 6)


def test_a_tiny_run_measures_every_backend_and_renders(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFF_CACHE_DIR", str(tmp_path / "cache"))  # the child processes inherit it
    real_dir = tmp_path / "data" / "embeddings" / "scifact" / "minilm"
    real_dir.mkdir(parents=True)
    np.save(real_dir / "corpus.npy", clustered(300))
    np.save(real_dir / "queries.npy", clustered(40, seed=1))
    small = {"n_queries": 30, "latency_n": 5, "batch_repeats": 1, "model_neighbours": 10, "model_rank": 4}
    off = {"real": False, "encoding_latency": False, "workdir": tmp_path / "work"}
    backends = ("exact", "hnsw", "ivf")
    config = IndexScaleConfig(
        sizes=(400,), backends=backends, encoder="hash", ef_search=(4, 64), nprobe=(1, 8), **small, **off
    )
    res = run(config, data=tmp_path / "data")
    assert res["benchmark"] == "index_scale" and len(res["data_model"]["check"]) == 4
    (cloud,) = res["clouds"]
    assert cloud["n"] == 400 and [r["backend"] for r in cloud["runs"]] == ["exact", "hnsw", "ivf"]
    exact, hnsw, ivf = cloud["runs"]
    assert "error" not in exact and exact["settings"][0]["recall@10"] == 1.0
    assert [s["params"] for s in hnsw["settings"]] == [{"ef_search": 4}, {"ef_search": 64}]
    assert hnsw["settings"][1]["recall@10"] >= hnsw["settings"][0]["recall@10"]
    assert ivf["build_params"]["nlist"] >= 1 and [s["params"]["nprobe"] for s in ivf["settings"]] == [1, 8]
    for r in cloud["runs"]:
        assert r["peak_build_mb"] >= r["rss_loaded_mb"] > 0 and r["disk_mb"] > 0 and r["build_s"] > 0
        assert r["vectors_mb"] == pytest.approx(400 * 64 * 4 / 2**20)
        assert all(s["single"]["p50_us"] > 0 and s["batch"]["queries_per_s"] > 0 for s in r["settings"])
    assert not (tmp_path / "work" / "synthetic-400" / "hnsw" / "index").exists()  # indexes are removed
    (verdict,) = res["targets"]
    assert verdict["n"] == 400 and verdict["met"] in (True, False)
    spec = importlib.util.spec_from_file_location("render", ROOT / "benchmarks" / "render.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    text = render.RENDERERS["index_scale"](res)
    assert "## The persistent index at scale" in text and "| 400 | hnsw |" in text and "### Target" in text


def _cloud(exact_qps: float, runs: list[tuple[str, dict, float, float]]) -> dict:
    def setting(params, recall, qps):
        return {"params": params, "recall@10": recall, "batch": {"queries_per_s": qps},
                "single": {"p50_us": 1e6 / qps}}  # fmt: skip

    out = [{"backend": "exact", "settings": [setting({}, 1.0, exact_qps)]}]
    for kind, params, recall, qps in runs:
        out.append({"backend": kind, "settings": [setting(params, recall, qps)]})
    return {"n": 1000, "runs": out}


def test_target_verdict_needs_both_recall_and_speed():
    cfg = IndexScaleConfig()
    fast_but_poor = _cloud(10, [("hnsw", {"ef_search": 8}, 0.90, 1000)])
    assert target_verdict(fast_but_poor, cfg)["met"] is False
    good = _cloud(10, [("hnsw", {"ef_search": 8}, 0.90, 1000), ("hnsw", {"ef_search": 64}, 0.97, 150),
                       ("ivf", {"nprobe": 32}, 0.96, 90)])  # fmt: skip
    v = target_verdict(good, cfg)
    assert v["met"] is True and v["best"]["params"] == {"ef_search": 64} and v["best"]["speedup_batched"] == 15
    assert v["best_per_backend"]["ivf"]["speedup_batched"] == 9
    assert target_verdict(_cloud(10, [("ivf", {"nprobe": 32}, 0.96, 90)]), cfg)["met"] is False
    assert target_verdict({"n": 5, "runs": [{"backend": "exact", "error": "killed"}]}, cfg)["met"] is None
