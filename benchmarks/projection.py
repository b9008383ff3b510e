"""Query-to-answer projection on held-out questions (the study: keff.studies.projection).

    OPENBLAS_NUM_THREADS=1 python benchmarks/projection.py [--data ../shared/data] [--quick]

Writes benchmarks/results/projection.json and .png; benchmarks/render.py renders them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from keff.studies.common import driver_parser, save_results, shared_data
from keff.studies.projection import ProjectionConfig, plot, run

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    p = driver_parser(__doc__, HERE / "results" / "projection.json")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--medquad-mpnet-groups", type=int, default=300, help="MedQuAD groups for mpnet (too slow for all)")
    p.add_argument("--throughput-batch", type=int, default=10000)
    p.add_argument("--throughput-repeats", type=int, default=7)
    p.add_argument("--quick", action="store_true", help="skills with minilm only, no student (a smoke run)")
    args = p.parse_args(argv)
    config = ProjectionConfig(
        seed=args.seed,
        medquad_mpnet_groups=args.medquad_mpnet_groups,
        throughput_batch=args.throughput_batch,
        throughput_repeats=args.throughput_repeats,
        quick=args.quick,
    )
    results = run(config, data=shared_data(args.data))
    save_results(args.out, results, lambda png: plot(results["results"], png))
    return 0


if __name__ == "__main__":
    sys.exit(main())
