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


def upgrade_baselines(baselines: list[dict]) -> list[str]:
    """The table of (a) the old and (b) the new model per corpus and pair (a model folder by its name)."""
    out = ["| corpus | old -> new | (a) old | (b) new | (a) as % of (b) |", "|---|---|---|---|---|"]
    for b in baselines:
        out.append(f"| {b['corpus']} | {b['old']} -> {Path(b['new']).name} | {b['ndcg_a']:.4f} | {b['ndcg_b']:.4f} | "
                   f"{b['pct_a']:.1f}% |")  # fmt: skip
    return out


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
    out += ["", *upgrade_baselines(res["baselines"])]
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


def render_index_fusion(part: dict) -> list[str]:
    """The ``fusion`` part of the index study: fusion weights fitted on train, scored on test."""
    fit, ev, enc = part["fit"], part["eval"], part["encoders"]
    weights = ", ".join(f"{n} {w:.2f}" for n, w in part["weights"].items())
    repro = "; ".join(f"{n} {r['index']:.4f} vs {r['keff_eval']:.4f} ({'identical per query' if r['identical'] else 'DIFFERENT'})"
                      for n, r in part["reproduces_keff_eval"].items())  # fmt: skip
    out = [f"### Fusion weights fitted on {part['dataset']} {fit['split']} queries, scored on {ev['split']} queries", "",
           f"One index of {' + '.join(enc)} vectors ({part['backend']} search, {ev['n_docs']:,} documents); "
           f"`keff index fit-fusion` tuned one weight per encoder on the {fit['n_queries']:,} {fit['split']} queries only "
           f"({fit['objective']}, grid step {fit['step']}, {fit['seconds']:.1f} s): **{weights}** ({fit['split']} "
           f"{fit['objective']} {fit['train_objective']:.4f}); `keff index eval` scored the {ev['n_queries']} "
           f"{ev['split']} queries. Each encoder's own index reproduces `keff eval` ({repro}).", "",
           "| system | weights | nDCG@10 | MRR@10 | R@100 | p50 search (us) |", "|---|---|---|---|---|---|"]  # fmt: skip
    for r in part["rows"]:
        m, w = r["metrics"], r.get("weights")
        lat = ((r.get("latency") or {}).get("single") or {}).get("p50_us")
        w_txt = "-" if w is None else " / ".join(f"{x:.2f}" for x in w)
        out.append(f"| {r['system']} | {w_txt} | {m['ndcg@10']:.4f} | {m['mrr@10']:.4f} | {m['recall@100']:.4f} | "
                   f"{_fmt(lat, 0)} |")  # fmt: skip
    out += ["", "Paired tests (fused minus single encoder, nDCG@10 per query; bootstrap 95% CI, randomisation p, "
            "Holm across the two fusions compared with each encoder):", "",
            "| fused | single | difference | 95% CI | p | p (Holm) |", "|---|---|---|---|---|---|"]  # fmt: skip
    for c in part["comparisons"]:
        out.append(f"| {c['system']} | {c['baseline']} | {c['diff']:+.4f} | [{c['ci_low']:+.4f}, {c['ci_high']:+.4f}] | "
                   f"{c['p_randomization']:.2g} | {c['p_holm']:.2g} |")  # fmt: skip
    grid = ", ".join(f"{g['weights'][0]:.1f}: {g['objective']:.4f}" for g in fit["grid"])
    out += ["", f"{fit['split'].capitalize()} {fit['objective']} by the weight of {enc[0]} (the rest on "
            f"{' + '.join(enc[1:])}): {grid}." if len(enc) == 2 else ""]  # fmt: skip
    singles = [r for r in part["rows"] if len(r.get("encoders", [])) == 1]
    best = max(singles, key=lambda r: r["metrics"]["ndcg@10"])
    tuned = part["rows"][-1]["metrics"]["ndcg@10"]
    gap = tuned - best["metrics"]["ndcg@10"]
    verdict = "beats" if gap > 0 else "matches" if gap == 0 else "falls short of"
    out += ["", f"The fitted fusion {verdict} the better single encoder ({best['system']}) by {gap:+.4f} nDCG@10 "
            "on the test queries (see the paired test for whether that is more than noise).", ""]  # fmt: skip
    return out


#: Parts of the index study's results, rendered in this order when present.
INDEX_PARTS: dict[str, Callable[[dict], list[str]]] = {"fusion": render_index_fusion}


def render_index(res: dict) -> str:
    meta = res["meta"]
    out = ["## The persistent index (`keff index`)", "",
           f"Produced by `python benchmarks/index.py` (seed {meta['seed']}, keff {meta['keff_version']}, "
           f"{meta.get('timestamp_utc', '')}).", ""]  # fmt: skip
    for name, render in INDEX_PARTS.items():
        if name in res:
            out += render(res[name])
    return "\n".join(out)


def _index_setting(run: dict, target: float) -> dict:
    """The setting a table row shows: the fastest reaching ``target`` recall, else the most accurate."""
    sets = run["settings"]
    good = [s for s in sets if s["recall@10"] >= target]
    return max(good, key=lambda s: s["batch"]["queries_per_s"]) if good else max(sets, key=lambda s: s["recall@10"])


def _index_params(params: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in params.items()) or "-"


def _index_tables(cloud: dict, target: float) -> list[str]:
    rows, sweep = [], []
    for r in cloud["runs"]:
        if "error" in r:
            rows.append([f"{r['n']:,}", r["backend"], "not measured: " + r["error"]] + ["-"] * 8)
            continue
        s = _index_setting(r, target)
        build = {k: v for k, v in r["build_params"].items() if k not in ("kind", "ef_search", "nprobe")}
        rows.append([f"{r['n']:,}", r["backend"], _index_params({**build, **s["params"]}), f"{r['build_s']:,.1f}",
                     f"{r['peak_build_mb']:,.0f} ({r['rss_loaded_mb'] - r['rss_base_mb']:,.0f})",
                     f"{r['rss_serving_mb'] - r['rss_base_mb']:,.0f}", f"{r['disk_mb']:,.0f}",
                     f"{s['single']['p50_us'] / 1e3:,.2f} / {s['single']['p95_us'] / 1e3:,.2f}",
                     f"{s['batch']['queries_per_s']:,.0f}", f"{s['recall@10']:.4f}", f"{r['open_s']:,.1f}"])  # fmt: skip
        if len(r["settings"]) > 1:
            for s in r["settings"]:
                sweep.append([f"{r['n']:,}", r["backend"], _index_params(s["params"]), f"{s['recall@10']:.4f}",
                              f"{s['batch']['queries_per_s']:,.0f}",
                              f"{s['single']['p50_us'] / 1e3:,.2f} / {s['single']['p95_us'] / 1e3:,.2f}"])  # fmt: skip
    out = [_table(["documents", "backend", "setting", "build s", "peak RSS MB (data)", "serving MB", "disk MB",
                   "p50 / p95 ms", "batched q/s", "recall@10", "open s"], rows), ""]  # fmt: skip
    if sweep:
        out += ["Search-time settings on the same structures:", "",
                _table(["documents", "backend", "setting", "recall@10", "batched q/s", "p50 / p95 ms"], sweep), ""]  # fmt: skip
    return out


