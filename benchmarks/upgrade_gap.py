"""Model upgrades measured by the share of the old-to-new gap they close.

The study is :mod:`keff.studies.upgrade`; every mapped system gets its gap closed (with a
bootstrap CI over queries) and whether it regresses below the old model. Five parts, on
SciFact test unless said:

- ``generic``: minilm-l3-onnx -> minilm with anchors from the other shared corpora only;
- ``questions``: minilm-l3-onnx -> minilm with query-kind anchors (questions of the other
  shared Q/A corpora), for mapping queries;
- ``corpus``: minilm-l3-onnx -> minilm and -> mpnet with anchors from the SciFact corpus
  (unlabelled documents the index holds anyway);
- ``sibling``: minilm -> minilm fine-tuned on SciFact's training pairs (the "I fine-tuned my
  model" upgrade), anchors from the corpus;
- ``skills``: minilm -> mpnet on skills Q/A (150 seeded groups; anchors: answers of the others).

    OPENBLAS_NUM_THREADS=1 python benchmarks/upgrade_gap.py [--data ../shared/data] [--parts a,b,...]

Writes benchmarks/results/upgrade_gap.json and .png; benchmarks/render.py renders them.
"""

from __future__ import annotations

import sys
from pathlib import Path

from keff.eval import run_metadata
from keff.studies.common import driver_parser, log, save_results, shared_data, write_json
from keff.studies.upgrade import UpgradeConfig, plot_gap, run
from keff.studies.upgrade.sibling import finetuned_sibling

HERE = Path(__file__).resolve().parent
SEEDS = (0, 1, 2)
#: Maps of every part; the local map (cluster-routed) needs one width on both sides.
MAPS = ("procrustes", "affine", "contrastive", "cluster-routed")
#: The maps of parts with a pair of different widths (384 -> 768).
SAME_OR_OTHER_WIDTH = ("procrustes", "affine", "contrastive")
#: With up to 10,000 generic anchors, a nonlinear map too (up to 40 epochs; minutes per fit at 10,000 here).
RICH_MAPS = (*MAPS, "mlp-affine")
PARTS = ("generic", "questions", "corpus", "sibling", "skills")


def part_config(part: str, data: Path) -> UpgradeConfig:
    common = {"corpora": ("scifact",), "seeds": SEEDS, "latency_corpus": None}
    if part in ("generic", "questions"):
        source = "generic" if part == "generic" else "generic-questions"
        return UpgradeConfig(pairs=(("minilm-l3-onnx", "minilm"),), maps=RICH_MAPS, anchors=(1000, 3000, 10000),
                             anchor_source=source, generic_pool=11000, **common)  # fmt: skip
    if part == "corpus":
        return UpgradeConfig(pairs=(("minilm-l3-onnx", "minilm"), ("minilm-l3-onnx", "mpnet")),
                             maps=SAME_OR_OTHER_WIDTH, anchors=(1000, 3000), **common)  # fmt: skip
    if part == "sibling":
        return UpgradeConfig(pairs=(("minilm", str(finetuned_sibling(data))),), maps=MAPS, anchors=(100, 300, 1000),
                             **common)  # fmt: skip
    if part == "skills":
        return UpgradeConfig(pairs=(("minilm", "mpnet"),), corpora=("skills",), maps=SAME_OR_OTHER_WIDTH,
                             anchors=(100, 300, 1000), seeds=SEEDS, latency_corpus=None)  # fmt: skip
    raise SystemExit(f"unknown part {part!r}: choose from {', '.join(PARTS)}")


def main(argv: list[str] | None = None) -> int:
    p = driver_parser(__doc__, HERE / "results" / "upgrade_gap.json")
    p.add_argument("--parts", default=",".join(PARTS))
    args = p.parse_args(argv)
    data = shared_data(args.data)
    parts, partial = [], Path(args.out).with_suffix(".partial.json")
    for part in args.parts.split(","):
        log(f"part {part}")
        parts.append({"part": part, **run(part_config(part, data), data=data)})
        write_json(partial, {"benchmark": "upgrade_gap", "parts": parts})  # a later part's failure loses nothing
        log(f"parts so far written to {partial}")
    results = {"benchmark": "upgrade_gap", "meta": run_metadata(seed=SEEDS[0]), "parts": parts}
    save_results(args.out, results, lambda png: plot_gap(results, png))
    partial.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
