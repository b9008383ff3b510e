"""The persistent index on real data: fusion weights fitted on train claims, scored on test claims
(the study: keff.studies.index).

    python benchmarks/index.py [--data ../shared/data] [--encoders minilm,mpnet]

Writes benchmarks/results/index.json; benchmarks/render.py renders it. The indexes are built in a
temporary folder (--workdir keeps them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from keff.studies.common import log, shared_data, write_json
from keff.studies.index import IndexStudyConfig, run

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=None, help="shared data folder (default: ../shared/data)")
    p.add_argument("--encoders", default="minilm,mpnet", help="encoders of the fused index (shipped vectors needed)")
    p.add_argument("--dataset", default="scifact")
    p.add_argument("--step", type=float, default=0.1, help="grid spacing of the fusion weights")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, default=None, help="build the indexes here (default: a temporary folder)")
    p.add_argument("--out", type=Path, default=HERE / "results" / "index.json")
    args = p.parse_args(argv)
    config = IndexStudyConfig(
        encoders=tuple(n.strip() for n in args.encoders.split(",") if n.strip()),
        dataset=args.dataset,
        step=args.step,
        seed=args.seed,
        workdir=args.workdir,
    )
    write_json(args.out, run(config, data=shared_data(args.data)))
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