def _index_verdict(t: dict, cfg: dict) -> str:
    if t.get("met") is None:
        return f"- {t['n']:,} documents: {t.get('why', 'not measured')}."
    best = t["best"]
    if best is None:
        return (f"- {t['n']:,} documents: no approximate setting reached recall@10 {cfg['target_recall']}: "
                "target **not met**.")  # fmt: skip
    per = "; ".join(f"{k}: {_index_params(c['params'])}, recall {c['recall@10']:.4f}, {c['speedup_batched']:.1f}x"
                    for k, c in t["best_per_backend"].items() if c) or "-"  # fmt: skip
    return (f"- {t['n']:,} documents: {best['backend']} ({_index_params(best['params'])}) reaches recall@10 "
            f"{best['recall@10']:.4f} at {best['qps']:,.0f} batched q/s, {best['speedup_batched']:.1f}x exact's "
            f"{t['exact_qps']:,.0f} (single-query p50 {best['speedup_single_p50']:.0f}x faster): target "
            f"**{'met' if t['met'] else 'not met'}**. Fastest per backend at the recall target: {per}.")  # fmt: skip


def render_index_scale(res: dict) -> str:
    meta, cfg, model = res["meta"], res["config"], res["data_model"]
    target = cfg["target_recall"]
    out = [
        "## The persistent index at scale",
        "",
        "Produced by `python benchmarks/index_scale.py` (the study: `keff.studies.index_scale`; seed "
        f"{meta['seed']}, keff {meta['keff_version']}, {meta.get('timestamp_utc', '')}). Every index is built "
        "through `Index.build` (vectors given, placeholder texts), reopened with every check and searched through "
        f"`Index.search_vectors`, each in its own process with {cfg['threads']} BLAS/OpenMP thread(s) "
        f"(the machine has {meta.get('cpus', '?')} cores, shared with other jobs: timings are noisy). Recall@10 is "
        f"against exact search on the same {cfg['n_queries']:,} held-out queries; batched q/s is the median of "
        f"{cfg['batch_repeats']} whole-batch searches; p50/p95 are single queries. Peak RSS is the child process's "
        "high-water mark during the build (in brackets: the data it was given, vectors and documents, already in "
        "memory); serving MB is the RSS of the reopened index above the bare interpreter. The setting shown per "
        f"approximate backend is its fastest one reaching recall@10 >= {target}.",
        "",
        "### Synthetic vectors: the data model",
        "",
        f"Isotropic random vectors have no neighbourhood structure, so the documents and queries are drawn from a "
        f"model fitted to the {model['components']:,} real minilm vectors of SciFact (`{model['fitted_to']}`): a "
        "mixture of anisotropic Gaussians on the sphere, one per real vector, centred on it, spread along the "
        f"top {model['rank']} directions of the offsets to its {model['neighbours']} nearest real neighbours "
        "(by SVD; spread = singular value / sqrt(neighbours)), then normalised. A draw picks a real vector "
        "uniformly. It keeps the real topics, their local directions and widths, and a low local dimension. "
        "Queries are fresh draws, never documents. At the real size the model matches the real vectors; one "
        "Gaussian with the real mean and covariance, or isotropic vectors, do not:",
        "",
    ]
    check = model["check"]
    ivf_key = next(k for k in check[0] if k.startswith("ivf_"))
    out.append(_table(["cloud", "docs / queries", "median NN1 cos", "median NN10 cos", "mean cos", "local dim (MLE)",
                       "participation ratio", "HNSW M16 ef16 recall@10", ivf_key.replace("_", " ")],
                      [[c["cloud"], f"{c['docs']:,} / {c['queries']:,}", f"{c['nn1_cos']:.3f}", f"{c['nn10_cos']:.3f}",
                        f"{c['mean_cos']:.3f}", f"{c['lid']:.1f}", f"{c['participation_ratio']:.0f}",
                        f"{c['hnsw_m16_ef16_recall']:.3f}", f"{c[ivf_key]:.3f}"] for c in check]))  # fmt: skip
    synth = [c for c in res["clouds"] if c["cloud"] == "synthetic"]
    real = [c for c in res["clouds"] if c["cloud"] != "synthetic"]
    if synth:
        dens = ", ".join(f"{c['n']:,}: {c['median_nn1_cos']:.3f} / {c['median_nn10_cos']:.3f}" for c in synth)
        out += ["", f"The cloud densifies with size (median query cosine to its 1st / 10th neighbour: {dens}).", "",
                "### Build, memory, latency, recall", ""]  # fmt: skip
        for c in synth:
            out += _index_tables(c, target)
        verdicts = [t for t in res["targets"] if t["n"] in {c["n"] for c in synth}]
        out += [f"### Target: recall@10 >= {target} and >= {cfg['target_speedup']:g}x exact's batched q/s", ""]
        out += [_index_verdict(t, cfg) for t in verdicts] + [""]
    for c in real:
        out += [f"### Sanity check: the real SciFact vectors ({c['n']:,} abstracts, {c['queries']:,} real claims as "
                "queries)", ""]  # fmt: skip
        out += _index_tables(c, target)
    enc = res.get("encoding_latency")
    if enc and "error" not in enc:
        ms = lambda d: f"{d['p50_us'] / 1e3:,.1f} / {d['p95_us'] / 1e3:,.1f}"  # noqa: E731
        out += [f"### Search latency with and without encoding (SciFact, {enc['documents']:,} abstracts, "
                f"{enc['encoder']}, exact backend)", "",
                f"Single queries from SciFact's {enc['claims']} test claims, top 10 with texts, torch at "
                f"{enc['torch_threads']} thread(s).", "",
                _table(["search", "p50 / p95 ms"], [
                    ["`Index.search_vectors` (query vector given) + hits", ms(enc["search_vectors"])],
                    ["`Index.search([text])`, a text new to the cache (encoded, stored)", ms(enc["search_new_text"])],
                    ["`Index.search([text])`, a text already cached", ms(enc["search_cached_text"])],
                    ["the model's encoding alone (no cache, no search)", ms(enc["encode_only"])],
                ]), ""]  # fmt: skip
    elif enc:
        out += ["### Search latency with and without encoding", "", f"Not measured: {enc['error']}", ""]
    return "\n".join(out)


