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


#: When MedQuAD's document key became (source, doc) (keff commit e3fe7f8). Results measured
#: before it judged and grouped MedQuAD pairs by `doc` alone, which joins unrelated documents of
#: different sources (1,026 of 3,487 doc ids; 9,127 of 14,809 questions).
MEDQUAD_KEY_FIX_UTC = "2026-12-01T10:41:34+00:00"


def medquad_is_stale(res: dict) -> bool:
    """Whether a result was measured before MedQuAD's (source, doc) key fix."""
    return res.get("meta", {}).get("timestamp_utc", "") < MEDQUAD_KEY_FIX_UTC


def medquad_notice(res: dict, command: str) -> list[str]:
    """A warning above a section whose MedQuAD rows predate the (source, doc) key fix."""
    measured = res.get("meta", {}).get("timestamp_utc", "")
    if not medquad_is_stale(res):
        return []
    return [
        f"> **Stale MedQuAD rows** (measured {measured or 'at an unknown time'}): they judge and group MedQuAD "
        "pairs by `doc` alone, which joins unrelated documents of different sources; keff now keys MedQuAD "
        f"documents by (source, doc). Re-run `{command}` to refresh them; the other rows are unaffected.",
        "",
    ]


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
        *medquad_notice(res, "python benchmarks/baselines.py"),
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
            f"MedQuAD: same {'`doc`' if medquad_is_stale(res) else '(`source`, `doc`)'}).",
            "",
        ]
        if sel[0].get("sample"):
            out += [f"Sample: {sel[0]['sample']}.", ""]
        for sk in res.get("skipped", []):
            if sk["task"] == task:
                out += [f"Not run on this set: {sk['system']} ({sk['why']}).", ""]
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


