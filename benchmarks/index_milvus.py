"""Milvus Lite as the index's search backend on SciFact, against FAISS flat and exact search, one
encoder and fused (the study: keff.studies.index_milvus).

    python benchmarks/index_milvus.py [--data ../shared/data] [--single minilm] [--fused minilm,mpnet]

Writes benchmarks/results/index_milvus.json; benchmarks/render.py renders it. The indexes are built
in a temporary folder (--workdir keeps them). Needs `pip install 'keff[milvus,faiss]'`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from keff.errors import KeffError
from keff.studies.common import log, shared_data, write_json
from keff.studies.index_milvus import MilvusStudyConfig, run

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    d = MilvusStudyConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=None, help="shared data folder (default: ../shared/data)")
    p.add_argument("--dataset", default=d.dataset)
    p.add_argument("--single", default=d.single, help="encoder of the single-encoder part")
    p.add_argument("--fused", default=",".join(d.fused), help="encoders of the fused part (shipped vectors needed)")
    p.add_argument("--latency-queries", type=int, default=d.latency_queries)
    p.add_argument("--build-repeats", type=int, default=d.build_repeats)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--workdir", type=Path, default=None, help="build the indexes here (default: a temporary folder)")
    p.add_argument("--out", type=Path, default=HERE / "results" / "index_milvus.json")
    args = p.parse_args(argv)
    try:
        config = MilvusStudyConfig(
            dataset=args.dataset,
            single=args.single,
            fused=tuple(n.strip() for n in args.fused.split(",") if n.strip()),
            latency_queries=args.latency_queries,
            build_repeats=args.build_repeats,
            seed=args.seed,
            workdir=args.workdir,
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
