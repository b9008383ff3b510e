"""Load test of the search service on 127.0.0.1: concurrency levels, then a soak (the study:
keff.studies.serve_load).

    python benchmarks/serve_load.py [--data ../shared/data] [--levels 1,8,32,64] [--seconds 25]
        [--soak-seconds 600] [--workdir /tmp/serve_load/work]

Starts ``keff serve`` over a freshly built index (SciFact, minilm; the cache seeded from the
shipped vectors) on a free loopback port, measures, and stops it. Writes
benchmarks/results/serve_load.json and serve_load.png (memory and throughput over the soak);
benchmarks/render.py renders them.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from keff.errors import KeffError
from keff.studies.common import log, shared_data, write_json
from keff.studies.serve_load import ServeLoadConfig, plot_soak, run

HERE = Path(__file__).resolve().parent


def _stop(signum, frame):  # SIGTERM -> SystemExit, so the server is stopped on the way out
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    d = ServeLoadConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=None, help="shared data folder (default: ../shared/data)")
    p.add_argument("--dataset", default=d.dataset)
    p.add_argument("--encoder", default=d.encoder)
    p.add_argument("--levels", default=",".join(map(str, d.levels)), help="concurrency levels, comma-separated")
    p.add_argument("--seconds", type=float, default=d.seconds, help="measured seconds per level")
    p.add_argument("--warmup-seconds", type=float, default=d.warmup_seconds)
    p.add_argument("--max-requests", type=int, default=d.max_requests, help="most measured requests per level")
    p.add_argument("--queries-per-request", type=int, default=d.queries_per_request)
    p.add_argument("--k", type=int, default=d.k)
    p.add_argument("--soak-seconds", type=float, default=d.soak_seconds, help="0: no soak")
    p.add_argument("--soak-concurrency", type=int, default=d.soak_concurrency)
    p.add_argument("--sample-seconds", type=float, default=d.sample_seconds)
    p.add_argument("--batch-window-ms", type=float, default=d.batch_window_ms)
    p.add_argument("--max-batch", type=int, default=d.max_batch)
    p.add_argument("--host", default=d.host, help="loopback address only")
    p.add_argument("--server-threads", type=int, default=None, help="OMP/MKL threads of the server (default: unset)")
    p.add_argument("--no-seed-vectors", action="store_true", help="do not seed keff's cache from shipped vectors")
    p.add_argument("--workdir", type=Path, default=None, help="cache, index and server log (default: a temp folder)")
    p.add_argument("--out", type=Path, default=HERE / "results" / "serve_load.json")
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    try:
        config = ServeLoadConfig(
            dataset=args.dataset, encoder=args.encoder, levels=tuple(int(c) for c in args.levels.split(",") if c),
            seconds=args.seconds, warmup_seconds=args.warmup_seconds, max_requests=args.max_requests,
            queries_per_request=args.queries_per_request, k=args.k, soak_seconds=args.soak_seconds,
            soak_concurrency=args.soak_concurrency, sample_seconds=args.sample_seconds,
            batch_window_ms=args.batch_window_ms, max_batch=args.max_batch, host=args.host,
            server_threads=args.server_threads, seed_vectors=not args.no_seed_vectors, workdir=args.workdir,
        )  # fmt: skip
        data = shared_data(args.data)
        results = run(config, data=data)
    except (KeffError, ValueError) as exc:
        log(f"error: {exc}")
        return 2
    png = plot_soak(results, args.out.with_suffix(".png"))
    if png is not None:
        results["plot"] = png.name
        log(f"wrote {png}")
    write_json(args.out, results)
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