def render_index_upgrade(res: dict) -> str:
    """Model upgrade of a persistent index without downtime (keff index upgrade / reembed)."""
    c, sysm = res["config"], res["systems"]
    out = [
        "## Index model upgrade without downtime (`keff index upgrade` / `keff index reembed`)",
        "",
        f"Produced by `python benchmarks/index_upgrade.py` ({res['meta'].get('timestamp_utc', '?')}): an index of "
        f"{c['dataset']}'s {res['n_docs']:,} documents built with {c['old']} is upgraded to {c['new']}: {c['map_kind']} "
        f"maps fitted both ways on {c['anchors']:,} of its documents (seed {c['seed']}), every serving mode validated "
        "against keeping the old model (accepted only at or above it on nDCG@10), then re-embedded "
        f"{c['chunk']:,} documents per commit and switched over. Scored on the {res['n_test_queries']} "
        f"{c['eval_split']} queries, which choose nothing. Metrics come from the index's own search results "
        "(keff.eval.evaluate_run on Index.search_vectors).",
        "",
        "### Validation (before anything is committed)",
        "",
    ]
    for a in res.get("attempts", []):
        verdict = f"accepted, serves **{a['chosen']}**" if a["chosen"] else "**refused** (nothing changed)"
        out += [f"{a['validation']}: {a['queries']}: {verdict}.", ""]
        rows = []
        for name in sorted(a["figures"], key=lambda n: (n != "old", n)):
            f = a["figures"][name]
            mark = "serves" if name == a["chosen"] else "accepted" if name in a["accepted"] else "below old"
            rows.append([name, _fmt(f["ndcg@10"]), _fmt(f["mrr@10"]), mark if name != "old" else "(reference)"])
        out += [_table(["system", "nDCG@10", "MRR@10", ""], rows), ""]
    if "chosen" not in res:
        return "\n".join(out + ["Every validation refused the upgrade; nothing else was measured.", ""])
    fresh = sysm["fresh"]["ndcg@10"]
    labels = [
        ("old", f"old model ({c['old']})"),
        ("upgraded", f"right after `upgrade`: new-encoder queries served by {res['chosen']}"),
        *[(k, f"  diagnostic: {k[5:]}") for k in sysm if k.startswith("mode:")],
        ("half_reembedded", "half-way through `reembed` (true vectors for half, mapped for the rest)"),
        ("switched", "after `reembed` switched over"),
        ("fresh", f"fresh index built with {c['new']}"),
    ]
    rows = [[label, *(_fmt(sysm[k][m]) for m in ("ndcg@10", "recall@100", "mrr@10")),
             f"{100 * sysm[k]['ndcg@10'] / fresh:.1f}%"] for k, label in labels if k in sysm]  # fmt: skip
    out += [f"### {c['eval_split'].capitalize()} queries", "",
            _table(["index", "nDCG@10", "recall@100", "MRR@10", "% of fresh nDCG@10"], rows), ""]  # fmt: skip
    comp = [r for r in res.get("comparisons", []) if r["system"] in ("upgraded", "half_reembedded", "switched")]
    if comp:
        out += [
            "Paired against the old model (nDCG@10 per query; bootstrap 95% interval, randomisation p Holm-corrected):",
            "",
            _table(["index", "diff", "95% CI", "p (Holm)"],
                   [[r["system"], f"{r['diff']:+.4f}", f"[{r['ci_low']:+.4f}, {r['ci_high']:+.4f}]",
                     f"{r['p_holm']:.4f}"] for r in comp]),
            "",
        ]  # fmt: skip
    eq, re = res["equality"], res["reembed"]
    out += [
        f"After the switch-over against the fresh {c['new']} build: vectors "
        f"{'identical' if eq['vectors_identical'] else 'DIFFERENT'} for all {eq['n_docs']:,} documents "
        f"(max |difference| {eq['max_abs_vector_diff']}); top-10 rankings (ids and scores) "
        f"{'identical' if eq['top10_identical'] else 'DIFFERENT'} for "
        f"{eq['n_queries'] - eq['top10_differing_queries']} of {eq['n_queries']} queries. Re-embedding: "
        + ", ".join(f"{r['rows']:,} rows in {r['seconds']} s" for r in re["runs"])
        + f" ({re['docs_per_second']} documents/s); upgrade "
        f"{next(a.get('seconds') for a in res['attempts'] if a['chosen'])} s.",
        "",
    ]
    phases = res.get("model_encoded", [])
    if phases:
        out += [
            "Texts each model encoded per phase (the growth of keff's embedding cache; the rest came from the cache, "
            "where an earlier run or shipped vectors had put them, so the times above are not model-bound when "
            "these are 0):",
            "",
            _table(["phase", c["old"], c["new"]],
                   [[p["phase"], f"{p['encoded'][c['old']]:,}", f"{p['encoded'][c['new']]:,}"] for p in phases]),
            "",
        ]  # fmt: skip
    out += [
        f"Done means: upgraded at or above the old model: **{res['done']['upgraded_at_or_above_old']}**; "
        f"switched index equals a fresh build: **{res['done']['switched_equals_fresh']}**.",
        "",
    ]
    return "\n".join(out)


def _agreement(a: dict) -> str:
    n = a["n_queries"]
    ties = f", {a['differs_only_by_ties']} only by ties" if a["differs_only_by_ties"] else ""
    return f"{a['identical']}/{n} identical{ties}, {a['differs_beyond_ties']} beyond ties (overlap {a['mean_overlap']:.3f})"


def render_index_milvus(res: dict) -> str:
    """Milvus Lite as the index's search backend (keff.studies.index_milvus)."""
    one, two, meta = res["single"], res["fused"], res["meta"]
    lite = f"pymilvus {meta.get('pymilvus', '?')}, milvus-lite {meta.get('milvus_lite', '?')}"
    out = ["## Milvus as the index's search backend (`keff index build --backend milvus`)", "",
           f"Produced by `python benchmarks/index_milvus.py` ({meta.get('timestamp_utc', '?')}; {lite}; Milvus Lite "
           f"only: no Milvus server was run here). {one['dataset']}'s {one['n_docs']:,} documents, the "
           f"{one['n_queries']} {one['split']} queries, top {one['k']}. Agreement compares each top {one['k']} with "
           "exact search's; a list that differs only in the order of documents of equal cosine (a tie) is counted "
           "apart. Build times are medians of repeated builds with the vectors already in keff's cache (encoding "
           "not timed); latency is one already-encoded query per call, on a shared 2-core machine.", "",
           f"### One encoder ({one['encoder']})", ""]  # fmt: skip
    rows = []
    for r in one["rows"]:
        lat = r.get("latency") or {}
        rows.append([r["system"], _fmt(r["ndcg@10"]), _agreement(r["agreement_with_exact"]),
                     f"{r['build']['median_s']:.2f}", f"{r['batch_search_s']:.2f}", _fmt(lat.get("p50_us"), 0),
                     _fmt(lat.get("p95_us"), 0)])  # fmt: skip
    out += [_table(["backend", "nDCG@10", "top-10 vs exact", "build (s)", f"{one['n_queries']} queries (s)",
                    "p50 (us)", "p95 (us)"], rows), ""]  # fmt: skip
    out += [f"Milvus Lite against FAISS flat: {_agreement(one['milvus_vs_flat'])}.", ""]
    w = ", ".join(f"{n} {x:.2f}" for n, x in two["fitted_weights"].items())
    out += [f"### Fused search ({' + '.join(two['encoders'])})", "",
            f"Fusion weights fitted on the {two['fit_split']} queries with the exact index ({w}); the same weights go "
            "to keff's fused search and to Milvus's hybrid search (one `AnnSearchRequest` per encoder field, "
            "`WeightedRanker`). Milvus scores a document that is missing from one field's candidates as 0 for that "
            "field; keff's exact backend scores every row and its FAISS backends re-score the union of the "
            "candidates exactly. `norm_score=True` (pymilvus's default) maps each cosine through "
            "0.5 + arctan(s)/pi before weighting.", ""]  # fmt: skip
    for part in two["settings"]:
        ws = ", ".join(f"{n} {x:.2f}" for n, x in part["weights"].items())
        rows = []
        for r in part["rows"]:
            lat = r.get("latency") or {}
            rows.append([r["system"], _fmt(r["ndcg@10"]), _agreement(r["agreement_with_exact"]),
                         f"{r['batch_search_s']:.2f}", _fmt(lat.get("p50_us"), 0), _fmt(lat.get("p95_us"), 0)])  # fmt: skip
        out += [f"Weights {part['weights_label']} ({ws}):", "",
                _table(["fused search", "nDCG@10", "top-10 vs keff exact", f"{two['n_queries']} queries (s)",
                        "p50 (us)", "p95 (us)"], rows), ""]  # fmt: skip
        d = part.get("needed_depth")
        if d:
            out += [f"Candidates each field needs for Milvus to score every document of keff's top {two['k']} in "
                    f"full (the deepest rank either encoder alone gives one of them, ties included): median "
                    f"{d['median']:.0f}, p95 {d['p95']:.0f}, max {d['max']}; within the default depth ({d['default']}) "
                    f"for {100 * d['share_within_default']:.0f}% of the queries. keff's FAISS path needs a document "
                    "in one encoder's candidates only, since it re-scores the union.", ""]  # fmt: skip
        full = part.get("full_depth")
        if full:
            out += [f"Every document a candidate of each field (depth {full['depth']:,}): "
                    f"{full['seconds_per_query']} s per query in Milvus Lite (on {full['n_queries']} queries; "
                    f"{full['identical']} of them identical to keff exact), since Lite builds every returned hit "
                    "in Python.", ""]  # fmt: skip
    return "\n".join(out)


