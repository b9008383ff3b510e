"""Fusion of specialists on a mixed-domain corpus (the study: keff.studies.fusion).

    python benchmarks/fusion.py [--data ../shared/data] [--only minilm,minilm-l3-onnx] [--no-drift]

Fine-tunes the domain specialists on first use (cached; hours on a small CPU), then runs every
fusion strategy. Writes benchmarks/results/fusion.json and .png; benchmarks/render.py renders them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from keff.errors import KeffError
from keff.paths import cache_dir
from keff.studies.common import log, shared_data, write_json
from keff.studies.fusion import FusionConfig, run
from keff.studies.fusion.plot import plot_fusion

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=None, help="shared data folder (default: ../shared/data)")
    p.add_argument("--out", type=Path, default=HERE / "results" / "fusion.json", help="result JSON (a PNG beside it)")
    p.add_argument("--medquad-groups", type=int, default=300, help="MedQuAD groups in the mixed corpus (seeded)")
    p.add_argument("--seed", type=int, default=0, help="seed of every split, sample and fit")
    p.add_argument("--drift", action=argparse.BooleanOptionalAction, default=True, help="also run the drift experiment")
    p.add_argument(
        "--specialists-out",
        type=Path,
        default=None,
        help="save the fitted specialists (SEF) into this folder (default: <keff cache>/fusion/specialists)",
    )
    p.add_argument("--only", default=None, help="comma-separated subset of specialists (must include the router)")
    args = p.parse_args(argv)
    if args.medquad_groups < 1:
        p.error("--medquad-groups must be >= 1")
    config = FusionConfig(
        medquad_groups=args.medquad_groups,
        seed=args.seed,
        drift=args.drift,
        specialists_out=args.specialists_out or cache_dir() / "fusion" / "specialists",
        only=tuple(n.strip() for n in args.only.split(",") if n.strip()) if args.only else None,
    )
    try:
        config.plans()  # a bad --only fails here, in a second, not after hours of fine-tuning
    except KeffError as exc:
        p.error(str(exc))
    results = run(config, data=shared_data(args.data))
    png = plot_fusion(results, args.out.with_suffix(".png"))
    results["plot"] = png.name
    write_json(args.out, results)
    picks = results["picks"]
    log(f"best single: {picks['best_single']}; best fused: {picks['best_fused']}")
    log(f"wrote {args.out} and {png}; specialists in {config.specialists_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
