"""Index build throughput, in-process against Ray Data (the study: keff.studies.index_ray), and
byte-identity of their vectors on the same run.

    python benchmarks/index_ray.py [--data ../shared/data] [--docs 1000] [--repeats 3]

Writes benchmarks/results/index_ray.json; benchmarks/render.py renders it. With minilm on 2 cores
each build of 1,000 abstracts takes minutes: run it under nohup with a log.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from keff.studies.common import log, shared_data, write_json
from keff.studies.index_ray import IndexRayConfig, run

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    d = IndexRayConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=None, help="shared data folder (default: ../shared/data)")
    p.add_argument("--docs", type=int, default=d.n_docs, help="SciFact abstracts indexed")
    p.add_argument("--encoder", default=d.encoder)
    p.add_argument("--repeats", type=int, default=d.repeats, help="builds per engine")
    p.add_argument("--actors", type=int, default=d.actors, help="Ray encoder actors")
    p.add_argument("--batches-per-call", type=int, default=d.batches_per_call)
    p.add_argument("--out", type=Path, default=HERE / "results" / "index_ray.json")
    args = p.parse_args(argv)
    config = IndexRayConfig(
        n_docs=args.docs, encoder=args.encoder, repeats=args.repeats, actors=args.actors,
        batches_per_call=args.batches_per_call,
    )  # fmt: skip
    results = run(config, data=shared_data(args.data))
    write_json(args.out, results)
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
