"""Query-to-answer projection on held-out questions: global maps, cluster-routed maps, a student.

For each Q/A set (skills, MedQuAD) and encoder (minilm, mpnet), grouped 5-fold: maps are fitted
on four folds' (question, answer) pairs and applied to the fifth fold's questions, which search
the pool of every distinct answer (a hit is any answer of the question's group). On SciFact the
same maps are fitted on the train qrels' (query, relevant document) pairs and evaluated on the
test queries against the full corpus. The untouched encoder (identity) is always a row; every
number has a bootstrap 95% CI and a paired difference to identity. Also measured: routed model
size, routing + projection throughput (centroid vs per-question routing, same run), and the
student's agreement with its teacher.

    python benchmarks/projection.py [--data ../shared/data] [--quick]

Writes benchmarks/results/projection.json and .png; benchmarks/render.py renders it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from keff.atomic import atomic_path, atomic_write_text
from keff.data import load_beir
from keff.data.leakage import repeats
from keff.encoders import get_encoder
from keff.eval import run_metadata
from keff.maps.cluster_routed import ClusterRouted
from keff.paths import find_shared_data
from keff.projection import (
    METHODS,
    STUDENT,
    ProjectionSetup,
    kfold_projection,
    make_projection,
    n_parameters,
    qa_setup,
    summarise,
)

HERE = Path(__file__).resolve().parent
BEIR_METRICS = ("ndcg@10", "mrr@10", "recall@100")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def scifact_setup(data: Path, encoder: str) -> ProjectionSetup:
    """SciFact as one fold: train pairs (claim, relevant abstract) fit, test claims evaluate."""
    ds = load_beir(data / "beir" / "scifact")
    enc = get_encoder(encoder)
    log(f"encoding SciFact with {encoder} (cached vectors are reused)")
    docs = enc.encode(ds.doc_texts, kind="doc")
    qvec = dict(zip(ds.query_ids, enc.encode(ds.query_texts, kind="query")))
    row = ds.doc_index()
    test_ids, test_texts = ds.split_queries("test")
    # SciFact's own train split repeats a few test claims word for word: never fit on those
    text = dict(zip(ds.query_ids, ds.query_texts))
    train_claims = list(ds.qrels["train"])
    dropped = {q for q, rep in zip(train_claims, repeats([text[q] for q in train_claims], test_texts)) if rep}
    train = [(q, d) for q in train_claims if q not in dropped for d, r in ds.qrels["train"][q].items() if r > 0]
    Q = np.vstack([np.stack([qvec[q] for q, _ in train]), np.stack([qvec[q] for q in test_ids])])
    A = np.vstack([docs[[row[d] for _, d in train]], np.zeros((len(test_ids), docs.shape[1]), np.float32)])
    ids = [f"train:{i}" for i in range(len(train))] + test_ids
    fold = (np.arange(len(train)), np.arange(len(train), len(ids)))
    # a claim judged against several abstracts is one group (test rows get their own)
    claim = {q: i for i, q in enumerate(dict.fromkeys(q for q, _ in train))}
    groups = np.array([claim[q] for q, _ in train] + list(range(len(claim), len(claim) + len(test_ids))))
    # train and test claims often cite the same abstracts: a map can learn where those sit, so
    # the claims whose relevant abstracts no fitted pair cites are reported apart
    fitted_docs = {d for _, d in train}
    seen = [q for q in test_ids if any(r > 0 and d in fitted_docs for d, r in ds.qrels["test"][q].items())]
    slices = {
        "abstract also relevant to a train claim": seen,
        "only abstracts no train claim cites": sorted(set(test_ids) - set(seen)),
    }
    note = (f"{len(train)} train (claim, abstract) pairs ({len(dropped)} claims identical to a test claim dropped); "
            f"{len(test_ids)} test claims against all {len(docs)} abstracts")  # fmt: skip
    return ProjectionSetup(Q, A, docs, ids, ds.doc_ids, ds.qrels["test"], [fold], groups, BEIR_METRICS, note,
                           enc.fingerprint, slices)  # fmt: skip


def qa_file(data: Path, preset: str) -> Path:
    """The shared data's Q/A file read with ``preset``."""
    return data / "qa" / ("skills_qa.jsonl" if preset == "skills" else f"{preset}.jsonl")


