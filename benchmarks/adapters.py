"""Adapters over frozen encoders on held-out questions and unseen sources (the study: keff.studies.adapters).

    OPENBLAS_NUM_THREADS=1 python benchmarks/adapters.py [--data ../shared/data] [--quick]

Writes benchmarks/results/adapters.json and .png; benchmarks/render.py renders them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from keff.studies.adapters import AdaptersConfig, plot, run
from keff.studies.common import driver_parser, save_results, shared_data

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    p = driver_parser(__doc__, HERE / "results" / "adapters.json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--medquad-mpnet-groups", type=int, default=300, help="MedQuAD groups for mpnet (too slow for all)")
    p.add_argument("--timing-pairs", type=int, default=15000, help="pairs the training-time measurement uses")
    p.add_argument(
        "--quick", action="store_true", help="skills with minilm only, no leave-one-source-out (a smoke run)"
    )
    args = p.parse_args(argv)
    config = AdaptersConfig(
        seed=args.seed,
        medquad_mpnet_groups=args.medquad_mpnet_groups,
        timing_pairs=args.timing_pairs,
        quick=args.quick,
    )
    results = run(config, data=shared_data(args.data))
    save_results(args.out, results, lambda png: plot(results["results"], png))
    return 0


if __name__ == "__main__":
    sys.exit(main())
