"""The persistent index at scale (the study: keff.studies.index_scale): build time, memory, disk
size, latency and recall@10 of the exact and approximate backends on synthetic vectors fitted to
real ones, and SciFact search latency with and without encoding.

    python benchmarks/index_scale.py [--data ../shared/data] [--sizes 10000,100000,1000000]

Writes benchmarks/results/index_scale.json; benchmarks/render.py renders it. The 1M builds take
about an hour on 2 cores: run it under nohup with a log.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from keff.studies.common import log, shared_data, write_json
from keff.studies.index_scale import IndexScaleConfig, run

HERE = Path(__file__).resolve().parent


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def main(argv: list[str] | None = None) -> int:
    d = IndexScaleConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=None, help="shared data folder (default: ../shared/data)")
    p.add_argument("--sizes", type=_ints, default=d.sizes, help="synthetic document counts, comma-separated")
    p.add_argument("--backends", type=lambda s: tuple(s.split(",")), default=d.backends)
    p.add_argument("--ef-search", type=_ints, default=d.ef_search, help="HNSW ef_search settings swept")
    p.add_argument("--nprobe", type=_ints, default=d.nprobe, help="IVF nprobe settings swept")
    p.add_argument("--hnsw-m", type=int, default=d.hnsw_m)
    p.add_argument("--hnsw-ef-construction", type=int, default=d.hnsw_ef_construction)
    p.add_argument("--ivf-nlist", type=int, default=d.ivf_nlist, help="0: the backend's default, 4 sqrt(n)")
    p.add_argument("--queries", type=int, default=d.n_queries)
    p.add_argument("--threads", type=int, default=d.threads, help="BLAS/OpenMP threads of each measurement")
    p.add_argument("--no-real", action="store_true", help="skip the real SciFact vectors")
    p.add_argument("--no-encoding", action="store_true", help="skip the SciFact latency with encoding")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--workdir", type=Path, default=None, help="where indexes are built (default: a temp folder)")
    p.add_argument("--out", type=Path, default=HERE / "results" / "index_scale.json")
    args = p.parse_args(argv)
    config = IndexScaleConfig(
        sizes=args.sizes,
        backends=args.backends,
        ef_search=args.ef_search,
        nprobe=args.nprobe,
        hnsw_m=args.hnsw_m,
        hnsw_ef_construction=args.hnsw_ef_construction,
        ivf_nlist=args.ivf_nlist,
        n_queries=args.queries,
        threads=args.threads,
        real=not args.no_real,
        encoding_latency=not args.no_encoding,
        seed=args.seed,
        workdir=args.workdir,
    )
    results = run(config, data=shared_data(args.data))
    write_json(args.out, results)
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
