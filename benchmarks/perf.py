"""Performance pass: keff's hot paths as ratios against their references, measured in one run.

Parts (``--parts``, all by default):

- ``search``: batch top-k over 200,000 x 384 random unit rows, 1,000 queries (keff's selection
  against the argpartition floor on the same score blocks; keff's exact search against FAISS
  ``IndexFlatIP``; keff's peak memory); single-query search under one busy neighbour process
  (keff against FAISS; the bare product with the BLAS pool's default size against one thread);
- ``threads``: a ClusterRouted fit (64 small SVDs) with its one-thread loop against the
  default pool size;
- ``metrics``: ``evaluate_run`` against a bare pytrec_eval call (SciFact test, top 100);
- ``cli``: ``keff --help`` and ``keff eval --help`` against ``python -c pass``; a warm
  ``keff eval`` on SciFact (private cache, seeded once) and whether it imported torch;
- ``encoders``: the int8 MiniLM against fp32 MiniLM (speed, SciFact nDCG@10).

    python benchmarks/perf.py [--data ../shared/data] [--parts search,threads,metrics,cli,encoders]

Writes benchmarks/results/perf.json; benchmarks/render.py renders it. About 15 minutes here.
"""

from __future__ import annotations

import sys
from pathlib import Path

from keff.eval import run_metadata
from keff.studies.common import driver_parser, log, shared_data, write_json

HERE = Path(__file__).resolve().parent
PARTS = ("search", "threads", "metrics", "cli", "encoders")


def measure(part: str, data: Path) -> dict:
    """One part's JSON-ready measurements."""
    if part == "search":
        from keff.studies.perf.search import batch_topk, single_query

        return {"batch_topk": batch_topk(), "single_query": single_query()}
    if part == "threads":
        from keff.studies.perf.search import cluster_fit_threads

        return {"cluster_fit": cluster_fit_threads()}
    if part == "metrics":
        from keff.studies.perf.metrics import metrics_vs_pytrec_eval, scifact_input

        run, qrels = scifact_input(data)
        return {"evaluate_run": metrics_vs_pytrec_eval(run, qrels)}
    if part == "cli":
        from keff.studies.perf.cli import startup, warm_eval

        return {"startup": startup(), "warm_eval": warm_eval(data / "beir" / "scifact")}
    if part == "encoders":
        from keff.studies.perf.encoders import int8_check

        return {"int8": int8_check(data)}
    raise SystemExit(f"unknown part {part!r}: choose from {', '.join(PARTS)}")


def main(argv: list[str] | None = None) -> int:
    p = driver_parser(__doc__, HERE / "results" / "perf.json")
    p.add_argument("--parts", default=",".join(PARTS))
    args = p.parse_args(argv)
    data = shared_data(args.data)
    parts = {}
    for part in args.parts.split(","):
        log(f"part {part}")
        parts[part] = measure(part, data)
    write_json(args.out, {"benchmark": "perf", "meta": run_metadata(seed=0), "parts": parts})
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