def _serve_batches(hist: dict) -> str:
    """``texts per call: calls`` of a batch-size histogram from the server's /metrics."""
    if not hist["calls"]:
        return "no encoder calls"
    ordered = sorted(hist["buckets"].items(), key=lambda kv: float("inf") if kv[0] == "+Inf" else float(kv[0]))
    return ", ".join(f"<={le}: {n:,}" for le, n in ordered)


def render_serve_load(res: dict) -> str:
    """Load test of the search service (keff serve) on 127.0.0.1: concurrency levels and a soak."""
    c, ix, q, srv, done = res["config"], res["index"], res["queries"], res["server"], res["done"]
    threads = srv.get("threads_env")
    backend = ix["backend"].get("kind", "?") if isinstance(ix["backend"], dict) else ix["backend"]
    encoded = ("so every query was encoded by the model" if q["cache_entries_written"] >= q["texts_sent"]
               else "FEWER than the texts sent: some queries came from the cache")  # fmt: skip
    out = [
        "## Search service under load (`keff serve`)",
        "",
        f"Produced by `python benchmarks/serve_load.py` ({res['meta'].get('timestamp_utc', '?')}): `keff serve` over an "
        f"index of {c['dataset']}'s {ix['n_docs']:,} documents ({c['encoder']}, {backend} search), started as a "
        f"subprocess on {srv['host']} (micro-batching window {c['batch_window_ms']:g} ms, max batch {c['max_batch']}"
        + (f", {', '.join(f'{k}={v}' for k, v in threads.items())}" if threads else ", torch threads as shipped")
        + f"). Closed-loop clients (httpx.AsyncClient) send `POST /search` with {c['queries_per_request']} query "
        f"and k={c['k']}: {c['warmup_seconds']:g} s warm-up, then {c['seconds']:g} s measured per level (at most "
        f"{c['max_requests']:,} requests). An error is any request that is not 200 with {c['k']} hits per query. "
        f"Query texts: {q['source']}; {q['texts_sent']:,} sent, {q['cache_entries_written']:,} new embedding-cache "
        f"entries written by the server ({encoded}). {res['machine']['note']}; "
        "the load average is the machine's during the level.",
        "",
        "| clients | requests | req/s | p50 (ms) | p95 (ms) | p99 (ms) | errors | encoder calls | texts per call | "
        "ms per call | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for lv in res["levels"]:
        b, enc = lv["server"]["batch_size"], lv["server"].get("encode_seconds") or {}
        per_call = None if enc.get("mean") is None else 1000 * enc["mean"]
        out.append(
            f"| {lv['concurrency']} | {lv['requests']:,} | {lv['requests_per_s']:.2f} | {lv['p50_ms']:.0f} | "
            f"{lv['p95_ms']:.0f} | {lv['p99_ms']:.0f} | {lv['errors']} ({100 * lv['error_rate']:.1f}%) | {b['calls']:,} | "
            f"{_fmt(b['mean'], 2)} | {_fmt(per_call, 0)} | {lv['loadavg_1min'][0]:.1f} |"
        )
    out += ["", "Encoder calls, texts per call and ms per call (the model plus the embedding-cache writes, under the "
            "encoder's lock) come from the server's `/metrics`, read before and after each level. Texts per encoder "
            "call (`keff_encoder_batch_size`, calls per bucket):", ""]  # fmt: skip
    out += [f"- {lv['concurrency']} client{'s' if lv['concurrency'] > 1 else ''}: "
            f"{_serve_batches(lv['server']['batch_size'])}" for lv in res["levels"]]  # fmt: skip
    errs = [(lv["concurrency"], lv["error_kinds"]) for lv in res["levels"] if lv["errors"]]
    if errs:
        out += ["", "Errors: " + "; ".join(f"{n} clients: {kinds}" for n, kinds in errs)]
    s = res.get("soak")
    if s:
        mib = 2**20
        out += [
            "",
            f"### Soak: {s['concurrency']} clients for {c['soak_seconds']:g} s",
            "",
            f"{s['requests']:,} requests ({s['requests_per_s']:.2f} req/s), p50 {s['p50_ms']:.0f} ms, p95 "
            f"{s['p95_ms']:.0f} ms, p99 {s['p99_ms']:.0f} ms, {s['errors']} errors; {_fmt(s['server']['batch_size']['mean'], 2)} "
            f"texts per encoder call. Server memory ({s['rss_source']}, every {s['sample_seconds']:g} s): "
            f"{s['rss_start_bytes'] / mib:.1f} MiB at the start (after the levels and a warm-up), "
            f"{s['rss_end_bytes'] / mib:.1f} MiB at the end (**{s['rss_growth_pct']:+.2f}%**), at most "
            f"{s['rss_max_bytes'] / mib:.1f} MiB ({s['rss_max_growth_pct']:+.2f}%).",
        ]
        if res.get("plot"):
            out += ["", f"![serve load soak](benchmarks/results/{res['plot']})"]
    speed = done["speedup_32_vs_1"]
    out += [
        "",
        f"Done means: zero errors at every level and in the soak: **{done['zero_errors']}**; throughput at 32 clients "
        f"{'not measured' if speed is None else f'{speed:.2f}x'} the single client's (at least 3x: "
        f"**{done['speedup_at_least_3x']}**), with {_fmt(done.get('texts_per_call_32'), 2)} texts per encoder call "
        f"at 32 clients (micro-batched, at least 2 per call: **{done.get('batched_at_32')}**); p95 reported: "
        f"**{done['p95_reported']}**; memory growth over the soak {_fmt(done['memory_growth_pct'], 2)}% (under 5%: "
        f"**{done['memory_growth_under_5pct']}**).",
        "",
    ]
    lone = next((lv for lv in res["levels"] if lv["concurrency"] == 1), None)
    busy = next((lv for lv in res["levels"] if lv["concurrency"] == 32), None)
    if done.get("speedup_at_least_3x") and done.get("batched_at_32") is False and lone and busy:
        ms = [(lv["server"].get("encode_seconds") or {}).get("mean") for lv in (lone, busy)]
        why = ""
        if None not in ms:
            why = (
                f" One encoder call of one text took {1000 * ms[0]:.0f} ms with a single client and "
                f"{1000 * ms[1]:.0f} ms with 32 (mean, server's `keff_encoder_duration_seconds`): on this "
                "oversubscribed machine the throughput gain comes from calls that cost less when the server is "
                "kept busy, and from overlapping the requests' other work, not from sharing encoder calls."
            )
        out += [f"The 3x speed-up is met, but not by micro-batching: the server's histogram shows "
                f"{_fmt(done.get('texts_per_call_32'), 2)} texts per encoder call at 32 clients.{why}", ""]  # fmt: skip
    return "\n".join(out)


def render_index_ray(res: dict) -> str:
    """Index build throughput, in-process against Ray Data (keff.studies.index_ray)."""
    cfg, med, meta = res["config"], res["median"], res["meta"]
    load = " and ".join(f"{x[0]:.1f}" for x in (meta.get("load_average_before"), meta.get("load_average_after")) if x)
    out = ["## Index build on Ray Data (`keff index build --engine ray`)", "",
           f"Produced by `python benchmarks/index_ray.py` ({meta.get('timestamp_utc', '?')}; Ray {meta.get('ray', '?')}). "
           f"Builds of the first {res['n_docs']:,} SciFact abstracts with {cfg['encoder']}, each with a fresh empty "
           f"embedding cache so both engines encode every text; Ray: a local instance of {meta.get('local_ray_cpus')} "
           f"CPUs started by the build, {cfg['actors']} encoder actors (one CPU each), {cfg['batches_per_call']} model "
           f"batch(es) per call. Wall time of `Index.build` (model loading and, for Ray, starting the instance and its "
           f"actors included), medians of {len(res['runs'])} repeats with the order alternating, on a shared "
           f"{meta.get('cpus', '?')}-core machine (1-minute load average {load} at start and end). Starting and "
           f"stopping an empty local Ray instance alone took {res['ray_start_stop_s']:.1f} s.", ""]  # fmt: skip
    rows = [["in-process", f"{med['inprocess_s']:.1f}", f"{med['inprocess_docs_per_s']:.2f}", "1.00"],
            ["ray", f"{med['ray_s']:.1f}", f"{med['ray_docs_per_s']:.2f}",
             f"{med['ray_over_inprocess_throughput']:.2f}"]]  # fmt: skip
    out += [_table(["engine", "build (s)", "docs/s", "throughput vs in-process"], rows), ""]
    per = "; ".join(f"{r['inprocess_s']:.0f} s / {r['ray_s']:.0f} s" for r in res["runs"])
    same = "byte-identical" if res["all_byte_identical"] else "NOT byte-identical"
    out += [f"Per repeat (in-process / ray): {per}. The two engines' vectors were {same} in every repeat "
            f"(largest difference {max(r['max_abs_diff'] for r in res['runs']):.1e}).", ""]  # fmt: skip
    return "\n".join(out)


def _significantly_below(rows: list[dict], head: str) -> list[str]:
    """Rows whose paired difference to identity has a CI wholly below zero and p < 0.05."""
    return [r["method"] for r in rows if r["metrics"][head]["diff_ci"][1] < 0 and r["metrics"][head]["p"] < 0.05]


def _adapter_row(row: dict, metrics: list[str]) -> str:
    m, head = row["metrics"], metrics[0]
    d = m[head]
    notes = []
    if "best_epoch" in row:
        notes.append(f"best epoch {row['best_epoch']:.1f}")
    if "accepted_by_do_no_harm" in row:
        notes.append(f"accepted in {row['accepted_by_do_no_harm']:.0%} of folds")
    cells = [f"{m[x]['mean']:.4f} [{m[x]['ci'][0]:.3f}, {m[x]['ci'][1]:.3f}]" for x in metrics]
    cost = "" if "train_seconds" not in row else f"{row['train_seconds']:.1f} | {row['parameters']:,.0f}"
    return (f"| {row['method']} | " + " | ".join(cells) + f" | {d['diff']:+.4f} [{d['diff_ci'][0]:+.4f}, "
            f"{d['diff_ci'][1]:+.4f}] | {d['p']:.2g} | {cost or '- | -'} | {'; '.join(notes)} |")  # fmt: skip


def render_adapters(res: dict) -> str:
    meta, params = res["meta"], res["adapter_params"]
    out = [
        "## Adapters over frozen encoders",
        "",
        "Produced by `OPENBLAS_NUM_THREADS=1 python benchmarks/adapters.py` "
        f"(seed {meta['seed']}, {meta.get('timestamp_utc', '')}). Q/A sets: grouped 5-fold; every adapter is "
        "fitted on four folds' pairs (its early stopping and do-no-harm validation is a held-out 20% of those, by "
        "group) and scores the fifth fold's questions against every answer. SciFact: fitted on the train qrels, "
        "scored on the test claims against the whole corpus (asymmetric adapters through their document head). "
        "Rows as trained use the best validation epoch; the `default (do-no-harm)` rows are the shipped "
        "`keff adapt fit` defaults after the rule: the identity in every fold whose validation did not show a gain "
        "(a gain of at least 0.005 MRR with one-sided sign-flip p < 0.1, on the half of the validation questions "
        "that did not pick the epoch). `+hn`: 16 hard negatives per question mined from the frozen vectors. Settings: "
        f"epochs <= {params['epochs']}, patience {params['patience']}, lr {params['lr']:g}, batch "
        f"{params['batch_size']}, temperature {params['temperature']:g} (learnt in [0.02, 0.2]). `train s` is the "
        "mean training time per fold on this shared 2-core machine; parameters are stored numbers.",
        "",
    ]
    below: list[str] = []
    for r in res["results"]:
        metrics, head = r["metrics"], r["metrics"][0]
        title = f"### {r['dataset']} / {r['encoder']}" + (f" ({r['note']})" if r.get("note") else "")
        out += [title, "", "| method | " + " | ".join(metrics) + f" | {head} diff vs identity | p | train s | "
                "parameters | notes |", "|" + "---|" * (len(metrics) + 6)]  # fmt: skip
        out += [_adapter_row(row, metrics) for row in r["rows"]]
        out.append("")
        out += render_slices(r)
        where = f"{r['dataset']} / {r['encoder']}"
        below += [f"{where}: {m}" for m in _significantly_below(r["rows"], head)]
        for name, rows in r.get("slices", {}).items():
            below += [f"{where}, {name}: {m}" for m in _significantly_below(rows, head)]
    loso = res.get("leave_one_source_out")
    if loso:
        head = loso["metrics"][0]
        names = list(loso["per_source"])
        out += [f"### MedQuAD, leave one source out ({loso['encoder']})", "",
                "Each source held out in turn: adapters fitted on the other five sources' pairs, scored on the "
                "held-out source's questions against every answer. `domain validation` rows hold out whole training "
                "sources for early stopping and the do-no-harm rule. Cells: " + head + " difference to identity "
                "[95% CI].", "",
                "| method | all (n=" + f"{loso['rows'][0]['n_queries']:,}" + ") | "
                + " | ".join(f"{n} (n={loso['sources'][n]:,})" for n in names) + " | accepted |",
                "|" + "---|" * (len(names) + 3)]  # fmt: skip
        for i, row in enumerate(loso["rows"]):
            cells = [loso["per_source"][n][i]["metrics"][head] for n in names]
            d = row["metrics"][head]
            acc = "-" if "accepted_by_do_no_harm" not in row else f"{row['accepted_by_do_no_harm']:.0%}"
            out.append(f"| {row['method']} | {d['diff']:+.4f} [{d['diff_ci'][0]:+.4f}, {d['diff_ci'][1]:+.4f}] | "
                       + " | ".join(f"{c['diff']:+.4f} [{c['diff_ci'][0]:+.4f}, {c['diff_ci'][1]:+.4f}]" for c in cells)
                       + f" | {acc} |")  # fmt: skip
        out.append("")
        below += [f"leave-one-source-out: {m}" for m in _significantly_below(loso["rows"], head)]
        for n in names:
            below += [f"leave-one-source-out, {n}: {m}" for m in _significantly_below(loso["per_source"][n], head)]
    out += ["### Targets", ""]
    for r in res["results"]:
        head = r["metrics"][0]
        if (r["dataset"], r["encoder"]) in (("skills", "mpnet"), ("medquad", "minilm")):
            best = max(r["rows"][1:], key=lambda row: row["metrics"][head]["diff"])
            d = best["metrics"][head]
            ok = d["diff"] >= 0.03 and d["diff_ci"][0] > 0
            verdict = "met" if ok else f"missed by {(0.03 - d['diff']) * 100:.1f} points" if d["diff"] < 0.03 else "CI"
            default = next(row for row in r["rows"] if row["method"] == "query default (do-no-harm)")["metrics"][head]
            out.append(f"- {r['dataset']} / {r['encoder']}: +3 points {head} with a CI above zero: {verdict} "
                       f"(best row {best['method']}: {d['diff']:+.4f} [{d['diff_ci'][0]:+.4f}, {d['diff_ci'][1]:+.4f}]; "
                       f"query default {default['diff']:+.4f}).")  # fmt: skip
        if r["dataset"] == "scifact" and "slices" in r:
            rows = list(r["slices"].values())[-1]
            worst = min(rows[1:], key=lambda row: row["metrics"][head]["diff"])
            d = worst["metrics"][head]
            out.append(f"- scifact / {r['encoder']}, claims whose abstracts no train claim cites: lowest row "
                       f"{worst['method']} {d['diff']:+.4f} [{d['diff_ci'][0]:+.4f}, {d['diff_ci'][1]:+.4f}], "
                       f"p {d['p']:.2g}.")  # fmt: skip
    out.append("- Rows significantly below the frozen encoder (CI below zero, p < 0.05), on any set, slice or "
               "held-out source: " + ("none." if not below else "; ".join(below) + "."))  # fmt: skip
    t = res.get("timing")
    if t:
        out += ["", f"### Training time and application cost (MedQuAD / minilm, {t['pairs']:,} pairs)", "",
                "| head | train s | epochs run | best epoch | parameters | batch cost / same-shape GEMM | single query "
                "cost / GEMM | single query us |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for head_kind, tr in t["train"].items():
            ap = t["apply"][head_kind]
            out.append(f"| {head_kind} | {tr['seconds']:.1f} | {tr['epochs_run']} | {tr['best_epoch']} | "
                       f"{tr['parameters']:,} | {ap['batch_ratio']:.2f}x | {ap['single_ratio']:.2f}x | "
                       f"{ap['single_us']:.1f} |")  # fmt: skip
    out += ["", f"![adapters benchmark](benchmarks/results/{res['plot']})", ""]
    return "\n".join(out)


def render_predict(res: dict) -> str:
    meta = res["meta"]
    out = [
        "## Next-vector prediction on held-out documents",
        "",
        "Produced by `OPENBLAS_NUM_THREADS=1 python benchmarks/predict.py` "
        f"(seed {meta['seed']}, {meta.get('timestamp_utc', '')}). Documents split train/val/test (seeded, disjoint); "
        f"windows of k = {res['k']} context units; a window whose context or next unit repeats a unit text from the "
        "other side of the split is dropped. Every model predicts the next unit's vector of the test windows; the "
        "prediction ranks every unit of the test documents except the window's own context (`hit@k`, `mrr`) and the "
        "units of its own document (`doc_mrr`); `margin_prev` is cos(prediction, next) - cos(previous unit, next). "
        "Differences are paired against the strongest baseline by hit@5 (bootstrap 95% CI, randomisation p). "
        "Ridge's alpha and kNN's neighbours were chosen on the validation documents; the trained models hold out "
        "documents of their own training split for early stopping.",
        "",
    ]
    for r in res["results"]:
        best = r["best_baseline"]
        out += [f"### {r['dataset']} ({r['unit']}s) / {r['encoder']}", "",
                f"{r['documents']['train']}/{r['documents']['val']}/{r['documents']['test']} documents "
                f"(train/val/test), {r['windows']['train']:,}/{r['windows']['val']:,}/{r['windows']['test']:,} windows; "
                f"pool of {r['pool_units']:,} test units; {r['repeated_units']} unit texts repeat across the split "
                f"({r['dropped_leaky_windows']['test']} test windows dropped). Strongest baseline: {best}.", "",
                "| model | cosine | hit@1 | hit@5 | hit@10 | mrr | doc_mrr | margin_prev | hit@5 vs " + best + " | p "
                "| cosine vs " + best + " | p |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for name, row in r["rows"].items():
            d, c = row["hit@5"], row["cosine"]
            cells = " | ".join(f"{row[m]['mean']:.4f}" for m in ("cosine", "hit@1", "hit@5", "hit@10", "mrr", "doc_mrr",
                                                                 "margin_prev"))  # fmt: skip
            out.append(f"| {name} | {cells} | {d['diff']:+.4f} [{d['diff_ci'][0]:+.4f}, {d['diff_ci'][1]:+.4f}] | "
                       f"{d['p']:.2g} | {c['diff']:+.4f} [{c['diff_ci'][0]:+.4f}, {c['diff_ci'][1]:+.4f}] | "
                       f"{c['p']:.2g} |")  # fmt: skip
        out += ["", "Each trained model against every baseline (hit@5 difference, randomisation p):", ""]
        for name in r["best_epochs"]:
            vs = r["rows"][name].get("versus", {})
            out.append(f"- {name}: " + "; ".join(f"{b} {v['hit@5']['diff']:+.4f} (p {v['hit@5']['p']:.2g})"
                                                  for b, v in vs.items()))  # fmt: skip
        if r.get("cosine_weight_choice"):
            out += ["", "Cosine-term weights of the ranking models, chosen on the validation documents (trained on the "
                    "training documents, scored on the validation windows):", ""]  # fmt: skip
        for name, ch in r.get("cosine_weight_choice", {}).items():
            tried = ", ".join(f"{t['cosine_weight']:g}: stopped" if "stopped" in t else
                              f"{t['cosine_weight']:g}: {t['hit@5']:.3f} / {t['cosine']:.3f}" for t in ch["tried"])  # fmt: skip
            rule = "best hit@5 of those reaching it" if ch["qualified"] else "none reached it: highest cosine"
            out.append(f"- {name}: weight {ch['chosen']:g} (floor: cosine "
                       f"{ch['floor']:.4f} = {r['validation_baseline']} + 0.01; {rule}; tried weight: hit@5 / cosine "
                       f"{tried}).")  # fmt: skip
        epochs = ", ".join(f"{n} {e}" for n, e in r["best_epochs"].items())
        out += ["", f"Best epoch of each trained model (0: no epoch beat its start on validation; the residual "
                f"models start at the recency mean): {epochs}."]  # fmt: skip
        for name, why in r.get("stopped_by_guardrail", {}).items():
            out.append(f"Stopped by a guardrail, not scored: {name} ({why}).")
        out += ["", "Order gates (cosine of the prediction to the units at each offset from the next unit; hit@5 with "
                "the context shuffled, reversed, and for the unit after next by a two-step rollout) and cost:", "",
                "| model | +1 | +2 | -1 | -2 | +1 highest | hit@5 | shuffled | reversed | shuffled drop | rollout "
                "step 2 | parameters | p50 / p95 us (batch 1) |", "|" + "---|" * 13]  # fmt: skip
        for name, g in r["gates"].items():
            o = g["offsets"]
            lat = g["latency_us"]
            drop = "-" if g["shuffled_relative_drop"] is None else f"{g['shuffled_relative_drop']:.1%}"
            out.append(f"| {name} | {o['+1']:.4f} | {o['+2']:.4f} | {o['-1']:.4f} | "
                       f"{'-' if o['-2'] is None else format(o['-2'], '.4f')} | {'yes' if g['order_ok'] else 'no'} | "
                       f"{g['hit@5']:.4f} | {g['shuffled_hit@5']:.4f} | {g['reversed_hit@5']:.4f} | {drop} | "
                       f"{g['rollout_hit@5_step2']:.4f} | {g['parameters']:,} | {lat['p50_us']:.0f} / "
                       f"{lat['p95_us']:.0f} |")  # fmt: skip
        out.append("")
    out += [f"![next-vector prediction](benchmarks/results/{res['plot']})", ""]
    return "\n".join(out)


PART_TITLES = {
    "generic": "anchors from the other shared corpora (WikiText, MedQuAD, skills), never SciFact's",
    "corpus": "anchors from the SciFact corpus (unlabelled documents)",
    "sibling": "the fine-tuned sibling: minilm -> minilm fine-tuned on SciFact's training pairs",
    "questions": "query-kind anchors: questions of the other shared Q/A corpora (MedQuAD, skills), never SciFact's",
    "skills": "skills Q/A, minilm -> mpnet, anchors from the answers of groups not evaluated",
}
#: The parts whose anchors are generic text (the gap-closed target's parts).
GENERIC_PARTS = ("generic", "questions")


def render_gap_part(part: dict) -> list[str]:
    cfg = part["config"]
    out = [f"### {part['part']}: {PART_TITLES.get(part['part'], '')}", "",
           f"Seeds {cfg['seeds']}, anchors {cfg['anchors']}, maps {', '.join(cfg['maps'])}."]  # fmt: skip
    out += [f"- {k}: {v}" for k, v in part["notes"].items()]
    out += ["", *upgrade_baselines(part["baselines"])]
    summary = {(x["corpus"], x["old"], x["new"], x["condition"], x["map"], x["n_anchors"]): x for x in part["summary"]}
    weights: dict[tuple, list] = {}
    for r in part["rows"]:
        if r["condition"] == "h":
            weights.setdefault((r["corpus"], r["old"], r["new"], r["map"], r["n_anchors"]), []).append(
                r["hybrid_weight"]
            )
    for b in part["baselines"]:
        key = (b["corpus"], b["old"], b["new"])
        out += ["", f"#### {b['corpus']}: {b['old']} -> {Path(b['new']).name}", "",
                "| condition | map | anchors | nDCG@10 | gap closed [95% CI] | vs old [95% CI] | regression | "
                "% of ceiling |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        gaps = [g for g in part["gaps"] if (g["corpus"], g["old"], g["new"]) == key]
        for g in sorted(gaps, key=lambda g: (g["condition"], g["map"], g["n_anchors"])):
            sm = summary[(*key, g["condition"], g["map"], g["n_anchors"])]
            gap = (
                "-"
                if g["gap_closed"] is None
                else f"{g['gap_closed']:+.2f} [{g['gap_ci'][0]:+.2f}, {g['gap_ci'][1]:+.2f}]"
            )
            cond = g["condition"]
            if cond == "h":
                ws = weights.get((*key, g["map"], g["n_anchors"]), [])
                cond = f"h (old weight {', '.join(f'{w:g}' for w in ws)})"
            out.append(f"| {cond} | {g['map']} | {g['n_anchors']:,} | {sm['ndcg@10_mean']:.4f} | {gap} | "
                       f"{g['vs_old']:+.4f} [{g['vs_old_ci'][0]:+.4f}, {g['vs_old_ci'][1]:+.4f}] | "
                       f"{'yes' if g['regression'] else 'no'} | {sm['pct_ceiling_mean']:.1f}% |")  # fmt: skip
    return out + [""]


def render_gap_targets(parts: list[dict]) -> list[str]:
    """The issue's targets, each read off the tables above (mapped conditions (c) and (d) only)."""
    by = {p["part"]: p for p in parts}
    out = ["### Targets", ""]

    def best(part: str, key: str, max_anchors: int, new: str | None = None) -> dict | None:
        rows = [x for x in by[part]["summary"] if x["condition"] in "cd" and x["n_anchors"] <= max_anchors
                and (new is None or x["new"] == new)]  # fmt: skip
        return max(rows, key=lambda x: x[key]) if rows else None

    if "sibling" in by:
        b = best("sibling", "pct_ceiling_mean", 1000)
        if b:
            out.append(f"- Fine-tuned sibling, at least 99% of the re-embedded index with at most 1,000 anchors: best "
                       f"({b['condition']}) {b['map']} at {b['n_anchors']:,} anchors, {b['pct_ceiling_mean']:.1f}% "
                       f"({'met' if b['pct_ceiling_mean'] >= 99 else 'missed'}).")  # fmt: skip
    gaps = [{**g, "part": name} for name in GENERIC_PARTS if name in by for g in by[name]["gaps"]
            if g["condition"] in "cd" and g["n_anchors"] <= 10000 and g["new"] == "minilm"
            and g["gap_closed"] is not None]  # fmt: skip
    if gaps:
        g = max(gaps, key=lambda g: g["gap_closed"])
        out.append(f"- minilm-l3-onnx -> minilm, gap closed at least 50% with at most 10,000 generic anchors "
                   f"(mapped queries or documents): best {g['part']} ({g['condition']}) {g['map']} at {g['n_anchors']:,} "
                   f"anchors, {g['gap_closed']:+.2f} [{g['gap_ci'][0]:+.2f}, {g['gap_ci'][1]:+.2f}] "
                   f"({'met' if g['gap_closed'] >= 0.5 else 'missed'}).")  # fmt: skip
    regress = sorted({(p["part"], g["condition"], g["map"]) for p in parts for g in p["gaps"]
                      if g["n_anchors"] >= 1000 and g["regression"]})  # fmt: skip
    safe = sorted({(g["condition"], g["map"]) for p in parts for g in p["gaps"] if g["n_anchors"] >= 1000}
                  - {(c, m) for _, c, m in regress})  # fmt: skip
    out.append("- Never below the old model at 1,000 anchors or more (paired CI), in every part: "
               + (", ".join(f"({c}) {m}" for c, m in safe) or "no recipe") + ".")  # fmt: skip
    return out + [""]


def render_upgrade_gap(res: dict) -> str:
    meta = res["meta"]
    out = [
        "## Model upgrades: gap closed and regressions",
        "",
        "Produced by `OPENBLAS_NUM_THREADS=1 python benchmarks/upgrade_gap.py` "
        f"({meta.get('timestamp_utc', '')}). **Gap closed** = (mapped - old) / (new - old) of nDCG@10 (1: as good "
        "as re-embedding with the new model, 0: no better than keeping the old one; per-query scores averaged "
        "over seeds, bootstrap 95% CI over queries); **regression**: the mapped system is significantly below "
        "the old model (paired CI of the difference entirely below 0). Conditions: (c) new-model queries mapped "
        "into the old index, (d) the old corpus mapped into the new space, (e) (a) and (d) with equal weights, "
        "(h) (a) and (d) weighted, the weight chosen on 1,000 held-out anchors (the weight whose ranking best "
        "recovers each anchor's new-model neighbours), never on evaluation queries. Maps: procrustes (centred, "
        "scaled), affine (ridge), contrastive (in-batch InfoNCE on the anchor pairs from the Procrustes start, "
        "early-stopped on held-out anchors), cluster-routed (local: Procrustes, then 16 per-cluster corrections "
        "routed by the mapped vector), mlp-affine (a ridge affine base plus a trained one-hidden-layer GELU residual, 512 wide).",
        "",
    ]
    for part in res["parts"]:
        out += render_gap_part(part)
    out += render_gap_targets(res["parts"])
    out += [f"![gap closed against anchors](benchmarks/results/{res['plot']})", ""]
    return "\n".join(out)


def _met(ok: bool) -> str:
    return "met" if ok else "missed"


def render_perf(res: dict) -> str:
    """The performance pass: each hot path as a ratio to its reference, measured in one run."""
    parts, meta = res["parts"], res["meta"]
    out = ["## Performance: keff against its references", "",
           f"Produced by `python benchmarks/perf.py` ({meta.get('timestamp_utc', '')}). Medians of interleaved "
           "repeats within one run; ratios are keff / reference (below 1: keff is faster).", ""]  # fmt: skip
    targets = []
    if "search" in parts:
        b, q = parts["search"]["batch_topk"], parts["search"]["single_query"]
        sec = b["seconds"]
        out += ["### Search", "",
                f"Batch: {b['n_queries']:,} queries over {b['n']:,} x {b['d']} random unit rows, top {b['k']}; "
                f"keff scores {b['block_queries']} queries per block.", "",
                "| measurement | keff (s) | reference (s) | ratio |", "|---|---|---|---|",
                f"| top-k selection of one block vs argpartition | {sec['keff_topk_block']:.3f} | "
                f"{sec['argpartition_block']:.3f} | {b['topk_vs_argpartition']:.2f} |"]  # fmt: skip
        if b.get("keff_vs_faiss") is not None:
            out.append(f"| batch search vs FAISS IndexFlatIP | {sec['keff_search']:.3f} | {sec['faiss_search']:.3f} | "
                       f"{b['keff_vs_faiss']:.2f} |")  # fmt: skip
        qs = q["seconds_per_query"]
        if q.get("keff_vs_faiss") is not None:
            out.append(f"| single-query search vs FAISS, {q['background_processes']} busy neighbour process | "
                       f"{qs['keff_search'] * 1e3:.2f} ms | {qs['faiss_search'] * 1e3:.2f} ms | {q['keff_vs_faiss']:.2f} |")  # fmt: skip
        out.append(f"| single-query product, {q['blas_threads_default']} BLAS threads vs 1 | "
                   f"{qs['gemm_default_threads'] * 1e3:.2f} ms | {qs['gemm_one_thread'] * 1e3:.2f} ms | "
                   f"{q['gemm_default_vs_one_thread']:.2f} |")  # fmt: skip
        out += ["", f"Peak memory of keff's batch search: {b['keff_peak_bytes'] / 2**20:,.0f} MiB; top-10 agreement with "
                f"FAISS on 50 queries: {b.get('agreement_top10_with_faiss', float('nan')):.3f}.", ""]  # fmt: skip
        targets.append(f"- Batch top-k within 1.3x the argpartition floor: {b['topk_vs_argpartition']:.2f} "
                       f"({_met(b['topk_vs_argpartition'] <= 1.3)}).")  # fmt: skip
        if b.get("keff_vs_faiss") is not None:
            targets.append(f"- Batch search within 1.5x FAISS flat at {b['n']:,} rows: {b['keff_vs_faiss']:.2f} "
                           f"({_met(b['keff_vs_faiss'] <= 1.5)}).")  # fmt: skip
        if q.get("keff_vs_faiss") is not None:
            targets.append(f"- Single-query search within 1.2x FAISS under load: {q['keff_vs_faiss']:.2f} "
                           f"({_met(q['keff_vs_faiss'] <= 1.2)}).")  # fmt: skip
    if "threads" in parts:
        c = parts["threads"]["cluster_fit"]
        out += ["### Threads", "",
                f"ClusterRouted fit ({c['n']:,} rows, {c['n_clusters']} clusters: as many small SVDs) with its one-thread "
                f"loop: {c['seconds']['one_thread']:.2f} s; with the BLAS pool's default size "
                f"(`KEFF_THREADS=default`): {c['seconds']['default_threads']:.2f} s (ratio "
                f"{c['one_thread_vs_default']:.2f}).", ""]  # fmt: skip
    if "metrics" in parts:
        m = parts["metrics"]["evaluate_run"]
        out += ["### Metrics", "",
                f"`evaluate_run` over {m['n_queries']} queries x top 100 ({', '.join(m['metrics'])}): "
                f"{m['evaluate_run_s'] * 1e3:.1f} ms against a bare pytrec_eval evaluation of the same measures "
                f"{m['pytrec_eval_s'] * 1e3:.1f} ms (ratio {m['ratio']:.2f}; median of paired ratios "
                f"{m['paired_ratio']:.2f}).", ""]  # fmt: skip
        targets.append(f"- Metrics within 1.3x pytrec_eval: {m['ratio']:.2f} ({_met(m['ratio'] <= 1.3)}).")
    if "cli" in parts:
        st, w = parts["cli"]["startup"], parts["cli"]["warm_eval"]
        sec = st["seconds"]
        imports = ", ".join(w["warm_imports"]) or "none"
        out += ["### Command line", "",
                f"`keff --help` {sec['keff_help']:.3f} s, `keff eval --help` {sec['keff_eval_help']:.3f} s, "
                f"`python -c pass` {sec['python']:.3f} s (medians of {st['repeats']} fresh processes, bytecode cache "
                f"warm as for an installed keff; without one, as this machine's environment runs them: "
                f"{st['seconds_as_is']['keff_help']:.3f} s and {st['seconds_as_is']['keff_eval_help']:.3f} s). "
                f"`keff eval` of SciFact with {w['encoder']}: first run (seeding a private cache from the precomputed "
                f"vectors) {w['cold_seconds']:.1f} s, warm {w['warm_seconds']:.2f} s (median of {w['repeats']}); model "
                f"modules the warm run imported: {imports}.", ""]  # fmt: skip
        targets.append(f"- `keff --help` under 0.2 s: {sec['keff_help']:.3f} s ({_met(sec['keff_help'] < 0.2)}).")
        targets.append(f"- Warm `keff eval` on SciFact under 3 s without torch: {w['warm_seconds']:.2f} s, imports "
                       f"{imports} ({_met(w['warm_seconds'] < 3 and 'torch' not in w['warm_imports'])}).")  # fmt: skip
    if "encoders" in parts:
        e = parts["encoders"]["int8"]
        out += ["### int8 encoder", "",
                f"MiniLM int8 against fp32 (one thread each, {e['n_docs_timed']} SciFact abstracts): "
                f"{e['int8_docs_per_s']:.1f} vs {e['fp32_docs_per_s']:.1f} abstracts/s (speed-up {e['speedup']:.2f}x); "
                f"SciFact nDCG@10 {e['ndcg_int8']:.4f} vs {e['ndcg_fp32']:.4f} ({e['ndcg_diff']:+.4f}); integer "
                f"operations in the graph: {', '.join(f'{k} {v}' for k, v in sorted(e['int8_ops'].items()))}.", ""]  # fmt: skip
        ok = e["speedup"] > 1 and abs(e["ndcg_diff"]) <= 0.005
        targets.append(f"- A true int8 encoder faster than fp32, nDCG@10 within 0.005: {e['speedup']:.2f}x, "
                       f"{e['ndcg_diff']:+.4f} ({_met(ok)}).")  # fmt: skip
    return "\n".join(out + ["### Targets", "", *targets, ""])


RENDERERS: dict[str, Callable[[dict], str]] = {
    "baselines": render_baselines,
    "upgrade": render_upgrade,
    "upgrade_gap": render_upgrade_gap,
    "fusion": render_fusion,
    "projection": render_projection,
    "adapters": render_adapters,
    "predict": render_predict,
    "index": render_index,
    "index_scale": render_index_scale,
    "index_upgrade": render_index_upgrade,
    "index_milvus": render_index_milvus,
    "serve_load": render_serve_load,
    "index_ray": render_index_ray,
    "perf": render_perf,
}
ORDER = [
    "baselines",
    "upgrade",
    "upgrade_gap",
    "fusion",
    "projection",
    "adapters",
    "predict",
    "index",
    "index_scale",
    "index_upgrade",
    "index_milvus",
    "serve_load",
    "index_ray",
    "perf",
]


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
