"""Regenerate BENCHMARKS.md from the JSON files in benchmarks/results/ (never edit it by hand).

    python benchmarks/render.py [--results benchmarks/results] [--out BENCHMARKS.md]

Each results file names its benchmark (``"benchmark": "baselines"``, ...); a section renderer
per benchmark turns it into markdown.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from keff.atomic import atomic_write_text

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _fmt(x, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def render_baselines(res: dict) -> str:
    meta = res["meta"]
    out = [
        "## Raw-encoder baselines",
        "",
        "The untouched encoders with cosine similarity and exact search: the row every keff method "
        "must beat. Produced by `python benchmarks/baselines.py` "
        f"(seed {meta['seed']}, keff {meta['keff_version']}, {meta.get('timestamp_utc', '')}).",
        "",
        "### SciFact (BEIR), test split, full corpus",
        "",
    ]
    sci = [r for r in res["rows"] if r["task"] == "scifact"]
    rows = []
    for r in sci:
        m = r["metrics"]
        pub = r.get("published_ndcg@10")
        ok = (
            ""
            if pub is None
            else (f"{pub:.3f} ({'reproduced' if r['reproduced'] else 'NOT reproduced'}, ±{res['tolerance']})")
        )
        lat = (r.get("latency") or {}).get("single", {})
        rows.append(
            [
                r["system"],
                _fmt(m["ndcg@10"]),
                _fmt(m["mrr@10"]),
                _fmt(m["recall@10"]),
                _fmt(m["recall@100"]),
                _fmt(m["map@100"]),
                ok or "-",
                f"{lat.get('p50_us', 0):.0f} / {lat.get('p95_us', 0):.0f}",
                _fmt(r.get("probe_min_cosine"), 5),
            ]
        )
    out.append(
        _table(
            [
                "encoder",
                "nDCG@10",
                "MRR@10",
                "R@10",
                "R@100",
                "MAP@100",
                "published nDCG@10",
                "search p50/p95 (us)",
                "probe min cos",
            ],
            rows,
        )
    )
    out += [
        "",
        "`probe min cos`: the lowest cosine between keff's own encoding and the precomputed vector "
        "over the re-encoded probe texts (vectors are reused only when every probe reaches 0.999); "
        "`-` means keff encoded everything itself.",
        "",
    ]
    for task, title in (
        ("skills_qa", "Skills Q/A"),
        ("medquad", "MedQuAD (full)"),
        ("medquad_sample", "MedQuAD (seeded sample)"),
    ):
        sel = [r for r in res["rows"] if r["task"] == task]
        if not sel:
            continue
        out += [
            f"### {title}",
            "",
            "Queries are every question; the pool is every distinct answer; an answer is relevant "
            "when it belongs to the question's group (skills: same `cluster_id` or `original_answer`; "
            "MedQuAD: same `doc`).",
            "",
        ]
        if sel[0].get("sample"):
            out += [f"Sample: {sel[0]['sample']}.", ""]
        rows = [
            [
                r["system"],
                str(r["n_queries"]),
                str(r["n_docs"]),
                _fmt(r["metrics"]["hit@1"]),
                _fmt(r["metrics"]["hit@5"]),
                _fmt(r["metrics"]["hit@10"]),
                _fmt(r["metrics"]["mrr@100"]),
            ]
            for r in sel
        ]
        out.append(_table(["encoder", "queries", "pool", "Hit@1", "Hit@5", "Hit@10", "MRR@100"], rows))
        out.append("")
    if res.get("comparisons"):
        out += [
            "### Paired significance against the best encoder of each set",
            "",
            "Mean difference with a 95% bootstrap CI; two-sided paired randomisation test, Holm-corrected "
            "across the encoders of a set; Wilcoxon signed-rank p for reference.",
            "",
        ]
        rows = [
            [
                c["task"],
                c["metric"],
                c["system"],
                c["baseline"],
                _fmt(c["diff"]),
                f"[{c['ci_low']:.4f}, {c['ci_high']:.4f}]",
                f"{c['p_randomization']:.2g}",
                f"{c['p_holm']:.2g}",
                f"{c['p_wilcoxon']:.2g}",
            ]
            for c in res["comparisons"]
        ]
        out.append(
            _table(
                ["set", "metric", "encoder", "vs best", "diff", "95% CI", "p (rand.)", "p (Holm)", "p (Wilcoxon)"], rows
            )
        )
        out.append("")
    return "\n".join(out)


RENDERERS: dict[str, Callable[[dict], str]] = {"baselines": render_baselines}
ORDER = ["baselines"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", type=Path, default=HERE / "results")
    p.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = p.parse_args(argv)
    found = {}
    for path in sorted(args.results.glob("*.json")):
        res = json.loads(path.read_text())
        found[res["benchmark"]] = res
    unknown = set(found) - set(RENDERERS)
    if unknown:
        print(f"no renderer for {sorted(unknown)}", file=sys.stderr)
        return 2
    parts = [
        "# keff benchmarks",
        "",
        "Generated by `python benchmarks/render.py` from `benchmarks/results/*.json`; do not edit by hand. "
        "Machine: 2 CPU cores, shared and noisy; timings are medians within one run.",
        "",
    ]
    parts += [RENDERERS[name](found[name]) for name in ORDER if name in found]
    atomic_write_text(args.out, "\n".join(parts).rstrip() + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
