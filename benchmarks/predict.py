"""Next-vector prediction on held-out documents (the study: keff.studies.predict).

    OPENBLAS_NUM_THREADS=1 python benchmarks/predict.py [--data ../shared/data] [--quick]

Writes benchmarks/results/predict.json and .png; benchmarks/render.py renders them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from keff.studies.common import driver_parser, save_results, shared_data
from keff.studies.predict import PredictConfig, plot, run

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    p = driver_parser(__doc__, HERE / "results" / "predict.json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k", type=int, default=3, help="context length (units)")
    p.add_argument("--scifact-docs", type=int, default=1500, help="SciFact abstracts sampled (all take long to encode)")
    p.add_argument("--medquad-pages", type=int, default=400, help="MedQuAD pages sampled (all take long to encode)")
    p.add_argument("--quick", action="store_true", help="WikiText only (a smoke run)")
    args = p.parse_args(argv)
    config = PredictConfig(
        seed=args.seed, k=args.k, scifact_docs=args.scifact_docs, medquad_pages=args.medquad_pages, quick=args.quick
    )
    results = run(config, data=shared_data(args.data))
    save_results(args.out, results, lambda png: plot(results["results"], png))
    return 0


if __name__ == "__main__":
    sys.exit(main())
