"""Model upgrade without re-embedding: how much of the new model's quality does a map recover?

The study is :mod:`keff.studies.upgrade` (its docstring says what is measured); this driver turns
the command line into an :class:`~keff.studies.upgrade.UpgradeConfig`, runs it, and writes the
results and the figure.

    python benchmarks/upgrade.py [--data ../shared/data] [--quick]

Writes benchmarks/results/upgrade.json and benchmarks/results/upgrade.png; then
benchmarks/render.py regenerates BENCHMARKS.md. ``--latency-only`` re-measures only the latency
section of an existing results file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from keff.errors import KeffError
from keff.studies.common import log, save_results, shared_data, write_json
from keff.studies.upgrade import UpgradeConfig, plot, remeasure_latency, run

HERE = Path(__file__).resolve().parent


def ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(","))


def names(text: str) -> tuple[str, ...]:
    return tuple(text.split(","))


def pairs(text: str) -> tuple[tuple[str, str], ...]:
    return tuple(tuple(pair.split(":")) for pair in text.split(","))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    defaults = UpgradeConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--pairs", type=pairs, default=defaults.pairs, help="old:new,...")
    p.add_argument("--corpora", type=names, default=defaults.corpora)
    p.add_argument("--maps", type=names, default=defaults.maps)
    p.add_argument("--anchors", type=ints, default=defaults.anchors)
    p.add_argument("--seeds", type=ints, default=defaults.seeds)
    p.add_argument("--rank", type=int, default=defaults.rank, help="rank of the low-rank map")
    p.add_argument("--medquad-groups", type=int, default=defaults.medquad_groups)
    p.add_argument("--medquad-anchor-pool", type=int, default=defaults.medquad_anchor_pool)
    p.add_argument("--latency-corpus", default=defaults.latency_corpus, help="corpus whose vectors time the maps")
    p.add_argument("--latency-anchors", type=int, default=defaults.latency_anchors)
    p.add_argument("--latency-batch", type=int, default=defaults.latency_batch)
    p.add_argument("--latency-repeats", type=int, default=defaults.latency_repeats)
    p.add_argument("--quick", action="store_true", help="one seed, 100 and 1000 anchors (a smoke run)")
    p.add_argument(
        "--latency-only",
        action="store_true",
        help="re-measure only the latency section of an existing --out file (maps refitted on the latency corpus)",
    )
    p.add_argument("--out", type=Path, default=HERE / "results" / "upgrade.json")
    return p.parse_args(argv)


def config_of(args: argparse.Namespace) -> UpgradeConfig:
    driver_only = ("data", "latency_only", "out")
    return UpgradeConfig(**{k: v for k, v in vars(args).items() if k not in driver_only})


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config, data = config_of(args), shared_data(args.data)
    except KeffError as exc:
        log(f"error: {exc}")
        return 2
    if args.latency_only and not args.out.is_file():
        log(f"error: --latency-only re-measures an existing results file; {args.out} does not exist")
        return 2
    if args.latency_only:
        write_json(args.out, remeasure_latency(config, json.loads(args.out.read_text()), data=data))
        log(f"re-measured latency in {args.out}")
        return 0
    results = run(config, data=data)
    save_results(args.out, results, lambda png: plot(results, png))
    return 0


if __name__ == "__main__":
    sys.exit(main())
