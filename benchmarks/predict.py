"""Next-vector prediction on held-out documents (the study: keff.studies.predict).

    OPENBLAS_NUM_THREADS=1 python benchmarks/predict.py [--data ../shared/data] [--quick]

Writes benchmarks/results/predict.json and .png; benchmarks/render.py renders them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from keff.studies.common import log, shared_data, write_json
from keff.studies.predict import PredictConfig, plot, run

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=None, help="shared data folder (default: ../shared/data)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k", type=int, default=3, help="context length (units)")
    p.add_argument("--scifact-docs", type=int, default=1500, help="SciFact abstracts sampled (all take long to encode)")
    p.add_argument("--medquad-pages", type=int, default=400, help="MedQuAD pages sampled (all take long to encode)")
    p.add_argument("--quick", action="store_true", help="WikiText only (a smoke run)")
    p.add_argument("--out", type=Path, default=HERE / "results" / "predict.json")
    args = p.parse_args(argv)
    config = PredictConfig(
        seed=args.seed, k=args.k, scifact_docs=args.scifact_docs, medquad_pages=args.medquad_pages, quick=args.quick
    )
    results = run(config, data=shared_data(args.data))
    png = plot(results["results"], args.out.with_suffix(".png"))
    results["plot"] = png.name
    write_json(args.out, results)
    log(f"wrote {args.out} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