def throughput(data: Path, args) -> dict:
    """A routed model with K=124 on 768-d skills vectors: size, and routing + projection speed
    with centroid and per-question routing, interleaved in one run."""
    s = qa_setup(qa_file(data, "skills"), "skills", "mpnet", None, args.seed, log=log)
    X = np.ascontiguousarray(np.resize(s.Q, (args.throughput_batch, s.Q.shape[1])), dtype=np.float32)
    models = {
        r: ClusterRouted(n_clusters=124, routing=r, seed=args.seed).fit(s.Q, s.A) for r in ("centroid", "question")
    }
    times = {r: [] for r in models}
    for _ in range(args.throughput_repeats):
        for r, m in models.items():
            t0 = time.perf_counter()
            m.transform(X)
            times[r].append(time.perf_counter() - t0)
    qps = {r: X.shape[0] / float(np.median(t)) for r, t in times.items()}
    return {
        "n_clusters": 124,
        "dim": int(X.shape[1]),
        "rank": models["centroid"].rank,
        "batch": int(X.shape[0]),
        "megabytes_centroid": models["centroid"].nbytes_ / 1e6,
        "megabytes_question": models["question"].nbytes_ / 1e6,
        "qps_centroid": qps["centroid"],
        "qps_question": qps["question"],
        "question_over_centroid_cost": qps["centroid"] / qps["question"],
    }


def plot(results: list[dict], path: Path) -> None:
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--medquad-mpnet-groups", type=int, default=300, help="MedQuAD groups for mpnet (too slow for all)")
    p.add_argument("--throughput-batch", type=int, default=10000)
    p.add_argument("--throughput-repeats", type=int, default=7)
    p.add_argument("--quick", action="store_true", help="skills with minilm only, no student (a smoke run)")
    p.add_argument("--out", type=Path, default=HERE / "results" / "projection.json")
    args = p.parse_args(argv)
    data = args.data or find_shared_data()
    if data is None:
        log("shared data not found: pass --data DIR")
        return 2
    plans = [
        ("skills", "minilm", None),
        ("skills", "mpnet", None),
        ("medquad", "minilm", None),
        ("medquad", "mpnet", args.medquad_mpnet_groups),
        ("scifact", "minilm", None),
        ("scifact", "mpnet", None),
    ]
    if args.quick:
        plans = plans[:1]
    results = []
    for dataset, encoder, groups in plans:
        s = (
            scifact_setup(data, encoder)
            if dataset == "scifact"
            else qa_setup(qa_file(data, dataset), dataset, encoder, groups, args.seed, log=log)
        )
        log(f"{dataset} / {encoder}: {len(s.folds)} fold(s)")
        outcomes = kfold_projection(s, methods=list(METHODS), student=not args.quick, seed=args.seed, log=log)
        results.append(
            {
                "dataset": dataset,
                "encoder": encoder,
                "note": s.note,
                "metrics": list(s.metrics),
                "fingerprint": s.fingerprint,
                "fold_test_queries": [int(test.size) for _, test in s.folds],
                "largest_group": int(np.bincount(np.unique(s.groups, return_inverse=True)[1]).max()),
                "rows": summarise(outcomes, s.metrics, args.seed),
            }
        )
        if s.slices:
            results[-1]["slices"] = {
                name: summarise(outcomes, s.metrics, args.seed, query_ids=ids) for name, ids in s.slices.items()
            }
    sizes = {}
    s = qa_setup(qa_file(data, "skills"), "skills", "mpnet", None, args.seed, log=log)
    for name in ("routed-centroid", "routed-question"):
        m = make_projection(name, seed=args.seed).fit(s.Q, s.A)
        sizes[name] = {"n_clusters": int(m.n_clusters_), "megabytes": m.nbytes_ / 1e6, "parameters": n_parameters(m)}
    png = args.out.with_suffix(".png")
    plot(results, png)
    out = {
        "benchmark": "projection",
        "meta": run_metadata(seed=args.seed),
        "results": results,
        "sizes_skills_mpnet": sizes,
        "throughput": throughput(data, args),
        "plot": png.name,
        "student": {"name": STUDENT, "hidden": 1024},
    }
    atomic_write_text(args.out, json.dumps(out, indent=1, sort_keys=True, default=float) + "\n")
    log(f"wrote {args.out} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
