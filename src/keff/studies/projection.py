"""Query-to-answer projection on held-out questions: global maps, cluster-routed maps, a student.

For each Q/A set (skills, MedQuAD) and encoder (minilm, mpnet), grouped 5-fold: maps are fitted
on four folds' (question, answer) pairs and applied to the fifth fold's questions, which search
the pool of every distinct answer (a hit is any answer of the question's group). On SciFact the
same maps are fitted on the train qrels' (query, relevant document) pairs and evaluated on the
test queries against the full corpus. The untouched encoder (identity) is always a row; every
number has a bootstrap 95% CI and a paired difference to identity. Also measured: routed model
size, routing + projection throughput (centroid vs per-question routing, interleaved in one run),
and the student's agreement with its teacher.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keff.atomic import atomic_path
from keff.eval import compare_latency, run_metadata
from keff.maps import make_map
from keff.projection import (
    METHODS,
    STUDENT,
    ProjectionSetup,
    beir_setup,
    kfold_projection,
    make_projection,
    n_parameters,
    qa_setup,
    summarise,
)
from keff.studies.common import log

#: Q/A presets and the shared data's file of each.
QA_FILES = {"skills": "skills_qa.jsonl", "medquad": "medquad.jsonl"}


@dataclass
class ProjectionConfig:
    """What the projection study runs.

    Attributes
    ----------
    seed : int
        Seed of folds, samples and fits.
    medquad_mpnet_groups : int
        MedQuAD groups evaluated with mpnet (too slow here for all 14,220 answers).
    throughput_batch, throughput_repeats : int
        Batch size and timed repeats of the routed-model throughput measurement.
    quick : bool
        Skills with minilm only, no student, no throughput (a smoke run).
    """

    seed: int = 0
    medquad_mpnet_groups: int = 300
    throughput_batch: int = 10000
    throughput_repeats: int = 7
    quick: bool = False

    def plans(self) -> list[tuple[str, str, int | None]]:
        """(data set, encoder, sampled groups or None) in the order they run."""
        plans = [
            ("skills", "minilm", None),
            ("skills", "mpnet", None),
            ("medquad", "minilm", None),
            ("medquad", "mpnet", self.medquad_mpnet_groups),
            ("scifact", "minilm", None),
            ("scifact", "mpnet", None),
        ]
        return plans[:1] if self.quick else plans


def setup_for(data: Path, dataset: str, encoder: str, groups: int | None, seed: int) -> ProjectionSetup:
    """The k-fold setup of one data set and encoder."""
    if dataset == "scifact":
        return beir_setup(data / "beir" / "scifact", encoder, log=log)
    return qa_setup(data / "qa" / QA_FILES[dataset], dataset, encoder, groups, seed, log=log)


def evaluate(setup: ProjectionSetup, dataset: str, encoder: str, config: ProjectionConfig) -> dict:
    """Every projection method (and, unless quick, the student) on one setup."""
    log(f"{dataset} / {encoder}: {len(setup.folds)} fold(s)")
    outcomes = kfold_projection(setup, methods=list(METHODS), student=not config.quick, seed=config.seed, log=log)
    result = {
        "dataset": dataset,
        "encoder": encoder,
        "note": setup.note,
        "metrics": list(setup.metrics),
        "fingerprint": setup.fingerprint,
        "fold_test_queries": [int(test.size) for _, test in setup.folds],
        "largest_group": int(np.bincount(np.unique(setup.groups, return_inverse=True)[1]).max()),
        "rows": summarise(outcomes, setup.metrics, config.seed),
    }
    if setup.slices:
        result["slices"] = {
            name: summarise(outcomes, setup.metrics, config.seed, query_ids=ids) for name, ids in setup.slices.items()
        }
    return result


def routed_sizes(setup: ProjectionSetup, seed: int) -> dict:
    """Size of each routed projection fitted on all of ``setup``'s pairs."""
    sizes = {}
    for name in ("routed-centroid", "routed-question"):
        m = make_projection(name, seed=seed).fit(setup.Q, setup.A)
        sizes[name] = {"n_clusters": int(m.n_clusters_), "megabytes": m.nbytes_ / 1e6, "parameters": n_parameters(m)}
    return sizes


def routed_throughput(setup: ProjectionSetup, config: ProjectionConfig) -> dict:
    """A routed model with K=124 on ``setup``'s vectors: size, and routing + projection speed with
    centroid and per-question routing, interleaved in one run (keff's timing harness)."""
    X = np.ascontiguousarray(np.resize(setup.Q, (config.throughput_batch, setup.Q.shape[1])), dtype=np.float32)
    models = {
        r: make_map("cluster-routed", n_clusters=124, routing=r, seed=config.seed).fit(setup.Q, setup.A)
        for r in ("centroid", "question")
    }
    timing = compare_latency(
        {r: (lambda rows, m=m: m.transform(X[rows])) for r, m in models.items()},
        X.shape[0],
        baseline="centroid",
        repeats=config.throughput_repeats,
        single=0,
    )
    qps = {r: 1e6 / us for r, us in timing["batch_us"].items()}
    return {
        "n_clusters": 124,
        "dim": int(X.shape[1]),
        "rank": models["centroid"].rank,
        "batch": int(X.shape[0]),
        "megabytes_centroid": models["centroid"].nbytes_ / 1e6,
        "megabytes_question": models["question"].nbytes_ / 1e6,
        "qps_centroid": qps["centroid"],
        "qps_question": qps["question"],
        "question_over_centroid_cost": timing["batch_ratio"]["question"],
    }


def run(config: ProjectionConfig, *, data: Path) -> dict:
    """Run the study on the shared data folder ``data``; returns the JSON-ready results."""
    results = [
        evaluate(setup_for(data, dataset, encoder, groups, config.seed), dataset, encoder, config)
        for dataset, encoder, groups in config.plans()
    ]
    out = {
        "benchmark": "projection",
        "meta": run_metadata(seed=config.seed),
        "results": results,
        "student": {"name": STUDENT, "hidden": 1024},
    }
    if not config.quick:
        skills_mpnet = setup_for(data, "skills", "mpnet", None, config.seed)
        out["sizes_skills_mpnet"] = routed_sizes(skills_mpnet, config.seed)
        out["throughput"] = routed_throughput(skills_mpnet, config)
    return out


def plot(results: list[dict], path: Path) -> Path:
    """Head metric of every method per data set and encoder, with CIs (one panel each)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 2.6 * ((len(results) + 2) // 3)), dpi=110)
    FigureCanvasAgg(fig)
    for i, res in enumerate(results):
        ax = fig.add_subplot((len(results) + 2) // 3, 3, i + 1)
        head = res["metrics"][0]
        rows = res["rows"]
        means = [r["metrics"][head]["mean"] for r in rows]
        err = np.array(
            [[m - r["metrics"][head]["ci"][0], r["metrics"][head]["ci"][1] - m] for m, r in zip(means, rows)]
        ).T
        ax.barh(
            range(len(rows)),
            means,
            xerr=err,
            color=["#7f7f7f" if r["method"] == "identity" else "#1f77b4" for r in rows],
        )
        ax.set_yticks(range(len(rows)), [r["method"] for r in rows], fontsize=7)
        ax.set_xlim(min(means) * 0.9, max(means) * 1.05)
        ax.set_title(f"{res['dataset']} / {res['encoder']}: {head}", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)