def render_upgrade(res: dict) -> str:
    meta, cfg = res["meta"], res["config"]
    out = [
        "## Model upgrade without re-embedding (alignment maps)",
        "",
        *medquad_notice(res, "python benchmarks/upgrade.py"),
        "Produced by `python benchmarks/upgrade.py` "
        f"(seeds {cfg['seeds']}, anchors {cfg['anchors']}, low-rank rank {cfg['rank']}, "
        f"{meta.get('timestamp_utc', '')}). "
        "nDCG@10 of (a) the old model everywhere, (b) the new model everywhere (the ceiling), (c) new-model "
        "queries mapped into the old index, (d) the old corpus mapped into the new space and queried natively, "
        "(e) (a) and (d) together (the two cosines averaged, weights not tuned). Maps are fitted on anchor "
        "documents embedded by both models (never on evaluation queries); percentages are of the ceiling, "
        "mean over seeds.",
        "",
    ]
    out += [f"- {k}: {v}" for k, v in res["notes"].items()]
    out += ["", "| corpus | old -> new | (a) old | (b) new | (a) as % of (b) |", "|---|---|---|---|---|"]
    for b in res["baselines"]:
        out.append(
            f"| {b['corpus']} | {b['old']} -> {b['new']} | {b['ndcg_a']:.4f} | {b['ndcg_b']:.4f} | {b['pct_a']:.1f}% |"
        )
    anchors = cfg["anchors"]
    for b in res["baselines"]:
        key = (b["corpus"], b["old"], b["new"])
        rows_here = [x for x in res["summary"] if (x["corpus"], x["old"], x["new"]) == key]
        out += ["", f"### {b['corpus']}: {b['old']} -> {b['new']} (% of ceiling nDCG@10, mean ± std over seeds)", ""]
        header = ["map"] + [f"({c}) {n}" for c in ("c", "d", "e") for n in anchors]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for kind in cfg["maps"]:
            cells = [kind]
            for c in ("c", "d", "e"):
                for n in anchors:
                    hit = [x for x in rows_here if (x["condition"], x["map"], x["n_anchors"]) == (c, kind, n)]
                    cells.append(f"{hit[0]['pct_ceiling_mean']:.1f} ± {hit[0]['pct_ceiling_std']:.1f}" if hit else "-")
            lines.append("| " + " | ".join(cells) + " |")
        out += lines
    out += [
        "",
        "### Target: at least 98% of the ceiling with 1,000 anchors or fewer (best map per condition)",
        "",
    ]
    out += [
        "| corpus | old -> new | condition | best map | anchors | % of ceiling | meets 98%? |",
        "|---|---|---|---|---|---|---|",
    ]
    for b in res["baselines"]:
        for c in ("c", "d", "e"):
            cands = [
                x
                for x in res["summary"]
                if (x["corpus"], x["old"], x["new"], x["condition"]) == (b["corpus"], b["old"], b["new"], c)
                and x["n_anchors"] <= 1000
            ]
            if cands:
                best = max(cands, key=lambda x: x["pct_ceiling_mean"])
                ok = (
                    "yes"
                    if best["pct_ceiling_mean"] >= 98
                    else f"no ({98 - best['pct_ceiling_mean']:.2f} points short)"
                )
                out.append(
                    f"| {b['corpus']} | {b['old']} -> {b['new']} | ({c}) | {best['map']} | {best['n_anchors']} | "
                    f"{best['pct_ceiling_mean']:.1f}% | {ok} |"
                )
    sig = [c for c in res["comparisons"] if c["system"].endswith("/1000")]
    if sig:
        out += [
            "",
            "### Paired significance at 1,000 anchors (per-query nDCG@10 averaged over seeds)",
            "",
            "Difference to (a) and to (b) with a 95% bootstrap CI; randomisation p, Holm-corrected across all "
            "map/anchor settings of that corpus, pair and condition.",
            "",
            "| corpus | old -> new | system | vs | diff | 95% CI | p (Holm) |",
            "|---|---|---|---|---|---|---|",
        ]
        for c in sig:
            out.append(
                f"| {c['corpus']} | {c['old']} -> {c['new']} | {c['system']} | ({c['against']}) | {c['diff']:+.4f} | "
                f"[{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] | {c['p_holm']:.2g} |"
            )
    out += [
        "",
        "### Added query latency (maps fitted on 1,000 anchors, SciFact vectors, one run, interleaved)",
        "",
        f"Batch: {cfg['latency_batch']} rows per call, median of {cfg['latency_repeats']}; "
        "single: p50 over 300 one-row calls. "
        "`floor` is plain float32 matrix products of the map's own shapes (X @ W for dense maps, (X @ A) @ C for "
        "low rank, base + hidden + output products for the MLP); `dense` is one X @ W of shape (d_in, d_out). "
        "Ratios are medians of per-repeat ratios (each map call paired with the plain call before it).",
        "",
        "| old -> new | condition | map | shape | batch us/query | floor us | map/floor | map/dense "
        "| single p50 us | single map/floor |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for lat in res["latency"]:
        o, d = lat["own_shapes"], lat["dense"]
        out.append(
            f"| {lat['old']} -> {lat['new']} | ({lat['condition']}) | {lat['map']} | "
            f"{lat['shape'][0]}x{lat['shape'][1]} | "
            f"{o['batch_map_us']:.2f} | {o['batch_plain_us']:.2f} | {o['batch_ratio']:.2f} | {d['batch_ratio']:.2f} | "
            f"{o['single_map_p50_us']:.1f} | {o['single_ratio']:.2f} |"
        )
    out += ["", f"![upgrade benchmark](benchmarks/results/{res['plot']})", ""]
    return "\n".join(out)


def render_fusion(res: dict) -> str:
    meta, data = res["meta"], res["data"]
    out = [
        "## Fusion of specialists on a mixed-domain corpus",
        "",
        *medquad_notice(res, "python benchmarks/fusion.py"),
        "Produced by `python benchmarks/fusion.py` "
        f"(seed {meta['seed']}, {meta.get('timestamp_utc', '')}). One corpus: "
        + ", ".join(f"{n} {d} documents" for d, n in data["docs"].items())
        + "; test queries: "
        + ", ".join(f"{n} {d}" for d, n in data["test_queries"].items())
        + "; validation queries (everything tuned, calibrated or learned sees only these): "
        + ", ".join(f"{n} {d}" for d, n in data["val_queries"].items())
        + ".",
        "",
    ]
    out += [f"- {d}: {note}" for d, note in data["notes"].items()]
    out += ["", "### Specialists", "", "| specialist | encoder | fine-tuning | anchor cosine to minilm frame (mean / p10) |",
            "|---|---|---|---|"]  # fmt: skip
    for name, info in res["specialists"].items():
        ft = info.get("finetune")
        ft_txt = "-" if not ft else (f"{ft['steps']} steps, {ft['seconds']:.0f} s ({ft['stopped_by']}), {ft['pairs_used']} "
                                     f"pairs; train pos. cosine {ft['mean_pos_cos_first']:.3f} -> {ft['mean_pos_cos_last']:.3f}")  # fmt: skip
        cos = info.get("anchor_cosine_to_reference")
        cos_txt = "reference frame" if cos is None else f"{cos['mean']:.3f} / {cos['p10']:.3f}"
        out.append(f"| {name} | {Path(info['encoder']).name} | {ft_txt} | {cos_txt} |")
    domains = sorted(res["rows"][0]["domains"])
    out += ["", "### Every strategy on the test queries", "",
            "`F:` fused query against a fused document index in the shared (minilm) frame; `P:` per-specialist "
            "indexes, cosines combined with the query's weights; sigma^2 estimators: constant, centroid distance, "
            "kNN density, calibrated on validation error (isotonic).", "",
            "| strategy | family | nDCG@10 | MRR@10 | R@100 | " + " | ".join(f"nDCG@10 {d}" for d in domains) + " | notes |",
            "|" + "---|" * (6 + len(domains))]  # fmt: skip
    order = {"single": 0, "fused index": 1, "per-specialist indexes": 2, "ceiling": 3}
    for r in sorted(res["rows"], key=lambda r: (order[r["family"]], -r["metrics"]["ndcg@10"])):
        m = r["metrics"]
        notes = "; ".join(f"{k}: {v:.3g}" if isinstance(v, float) else f"{k}: {v}" for k, v in r["info"].items())
        out.append(f"| {r['strategy']} | {r['family']} | {m['ndcg@10']:.4f} | {m['mrr@10']:.4f} | {m['recall@100']:.4f} | "
                   + " | ".join(f"{r['domains'][d]['ndcg@10']:.4f}" for d in domains) + f" | {notes} |")  # fmt: skip
    picks = res["picks"]
    out += ["", "### Paired tests (nDCG@10; randomisation p Holm-corrected across strategies)", "",
            f"Best single specialist: `{picks['best_single']}`; best fused strategy: `{picks['best_fused']}` "
            "(picked on test among all strategies, which is why every p below is Holm-corrected over all of them).", "",
            "| strategy | vs | diff | 95% CI | p (Holm) |", "|---|---|---|---|---|"]  # fmt: skip
    for c in sorted(res["comparisons"], key=lambda c: (c["baseline"], -c["diff"])):
        out.append(f"| {c['system']} | {c['baseline']} | {c['diff']:+.4f} | [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] | "
                   f"{c['p_holm']:.2g} |")  # fmt: skip
    out += ["", "Per-domain slices: the best fused strategy against the best single specialist of each slice "
            "(paired randomisation p, uncorrected):", "", "| domain | best single there | n | diff | 95% CI | p | loses? |",
            "|---|---|---|---|---|---|---|"]  # fmt: skip
    for c in res["domain_checks"]:
        out.append(f"| {c['domain']} | {c['best_single']} | {c['n']} | {c['diff']:+.4f} | [{c['ci_low']:+.4f}, "
                   f"{c['ci_high']:+.4f}] | {c['p']:.2g} | {'yes' if c['loses'] else 'no'} |")  # fmt: skip
    lat = res["latency"]
    out += ["", "### Latency: Kalman against mean fusion (same aligned query vectors, interleaved, one run)", "",
            f"{lat['n_specialists']} specialists; batch of {lat['batch_queries']} test queries (median of repeats, "
            "per query) and single queries (p50 of 300); `+search` adds the exact search of the fused index.", "",
            "| mode | mean us | Kalman us | Kalman/mean | mean+search us | Kalman+search us | ratio |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for mode in ("batch", "single"):
        out.append(f"| {mode} | {lat[f'{mode}_mean_us']:.2f} | {lat[f'{mode}_kalman_us']:.2f} | {lat[f'{mode}_ratio_fuse']:.2f} | "
                   f"{lat[f'{mode}_mean+search_us']:.1f} | {lat[f'{mode}_kalman+search_us']:.1f} | {lat[f'{mode}_ratio_fuse_search']:.2f} |")  # fmt: skip
    if "batch_ratio_per_index" in lat:
        out += ["", "At equal caching (each document embedded once per specialist, nothing re-embedded per query): Kalman "
                "weights over per-specialist indexes (the `P:` family; one search of the concatenated own-frame vectors) "
                "against mean fusion over the fused index:", "",
                "| mode | mean+search us | per-index Kalman+search us | ratio |", "|---|---|---|---|"]  # fmt: skip
        for mode in ("batch", "single"):
            out.append(f"| {mode} | {lat[f'{mode}_mean+search_us']:.1f} | {lat[f'{mode}_per-index-kalman+search_us']:.1f} | "
                       f"{lat[f'{mode}_ratio_per_index']:.2f} |")  # fmt: skip
    out += ["", "### What the uncertainty estimates did (test queries; a diagnostic, nothing is fitted on it)", "",
            "Spread of sigma^2 (p95/p5) and its Spearman correlation with the specialist's own per-query error (1 - nDCG@10).", "",
            "| specialist | estimator | p95/p5 | max/min | Spearman rho | p |", "|---|---|---|---|---|---|"]  # fmt: skip
    for u in res["uncertainty"]:
        out.append(f"| {u['specialist']} | {u['estimator']} | {u['ratio_p95_p5']:.3g} | {u['ratio_max_min']:.3g} | "
                   f"{u['error_rho']:+.3f} | {u['error_p']:.2g} |")  # fmt: skip
    if "drift" in res:
        dr = res["drift"]
        b, a = dr["cosine_same_text"]["before_alignment"], dr["cosine_same_text"]["after_alignment"]
        out += ["", "### Drift: two siblings pushed apart, fused without and with alignment", "",
                "Two minilm copies fine-tuned (one on SciFact, one on MedQuAD) behind different random rotations of "
                f"their output. Cosine of their vectors of the same test query: mean {b['mean']:+.3f}, min {b['min']:+.3f} "
                f"({b['share_negative']:.0%} negative) before alignment; mean {a['mean']:+.3f}, min {a['min']:+.3f} after "
                "Procrustes maps into the minilm frame (fitted on training anchors).", "",
                "| strategy | nDCG@10 | " + " | ".join(domains) + " |", "|" + "---|" * (2 + len(domains))]  # fmt: skip
        for r in dr["rows"]:
            out.append(
                f"| {r['strategy']} | {r['metrics']['ndcg@10']:.4f} | "
                + " | ".join(f"{r['domains'][d]:.4f}" for d in domains)
                + " |"
            )
        if "comparisons" in dr:
            out += ["", "Paired tests of the aligned mean against each other row (nDCG@10; randomisation p, Holm):", "",
                    "| aligned mean vs | diff | 95% CI | p (Holm) |", "|---|---|---|---|"]  # fmt: skip
            for c in dr["comparisons"]:
                out.append(
                    f"| {c['system']} | {-c['diff']:+.4f} | [{-c['ci_high']:+.4f}, {-c['ci_low']:+.4f}] | {c['p_holm']:.2g} |"
                )
    out += ["", f"![fusion benchmark](benchmarks/results/{res['plot']})", ""]
    return "\n".join(out)


def render_slices(r: dict) -> list[str]:
    """Per-slice means and paired differences to identity of the first metric (SciFact's seen/new abstracts)."""
    if "slices" not in r:
        return []
    head, names = r["metrics"][0], list(r["slices"])
    first = {name: rows[0]["n_queries"] for name, rows in r["slices"].items()}
    out = [f"{head} on slices of the test claims (diff vs identity, CI, p). SciFact's train and test claims often cite "
           "the same abstracts; a map fitted on train pairs can learn where those abstracts sit, so the first slice "
           "measures that, and the second what a map does for claims about abstracts it never saw:", "",
           "| method | " + " | ".join(f"{n} (n={first[n]})" for n in names) + " |", "|" + "---|" * (1 + len(names))]  # fmt: skip
    for i, row in enumerate(r["slices"][names[0]]):
        cells = []
        for n in names:
            m = r["slices"][n][i]["metrics"][head]
            cells.append(
                f"{m['mean']:.4f} ({m['diff']:+.4f} [{m['diff_ci'][0]:+.4f}, {m['diff_ci'][1]:+.4f}], p {m['p']:.2g})"
            )
        out.append(f"| {row['method']} | " + " | ".join(cells) + " |")
    return out + [""]


def render_projection(res: dict) -> str:
    meta = res["meta"]
    out = [
        "## Query-to-answer projection on held-out questions",
        "",
        *medquad_notice(res, "OPENBLAS_NUM_THREADS=1 python benchmarks/projection.py"),
        "Produced by `OPENBLAS_NUM_THREADS=1 python benchmarks/projection.py` "
        f"(seed {meta['seed']}, {meta.get('timestamp_utc', '')}). Q/A sets: grouped 5-fold; maps fitted on four folds' "
        "(question, answer) pairs, applied to the fifth fold's questions only (the answer index is not rebuilt); "
        "the pool is every distinct answer and a hit is any answer of the question's group. SciFact: maps fitted on "
        "the train qrels' (claim, abstract) pairs, evaluated on the test claims. Means with bootstrap 95% CIs; "
        "`diff` is the paired difference to the untouched encoder (identity) with its CI and randomisation p.",
        "",
    ]
    targets = []
    for r in res["results"]:
        metrics = r["metrics"]
        head = metrics[0]
        title = f"### {r['dataset']} / {r['encoder']}" + (f" ({r['note']})" if r["note"] else "")
        if "fold_test_queries" in r and len(r["fold_test_queries"]) > 1:
            title += (f"\n\nHeld-out questions per fold: {', '.join(f'{n:,}' for n in r['fold_test_queries'])} "
                      f"(the largest split group holds {r['largest_group']:,} questions).")  # fmt: skip
        out += [title, "", "| method | " + " | ".join(metrics) + f" | {head} diff vs identity | p | notes |",
                "|" + "---|" * (len(metrics) + 4)]  # fmt: skip
        for row in r["rows"]:
            m = row["metrics"]
            cells = [f"{m[x]['mean']:.4f} [{m[x]['ci'][0]:.3f}, {m[x]['ci'][1]:.3f}]" for x in metrics]
            d = m[head]
            notes = []
            if "cosine_to_teacher" in row:
                notes.append(f"cosine to teacher {row['cosine_to_teacher']:.4f}; {row['parameters']:,.0f} parameters")
            if "best_epoch" in row:
                notes.append(f"mean best epoch {row['best_epoch']:.1f} (0 = identity kept)")
            out.append(f"| {row['method']} | " + " | ".join(cells) + f" | {d['diff']:+.4f} [{d['diff_ci'][0]:+.4f}, "
                       f"{d['diff_ci'][1]:+.4f}] | {d['p']:.2g} | {'; '.join(notes)} |")  # fmt: skip
        out.append("")
        out += render_slices(r)
        maps = [row for row in r["rows"] if row["method"] != "identity"]
        best = max(maps, key=lambda row: row["metrics"][head]["diff"])
        teacher = next((row for row in maps if row["method"] == "routed-centroid"), None)
        student = next((row for row in maps if row["method"].startswith("student")), None)
        gap = None if not (teacher and student) else student["metrics"][head]["mean"] - teacher["metrics"][head]["mean"]
        targets.append((r, best, gap, student))
    out += ["### Targets", "", "| set | best map | its diff vs identity (CI) | >= 3 points, CI excludes 0? | "
            "student - teacher | student parameters |", "|---|---|---|---|---|---|"]  # fmt: skip
    for r, best, gap, student in targets:
        d = best["metrics"][r["metrics"][0]]
        ok = d["diff"] >= 0.03 and d["diff_ci"][0] > 0
        miss = "yes" if ok else f"no ({(0.03 - d['diff']) * 100:.1f} points short)" if d["diff"] < 0.03 else "no (CI)"
        gap_txt = "-" if gap is None else f"{gap * 100:+.2f} points"
        params = "-" if student is None else f"{student['parameters']:,.0f}"
        out.append(f"| {r['dataset']} / {r['encoder']} | {best['method']} | {d['diff']:+.4f} [{d['diff_ci'][0]:+.4f}, "
                   f"{d['diff_ci'][1]:+.4f}] | {miss} | {gap_txt} | {params} |")  # fmt: skip
    sz, tp = res["sizes_skills_mpnet"], res["throughput"]
    out += ["", "### Routed model size and speed (skills, mpnet 768-d)", ""]
    for name, info in sz.items():
        out.append(f"- {name} with K by effective rank = {info['n_clusters']}: {info['megabytes']:.2f} MB, "
                   f"{info['parameters']:,} stored numbers.")  # fmt: skip
    out += [f"- K = {tp['n_clusters']}, rank {tp['rank']}: {tp['megabytes_centroid']:.2f} MB (centroid routing), "
            f"{tp['megabytes_question']:.2f} MB (per-question routing, which also stores the training questions).",
            f"- Routing + projection of a batch of {tp['batch']:,} queries, one BLAS thread, interleaved in one run: "
            f"{tp['qps_centroid']:,.0f} queries/s with centroid routing, {tp['qps_question']:,.0f} with per-question "
            f"routing (cost ratio {tp['question_over_centroid_cost']:.2f}x).", "",
            f"![projection benchmark](benchmarks/results/{res['plot']})", ""]  # fmt: skip
    return "\n".join(out)


RENDERERS: dict[str, Callable[[dict], str]] = {
    "baselines": render_baselines,
    "upgrade": render_upgrade,
    "fusion": render_fusion,
    "projection": render_projection,
}
ORDER = ["baselines", "upgrade", "fusion", "projection"]


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
