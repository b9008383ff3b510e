"""Model upgrade of a persistent index without downtime: upgrade, re-embed, switch over (the study:
keff.studies.index_upgrade).

    python benchmarks/index_upgrade.py [--data ../shared/data] [--old minilm-l3-onnx] [--new minilm]

Writes benchmarks/results/index_upgrade.json; benchmarks/render.py renders it. The indexes are built
in a temporary folder (--workdir keeps them).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from keff.errors import KeffError
from keff.studies.common import log, shared_data, write_json
from keff.studies.index_upgrade import IndexUpgradeConfig, run

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    d = IndexUpgradeConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=None, help="shared data folder (default: ../shared/data)")
    p.add_argument("--dataset", default=d.dataset)
    p.add_argument("--old", default=d.old, help="encoder the index is built with")
    p.add_argument("--new", default=d.new, help="encoder it is upgraded to")
    p.add_argument("--anchors", type=int, default=d.anchors)
    p.add_argument("--map", dest="map_kind", default=d.map_kind)
    p.add_argument("--holdout", type=float, default=d.holdout)
    p.add_argument("--validations", default=",".join(d.validations), help="tried in order: pseudo, train")
    p.add_argument("--chunk", type=int, default=d.chunk)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--no-seed-vectors", action="store_true", help="do not seed keff's cache from shipped vectors")
    p.add_argument("--workdir", type=Path, default=None, help="build the indexes here (default: a temporary folder)")
    p.add_argument("--out", type=Path, default=HERE / "results" / "index_upgrade.json")
    args = p.parse_args(argv)
    try:
        config = IndexUpgradeConfig(
            dataset=args.dataset, old=args.old, new=args.new, anchors=args.anchors, map_kind=args.map_kind,
            holdout=args.holdout, validations=tuple(v for v in args.validations.split(",") if v), chunk=args.chunk,
            seed=args.seed, seed_vectors=not args.no_seed_vectors, workdir=args.workdir,
        )  # fmt: skip
        data = shared_data(args.data)
    except KeffError as exc:
        log(f"error: {exc}")
        return 2
    write_json(args.out, run(config, data=data))
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
