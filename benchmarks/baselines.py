"""Raw-encoder baselines: SciFact (test split, full corpus) and the two Q/A sets.

Every row is the untouched encoder with cosine and exact search, the row every later keff
method must beat. MiniLM and MPNet vectors are reused from the shared precomputed embeddings
only after keff re-encodes a sample and matches them (cosine >= 0.999). Encoders too slow for a
full set are evaluated on a seeded sample of whole groups, and the table says so.

    python benchmarks/baselines.py [--data ../shared/data] [--encoders minilm,mpnet,...]

Writes benchmarks/results/baselines.json (summary) and full per-query results under
benchmarks/results/runs/ (not committed); then run benchmarks/render.py to regenerate
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from keff.atomic import atomic_write_text
from keff.data import load_beir, load_qa
from keff.encoders import get_encoder
from keff.errors import ModelNotAvailable
from keff.eval import compare_systems, run_metadata, write_result
from keff.paths import find_shared_data
from keff.precomputed import seed_beir_vectors, seed_qa_vectors
from keff.tasks import beir_task, evaluate_encoder, qa_task

HERE = Path(__file__).resolve().parent
# Published SciFact test nDCG@10 (BEIR / sentence-transformers model cards), and the tolerance
# the issue sets for reproducing them.
PUBLISHED_SCIFACT = {"minilm": 0.645, "mpnet": 0.656}
TOLERANCE = 0.005
ENCODERS = ("minilm", "mpnet", "minilm-int8-onnx", "minilm-l3-onnx")
# Encoders that embed long texts too slowly here for all 14,220 MedQuAD answers (~1.6 docs/s).
SLOW = {"mpnet"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=None, help="shared data folder (default: ../shared/data)")
    p.add_argument("--encoders", default=",".join(ENCODERS))
    p.add_argument(
        "--medquad-sample-groups",
        type=int,
        default=300,
        help="groups in the seeded MedQuAD sample used for slow encoders (and, for a like-for-like row, all)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=HERE / "results" / "baselines.json")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data = args.data or find_shared_data()
    if data is None or not (data / "beir" / "scifact").is_dir():
        print("shared data not found: pass --data DIR (the folder holding beir/, qa/, embeddings/)", file=sys.stderr)
        return 2
    names = [n.strip() for n in args.encoders.split(",") if n.strip()]
    runs_dir = args.out.parent / "runs"
    scifact = load_beir(data / "beir" / "scifact")
    skills = load_qa(data / "qa" / "skills_qa.jsonl", preset="skills")
    medquad = load_qa(data / "qa" / "medquad.jsonl", preset="medquad")
    tasks = {
        "scifact": beir_task(scifact, "test"),
        "skills_qa": qa_task(skills, "skills_qa"),
        "medquad": qa_task(medquad, "medquad"),
        "medquad_sample": qa_task(
            medquad, "medquad_sample", sample_n_groups=args.medquad_sample_groups, seed=args.seed
        ),
    }
    rows, results_by_task, skipped = [], {}, []
    for name in names:
        try:
            enc = get_encoder(name)
        except ModelNotAvailable as exc:
            print(f"skipping {name}: {exc}", file=sys.stderr)
            continue
        seed_reports = []
        if (data / "embeddings" / "scifact" / name).is_dir():
            seed_reports += seed_beir_vectors(enc, scifact, data / "embeddings" / "scifact" / name)
        if (data / "embeddings" / "skills_qa" / name).is_dir():
            seed_reports += seed_qa_vectors(enc, skills, data / "embeddings" / "skills_qa" / name)
        for key, task in tasks.items():
            if key == "medquad" and name in SLOW:
                skipped.append({"task": key, "system": name, "why": "about 1.6 long texts/s here: the full set "
                                "would take hours; see the seeded sample"})  # fmt: skip
                continue
            t0 = time.perf_counter()
            print(
                f"{name} on {task.name}: {len(task.query_ids)} queries, {len(task.doc_ids)} documents", file=sys.stderr
            )
            result = evaluate_encoder(task, enc, seed=args.seed)
            result.meta["seeded_from_precomputed"] = [r.__dict__ for r in seed_reports]
            write_result(result, runs_dir / f"{key}__{name}.json")
            results_by_task.setdefault(key, []).append(result)
            row = {
                "task": key,
                "dataset": task.name,
                "system": name,
                "fingerprint": enc.fingerprint,
                "metrics": result.metrics,
                "n_queries": len(task.query_ids),
                "n_docs": len(task.doc_ids),
                "sample": task.note,
                "latency": result.meta.get("latency"),
                "encode_seconds": result.meta.get("encode_seconds"),
                "wall_seconds": round(time.perf_counter() - t0, 1),
                "probe_min_cosine": min((r.min_cosine for r in seed_reports), default=None),
            }
            if key == "scifact" and name in PUBLISHED_SCIFACT:
                pub = PUBLISHED_SCIFACT[name]
                row["published_ndcg@10"] = pub
                row["reproduced"] = abs(result.metrics["ndcg@10"] - pub) <= TOLERANCE
            rows.append(row)
    comparisons = []
    for key, results in results_by_task.items():
        if len(results) < 2:
            continue
        metric = "ndcg@10" if "ndcg@10" in results[0].metrics else "hit@1"
        best = max(results, key=lambda r: r.metrics[metric])
        per_query = {r.system: r.per_query[metric] for r in results}
        for c in compare_systems(per_query, best.system, metric=metric, seed=args.seed):
            comparisons.append({"task": key, **c.__dict__})
    summary = {
        "benchmark": "baselines",
        "meta": run_metadata(seed=args.seed, data_hashes={k: t.data_hashes for k, t in tasks.items()}),
        "tolerance": TOLERANCE,
        "rows": rows,
        "skipped": skipped,
        "comparisons": comparisons,
    }
    import json

    atomic_write_text(args.out, json.dumps(summary, indent=2, sort_keys=True, default=float) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
