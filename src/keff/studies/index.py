"""The persistent index on real data: what its learned transforms buy, measured through its own search.

The results are a dict of named parts, each rendered on its own (``benchmarks/render.py``), so
later measurements of the same index (scale, latency) join as further parts:

- ``fusion``: an index of several encoders (SciFact; minilm + mpnet by default) whose fusion
  weights are fitted on the **train** claims only (``keff index fit-fusion``: nDCG@10 on a
  0.1 grid), evaluated on the **test** claims through :func:`keff.docindex.evaluate.evaluate_index`
  against each encoder's own single-encoder index and the equal-weight fusion, with paired tests
  (:func:`keff.eval.compare_systems`). Each single-encoder index is also checked to reproduce
  ``keff eval`` (:func:`keff.tasks.evaluate_encoder`) exactly.

Document vectors come from the shipped precomputed ones after keff's seeding checks (mpnet
encodes about 1.6 abstracts/s here, so the corpus is never encoded with it); an encoder without
shipped vectors is refused rather than encoded.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from keff.data import load_beir
from keff.docindex import Index, read_documents
from keff.docindex.evaluate import evaluate_index, fit_fusion_weights
from keff.encoders import get_encoder
from keff.errors import DataError
from keff.eval import compare_systems, run_metadata
from keff.paths import shipped_vectors
from keff.precomputed import seed_beir_vectors
from keff.studies.common import log
from keff.tasks import beir_task, evaluate_encoder

METRIC = "ndcg@10"
EQUAL = "fused (equal weights)"
TUNED = "fused (weights fitted on train)"


@dataclass
class IndexStudyConfig:
    """What the index study runs.

    Attributes
    ----------
    encoders : tuple of str
        Encoders of the fused index (each needs shipped precomputed vectors of the data set).
    dataset : str
        BEIR data set under the shared data's ``beir/``.
    fit_split, eval_split : str
        Fusion weights are fitted on ``fit_split`` only and evaluated on ``eval_split``.
    step : float
        Grid spacing of the fusion weights.
    depth : int
        Candidates per encoder when fitting (see :func:`keff.docindex.evaluate.fit_fusion_weights`).
    seed : int
        Seed of the paired tests and latency draws.
    workdir : Path, optional
        Where the indexes are built (default: a temporary folder, removed afterwards).
    """

    encoders: tuple[str, ...] = ("minilm", "mpnet")
    dataset: str = "scifact"
    fit_split: str = "train"
    eval_split: str = "test"
    step: float = 0.1
    depth: int = 100
    seed: int = 0
    workdir: Path | None = None


def _seeded_encoder(name: str, folder: Path, dataset) -> tuple[object, list[dict]]:
    vectors = shipped_vectors(folder, name)
    if vectors is None:
        raise DataError(f"no shipped {name} vectors for {folder.name}: the study never encodes a corpus itself")
    enc = get_encoder(name)
    reports = seed_beir_vectors(enc, dataset, vectors)
    for r in reports:
        log(f"{name}: {r.message}")
    return enc, [{"file": Path(r.source).name, "kind": r.kind, "min_cosine": r.min_cosine, "n_checked": r.n_checked,
                  "already_seeded": r.already_seeded} for r in reports]  # fmt: skip


def _row(result, **extra) -> dict:
    return {"system": result.system, "metrics": result.metrics, "latency": result.meta.get("latency"), **extra}


def fusion(config: IndexStudyConfig, data: Path, workdir: Path) -> dict:
    """The ``fusion`` part (see the module docstring)."""
    folder = data / "beir" / config.dataset
    dataset = load_beir(folder)
    fit_task, eval_task = beir_task(dataset, config.fit_split), beir_task(dataset, config.eval_split)
    docs = read_documents(folder)
    seeding, rows, per_query, reproduced = {}, [], {}, {}
    for name in config.encoders:
        enc, seeding[name] = _seeded_encoder(name, folder, dataset)
        log(f"{name}: single-encoder index of {len(docs):,} documents")
        ix = Index.build(workdir / name, docs, [name], overwrite=True)
        result = evaluate_index(ix, eval_task, seed=config.seed)
        plain = evaluate_encoder(eval_task, enc, seed=config.seed)
        reproduced[name] = {"index": result.metrics[METRIC], "keff_eval": plain.metrics[METRIC],
                            "identical": result.per_query == plain.per_query}  # fmt: skip
        rows.append(_row(result, encoders=[name]))
        per_query[name] = result.per_query[METRIC]
    log(f"fused index of {', '.join(config.encoders)}")
    ix = Index.build(workdir / "fused", docs, list(config.encoders), overwrite=True)
    equal = evaluate_index(ix, eval_task, system=EQUAL, seed=config.seed)
    rows.append(_row(equal, encoders=list(config.encoders), weights=[1 / len(config.encoders)] * len(config.encoders)))
    per_query[EQUAL] = equal.per_query[METRIC]
    start = time.perf_counter()
    log(f"fitting fusion weights on {fit_task.name}: {len(fit_task.query_ids)} queries")
    fw = fit_fusion_weights(ix, fit_task, step=config.step, depth=config.depth)
    fit_seconds = time.perf_counter() - start
    fw.save(workdir / "fusion.sef")
    ix.attach(workdir / "fusion.sef", name="fusion")
    tuned = evaluate_index(ix, eval_task, system=TUNED, seed=config.seed)
    rows.append(_row(tuned, encoders=list(config.encoders), weights=fw.weights.tolist()))
    per_query[TUNED] = tuned.per_query[METRIC]
    comparisons = []
    for name in config.encoders:  # each fusion against each single encoder: diff = fused - single
        systems = {name: per_query[name], TUNED: per_query[TUNED], EQUAL: per_query[EQUAL]}
        comparisons += [c.__dict__ for c in compare_systems(systems, name, metric=METRIC, seed=config.seed)]
    grid = sorted(fw.info["evaluated"], key=lambda r: r["weights"])
    return {
        "dataset": config.dataset,
        "fit": {
            "split": config.fit_split,
            "n_queries": len(fit_task.query_ids),
            "seconds": round(fit_seconds, 1),
            "objective": METRIC,
            "train_objective": fw.info["train_objective"],
            "grid": grid,
            "step": config.step,
            "depth": config.depth,
        },  # fmt: skip
        "eval": {"split": config.eval_split, "n_queries": len(eval_task.query_ids), "n_docs": ix.n_docs},
        "encoders": list(config.encoders),
        "weights": dict(zip(config.encoders, fw.weights.tolist())),
        "rows": rows,
        "comparisons": comparisons,
        "reproduces_keff_eval": reproduced,
        "seeding": seeding,
        "backend": ix.manifest.backend["kind"],
    }


def run(config: IndexStudyConfig, *, data: Path) -> dict:
    """Every part of the study on the shared data folder ``data``."""
    with tempfile.TemporaryDirectory(prefix="keff-index-study-") as tmp:
        workdir = Path(config.workdir) if config.workdir is not None else Path(tmp)
        start = time.perf_counter()
        part = fusion(config, data, workdir)
        part["seconds"] = round(time.perf_counter() - start, 1)
    dataset = load_beir(data / "beir" / config.dataset)
    return {
        "benchmark": "index",
        "meta": run_metadata(
            seed=config.seed,
            encoders={name: get_encoder(name).fingerprint for name in config.encoders},
            data_hashes={config.dataset: dict(dataset.file_hashes)},
        ),
        "fusion": part,
    }
