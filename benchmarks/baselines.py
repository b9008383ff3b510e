"""Raw-encoder baselines on SciFact and the two Q/A sets (the study: keff.studies.baselines).

    python benchmarks/baselines.py [--data ../shared/data] [--encoders minilm,mpnet,...]

Writes benchmarks/results/baselines.json (summary) and full per-query results under
benchmarks/results/runs/ (not committed); then run benchmarks/render.py to regenerate
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from keff.studies.baselines import ENCODERS, BaselinesConfig, run
from keff.studies.common import log, shared_data, write_json

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
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
    args = p.parse_args(argv)
    config = BaselinesConfig(
        encoders=tuple(n.strip() for n in args.encoders.split(",") if n.strip()),
        medquad_sample_groups=args.medquad_sample_groups,
        seed=args.seed,
        runs_dir=args.out.parent / "runs",
    )
    write_json(args.out, run(config, data=shared_data(args.data)))
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
