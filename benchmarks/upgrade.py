"""Model upgrade without re-embedding: how much of the new model's quality does a map recover?

A corpus is indexed with an old encoder; a team wants a new encoder's quality. For each model
pair (old -> new), corpus, map type, anchor count and seed this measures nDCG@10 of

  (a) the old model everywhere,
  (b) the new model everywhere (the ceiling),
  (c) the old corpus index, queried with new-model queries mapped into the old space,
  (d) the old corpus mapped into the new space, queried natively with the new model,

where the maps are fitted on anchor documents embedded by both models (drawn from documents,
never from evaluation queries; seeded). Mapped vectors are L2-normalised before cosine search.
It also times each map's added query latency against a plain float32 ``X @ W`` of the same
shape, interleaved in one run.

    python benchmarks/upgrade.py [--data ../shared/data] [--quick]

Writes benchmarks/results/upgrade.json and benchmarks/results/upgrade.png; then
benchmarks/render.py regenerates BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keff.alignment import make_map
from keff.arrays import l2_normalize
from keff.atomic import atomic_path, atomic_write_text
from keff.data import load_beir, load_qa, sample_groups
from keff.encoders import get_encoder
from keff.eval import compare_systems, evaluate_retrieval, run_metadata
from keff.maps.report import per_text_cosine
from keff.paths import find_shared_data
from keff.tasks import RetrievalTask, beir_task, qa_task

HERE = Path(__file__).resolve().parent
METRICS = ("ndcg@10", "recall@100")
CONDITIONS = {
    "c": "new queries mapped to the old index",
    "d": "old corpus mapped to the new space",
    "e": "(a) + (d): cosines of both averaged (equal weights, not tuned)",
}


def map_params(kind: str, rank: int, seed: int) -> dict:
    """The configuration of each map kind the benchmark reports."""
    return {
        "procrustes": {"center": True, "scale": True},
        "affine": {},
        "lowrank": {"rank": rank, "base": "none"},
        "mlp": {"hidden": 512, "seed": seed},
    }[kind]


@dataclass
class Corpus:
    """One evaluation corpus and the pool its anchor documents are drawn from."""

    key: str
    task: RetrievalTask
    anchor_pool: list[str]
    note: str


def scifact_corpus(data: Path) -> Corpus:
    task = beir_task(load_beir(data / "beir" / "scifact", splits=["test"]), "test")
    note = (
        f"SciFact test: {len(task.query_ids)} queries, full corpus of {len(task.doc_ids)}; "
        "anchors drawn from the corpus"
    )
    return Corpus("scifact", task, list(task.doc_texts), note)


def medquad_corpus(data: Path, n_groups: int, pool_size: int, seed: int) -> Corpus:
    pairs = load_qa(data / "qa" / "medquad.jsonl", preset="medquad")
    task = qa_task(pairs, "medquad_sample", sample_n_groups=n_groups, seed=seed)
    task = RetrievalTask(**{**task.__dict__, "metrics": METRICS})
    inside = set(sample_groups(pairs.groups, n_groups, seed=seed).tolist())
    outside = sorted({pairs.answers[i] for i in range(len(pairs.ids)) if i not in inside})
    rng = np.random.default_rng(seed)
    pool = [outside[i] for i in sorted(rng.choice(len(outside), size=min(pool_size, len(outside)), replace=False))]
    note = (
        f"MedQuAD {task.note}: {len(task.query_ids)} questions against {len(task.doc_ids)} answers; anchors drawn "
        f"from {len(pool)} answers of other groups (seed {seed})"
    )
    return Corpus("medquad", task, pool, note)


@dataclass
class Encoded:
    queries: np.ndarray
    docs: np.ndarray
    anchors: np.ndarray


def encode_corpus(corpus: Corpus, name: str) -> Encoded:
    enc = get_encoder(name)
    print(f"encoding {corpus.key} with {name} (cached vectors are reused)", file=sys.stderr, flush=True)
    return Encoded(
        queries=enc.encode(corpus.task.query_texts, kind="query"),
        docs=enc.encode(corpus.task.doc_texts, kind="doc"),
        anchors=enc.encode(corpus.anchor_pool, kind="doc"),
    )


def score(task: RetrievalTask, q: np.ndarray, d: np.ndarray) -> tuple[dict, dict]:
    r = evaluate_retrieval(
        l2_normalize(q),
        l2_normalize(d),
        task.query_ids,
        task.doc_ids,
        task.qrels,
        system="",
        dataset=task.name,
        metrics=METRICS,
        latency_queries=0,
    )
    return r.metrics, r.per_query["ndcg@10"]


def interleaved_latency(fn_map, fn_plain, X: np.ndarray, *, repeats: int, single: int) -> dict:
    """Median batched per-query time and single-query p50 of a map and of plain X @ W, alternated."""
    batch = {"map": [], "plain": []}
    for _ in range(repeats):
        for key, fn in (("plain", fn_plain), ("map", fn_map)):
            t0 = time.perf_counter_ns()
            fn(X)
            batch[key].append((time.perf_counter_ns() - t0) / 1e3 / X.shape[0])
    one = {"map": [], "plain": []}
    for i in range(single):
        x = X[i % X.shape[0] : i % X.shape[0] + 1]
        for key, fn in (("plain", fn_plain), ("map", fn_map)):
            t0 = time.perf_counter_ns()
            fn(x)
            one[key].append((time.perf_counter_ns() - t0) / 1e3)
    out = {f"batch_{k}_us": float(np.median(v)) for k, v in batch.items()}
    out.update({f"single_{k}_p50_us": float(np.median(v)) for k, v in one.items()})
    # each map call is paired with the plain call just before it: the median of those ratios is
    # robust to load that drifts between repeats on a shared machine
    out["batch_ratio"] = float(np.median(np.array(batch["map"]) / np.array(batch["plain"])))
    out["single_ratio"] = float(np.median(np.array(one["map"]) / np.array(one["plain"])))
    return out


def run_pair(corpus: Corpus, old: str, new: str, vecs: dict, args) -> tuple[list[dict], list[dict], dict]:
    """Every map, anchor count and seed for one corpus and model pair."""
    task, vo, vn = corpus.task, vecs[old], vecs[new]
    m_a, pq_a = score(task, vo.queries, vo.docs)
    m_b, pq_b = score(task, vn.queries, vn.docs)
    base = {"corpus": corpus.key, "old": old, "new": new}
    rows = [{**base, "condition": "a", "metrics": m_a}, {**base, "condition": "b", "metrics": m_b}]
    per_query = {"a": pq_a, "b": pq_b}
    fits = []
    for n_anchors in args.anchors:
        if n_anchors > len(corpus.anchor_pool):
            print(f"skip {n_anchors} anchors: pool has {len(corpus.anchor_pool)}", file=sys.stderr)
            continue
        for seed in args.seeds:
            idx = np.sort(np.random.default_rng(seed).choice(len(corpus.anchor_pool), n_anchors, replace=False))
            for kind in args.maps:
                fitted, fit_s = {}, {}
                for direction, (src, dst) in {"new->old": (vn, vo), "old->new": (vo, vn)}.items():
                    t0 = time.perf_counter()
                    params = map_params(kind, args.rank, seed)
                    fitted[direction] = make_map(kind, **params).fit(src.anchors[idx], dst.anchors[idx])
                    fit_s[direction] = round(time.perf_counter() - t0, 3)
                mapped_queries = fitted["new->old"].transform(vn.queries)
                mapped_docs = fitted["old->new"].transform(vo.docs)
                # (e): concatenated unit halves, so the inner product is the mean of the two cosines
                both_q = np.hstack([l2_normalize(vo.queries), l2_normalize(vn.queries)])
                both_d = np.hstack([l2_normalize(vo.docs), l2_normalize(mapped_docs)])
                held = float(per_text_cosine(mapped_docs, vn.docs).mean())
                outcomes = {
                    "c": (score(task, mapped_queries, vo.docs), "new->old", None),
                    "d": (score(task, vn.queries, mapped_docs), "old->new", held),
                    "e": (score(task, both_q, both_d), "old->new", held),
                }
                for cond, ((metrics, pq), direction, cosine) in outcomes.items():
                    rows.append(
                        {
                            **base, "condition": cond, "map": kind, "n_anchors": n_anchors, "seed": seed,
                            "metrics": metrics, "pct_ceiling": 100 * metrics["ndcg@10"] / m_b["ndcg@10"],
                            "fit_seconds": fit_s[direction], "doc_cosine_to_new": cosine,
                        }
                    )  # fmt: skip
                    acc = per_query.setdefault(f"{cond}/{kind}/{n_anchors}", {q: 0.0 for q in pq})
                    for q, v in pq.items():
                        acc[q] += v / len(args.seeds)
                for direction, m in fitted.items():
                    fits.append(("c" if direction == "new->old" else "d", kind, n_anchors, seed, m))
            print(f"  {corpus.key} {old}->{new}: {n_anchors} anchors, seed {seed} done", file=sys.stderr, flush=True)
    comparisons = []
    for cond in CONDITIONS:
        systems = {k: v for k, v in per_query.items() if k.startswith(cond + "/")}
        for ref in ("a", "b"):
            for c in compare_systems({ref: per_query[ref], **systems}, ref, metric="ndcg@10", seed=0):
                comparisons.append({**base, "condition": cond, "against": ref, **c.__dict__})
    latency_maps = {
        (cond, kind): m for cond, kind, n, seed, m in fits if n == args.latency_anchors and seed == args.seeds[0]
    }
    return rows, comparisons, latency_maps


def plain_equivalent(m, rng: np.random.Generator):
    """Plain float32 matrix products of the same shapes as the map's own arithmetic (its floor)."""
    ds, dt = m.source_dim_, m.target_dim_

    def rand(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    if hasattr(m, "A_"):  # low rank: (X @ A) @ C (+ X @ B for a Procrustes base)
        A, C = rand(*m.A_.shape), rand(*m.C_.shape)
        return lambda x: (x @ A) @ C
    if hasattr(m, "W1_"):  # residual MLP: base X @ Wb, hidden X @ W1, output H @ W2
        Wb, W1, W2 = rand(ds, dt), rand(*m.W1_.shape), rand(*m.W2_.shape)
        return lambda x: x @ Wb + (x @ W1) @ W2
    W = rand(ds, dt)
    return lambda x: x @ W


def latency_rows(latency_maps: dict, vecs: dict, old: str, new: str, args) -> list[dict]:
    """Added query latency of each map, against plain X @ W of the map's own shapes and of (d_s, d_t)."""
    out = []
    rng = np.random.default_rng(0)
    for (cond, kind), m in sorted(latency_maps.items()):
        src = vecs[new].queries if cond == "c" else vecs[old].docs
        X = np.ascontiguousarray(np.resize(src, (args.latency_batch, src.shape[1])), dtype=np.float32)
        W = rng.standard_normal((m.source_dim_, m.target_dim_)).astype(np.float32)
        own = interleaved_latency(m.transform, plain_equivalent(m, rng), X, repeats=args.latency_repeats, single=300)
        dense = interleaved_latency(m.transform, lambda x, W=W: x @ W, X, repeats=args.latency_repeats, single=300)
        shape = [m.source_dim_, m.target_dim_]
        out.append(
            {
                "old": old, "new": new, "condition": cond, "map": kind, "shape": shape,
                "own_shapes": own, "dense": dense,
            }
        )  # fmt: skip
    return out


def summarize(rows: list[dict]) -> list[dict]:
    """Mean and std over seeds per (corpus, pair, condition, map, anchors)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["condition"] in CONDITIONS:
            groups.setdefault((r["corpus"], r["old"], r["new"], r["condition"], r["map"], r["n_anchors"]), []).append(r)
    out = []
    for (corpus, old, new, cond, kind, n), rs in sorted(groups.items()):
        nd = np.array([r["metrics"]["ndcg@10"] for r in rs])
        pct = np.array([r["pct_ceiling"] for r in rs])
        out.append(
            {
                "corpus": corpus, "old": old, "new": new, "condition": cond, "map": kind, "n_anchors": n,
                "n_seeds": len(rs), "ndcg@10_mean": float(nd.mean()), "ndcg@10_std": float(nd.std()),
                "pct_ceiling_mean": float(pct.mean()), "pct_ceiling_std": float(pct.std()),
                "recall@100_mean": float(np.mean([r["metrics"]["recall@100"] for r in rs])),
                "doc_cosine_to_new": None if cond == "c" else float(np.mean([r["doc_cosine_to_new"] for r in rs])),
            }
        )  # fmt: skip
    return out


def plot(summary: list[dict], baselines: list[dict], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    panels = sorted({(s["corpus"], s["old"], s["new"], s["condition"]) for s in summary})
    cols = 2
    rows_n = (len(panels) + 1) // cols
    fig = Figure(figsize=(11, 3.2 * rows_n), dpi=110)
    FigureCanvasAgg(fig)
    for i, (corpus, old, new, cond) in enumerate(panels):
        ax = fig.add_subplot(rows_n, cols, i + 1)
        for kind in sorted({s["map"] for s in summary}):
            pts = sorted(
                (s["n_anchors"], s["pct_ceiling_mean"], s["pct_ceiling_std"])
                for s in summary
                if (s["corpus"], s["old"], s["new"], s["condition"], s["map"]) == (corpus, old, new, cond, kind)
            )
            if pts:
                x, y, e = zip(*pts)
                ax.errorbar(x, y, yerr=e, marker="o", ms=3, capsize=2, label=kind)
        a = next(b for b in baselines if (b["corpus"], b["old"], b["new"]) == (corpus, old, new))
        ax.axhline(100, color="k", lw=0.8)
        ax.axhline(a["pct_a"], color="grey", ls="--", lw=0.8, label="old model (a)")
        ax.axhline(98, color="red", ls=":", lw=0.8, label="98% target")
        ax.set_xscale("log")
        ax.set_title(f"{corpus}: {old}->{new}, ({cond}) {CONDITIONS[cond]}", fontsize=8)
        ax.set_xlabel("anchors", fontsize=8)
        ax.set_ylabel("% of ceiling nDCG@10", fontsize=8)
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.legend(fontsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--pairs", default="minilm:mpnet,mpnet:minilm,minilm-l3-onnx:minilm", help="old:new,...")
    p.add_argument("--corpora", default="scifact,medquad")
    p.add_argument("--maps", default="procrustes,affine,lowrank,mlp")
    p.add_argument("--anchors", default="100,300,1000,3000")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--rank", type=int, default=128, help="rank of the low-rank map")
    p.add_argument("--medquad-groups", type=int, default=300)
    p.add_argument("--medquad-anchor-pool", type=int, default=3000)
    p.add_argument("--latency-anchors", type=int, default=1000)
    p.add_argument("--latency-batch", type=int, default=1024)
    p.add_argument("--latency-repeats", type=int, default=31)
    p.add_argument("--quick", action="store_true", help="one seed, 100 and 1000 anchors (a smoke run)")
    p.add_argument(
        "--latency-only",
        action="store_true",
        help="re-measure only the latency section of an existing --out file (maps refitted on SciFact)",
    )
    p.add_argument("--out", type=Path, default=HERE / "results" / "upgrade.json")
    args = p.parse_args(argv)
    if args.quick:
        args.seeds, args.anchors = "0", "100,1000"
    args.pairs = [tuple(p.split(":")) for p in args.pairs.split(",")]
    args.corpora = args.corpora.split(",")
    args.maps = args.maps.split(",")
    args.anchors = [int(a) for a in args.anchors.split(",")]
    args.seeds = [int(s) for s in args.seeds.split(",")]
    return args


def remeasure_latency(data: Path, args) -> int:
    """Refit the 1,000-anchor seed-0 maps on SciFact and replace the latency rows of ``args.out``."""
    result = json.loads(args.out.read_text())
    corpus = scifact_corpus(data)
    encoders = sorted({n for pair in args.pairs for n in pair})
    vecs = {n: encode_corpus(corpus, n) for n in encoders}
    idx = np.sort(
        np.random.default_rng(args.seeds[0]).choice(len(corpus.anchor_pool), args.latency_anchors, replace=False)
    )
    latency = []
    for old, new in args.pairs:
        fitted = {}
        for kind in args.maps:
            params = map_params(kind, args.rank, args.seeds[0])
            fitted[("c", kind)] = make_map(kind, **params).fit(vecs[new].anchors[idx], vecs[old].anchors[idx])
            fitted[("d", kind)] = make_map(kind, **params).fit(vecs[old].anchors[idx], vecs[new].anchors[idx])
        latency += latency_rows(fitted, vecs, old, new, args)
    result["latency"] = latency
    result["latency_meta"] = run_metadata(seed=args.seeds[0])
    atomic_write_text(args.out, json.dumps(result, indent=1, sort_keys=True, default=float) + "\n")
    print(f"re-measured latency in {args.out}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    data = args.data or find_shared_data()
    if data is None:
        print("shared data not found: pass --data DIR", file=sys.stderr)
        return 2
    builders = {
        "scifact": lambda: scifact_corpus(data),
        "medquad": lambda: medquad_corpus(data, args.medquad_groups, args.medquad_anchor_pool, 0),
    }
    if args.latency_only:
        return remeasure_latency(data, args)
    encoders = sorted({n for pair in args.pairs for n in pair})
    fingerprints = {n: get_encoder(n).fingerprint for n in encoders}
    rows, comparisons, latency, baselines, notes = [], [], [], [], {}
    for key in args.corpora:
        corpus = builders[key]()
        notes[key] = corpus.note
        vecs = {n: encode_corpus(corpus, n) for n in encoders}
        for old, new in args.pairs:
            r, c, lat_maps = run_pair(corpus, old, new, vecs, args)
            rows += r
            comparisons += c
            a, b = (x["metrics"]["ndcg@10"] for x in r[:2])
            baselines.append({"corpus": key, "old": old, "new": new, "ndcg_a": a, "ndcg_b": b, "pct_a": 100 * a / b})
            if key == "scifact":
                latency += latency_rows(lat_maps, vecs, old, new, args)
    summary = summarize(rows)
    png = args.out.with_suffix(".png")
    plot(summary, baselines, png)
    result = {
        "benchmark": "upgrade",
        "meta": run_metadata(seed=args.seeds[0], encoders=fingerprints),
        "config": {k: v for k, v in vars(args).items() if k not in ("data", "out")}
        | {"pairs": [list(p) for p in args.pairs]},
        "notes": notes,
        "baselines": baselines,
        "summary": summary,
        "comparisons": comparisons,
        "latency": latency,
        "rows": rows,
        "plot": png.name,
    }
    atomic_write_text(args.out, json.dumps(result, indent=1, sort_keys=True, default=float) + "\n")
    print(f"wrote {args.out} and {png}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
