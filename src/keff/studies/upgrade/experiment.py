"""One corpus and model pair: fit every map on anchors, score conditions (a)-(e), compare per query."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from keff.arrays import l2_normalize
from keff.eval import compare_systems, evaluate_retrieval
from keff.maps import Map, make_map, map_params, per_text_cosine
from keff.studies.common import log
from keff.studies.upgrade.config import MAP_SETTINGS, UpgradeConfig
from keff.studies.upgrade.corpora import METRICS, Corpus, Encoded, draw_anchors
from keff.tasks import RetrievalTask

CONDITIONS = {
    "c": "new queries mapped to the old index",
    "d": "old corpus mapped to the new space",
    "e": "(a) + (d): cosines of both averaged (equal weights, not tuned)",
}
#: The fitting directions: new->old maps the queries (c), old->new the corpus (d and e).
DIRECTIONS = {"new->old": "c", "old->new": "d"}


@dataclass
class PairResult:
    """One corpus and model pair: result rows, paired comparisons, and the maps to time."""

    rows: list[dict]
    comparisons: list[dict]
    latency_maps: dict[tuple[str, str], Map]


def score(task: RetrievalTask, q: np.ndarray, d: np.ndarray) -> tuple[dict, dict]:
    """Metrics and per-query nDCG@10 of cosine search of unit ``q`` over unit ``d``."""
    r = evaluate_retrieval(
        l2_normalize(q),
        l2_normalize(d),
        task.query_ids,
        task.doc_ids,
        task.qrels,
        system="",
        dataset=task.name,
        metrics=METRICS,
        latency_queries=0,
    )
    return r.metrics, r.per_query["ndcg@10"]


def study_params(kind: str, rank: int, seed: int) -> dict:
    """The study's settings of a map kind (:data:`MAP_SETTINGS`), with the rank and the seed for
    the kinds that take them."""
    takes = map_params(kind)
    return {
        **MAP_SETTINGS[kind],
        **({"rank": rank} if "rank" in takes else {}),
        **({"seed": seed} if "seed" in takes else {}),
    }


def fit_map(kind: str, params: dict, X: np.ndarray, Y: np.ndarray) -> Map:
    """A map of ``kind`` fitted on anchor rows ``X`` -> ``Y`` (the study's only fitting step)."""
    return make_map(kind, **params).fit(X, Y)


def fit_both_directions(
    kind: str, config: UpgradeConfig, seed: int, old: np.ndarray, new: np.ndarray
) -> tuple[dict[str, Map], dict[str, float]]:
    """Maps new->old and old->new fitted on the same anchors, and their fit seconds."""
    params = study_params(kind, config.rank, seed)
    fitted, seconds = {}, {}
    for direction, (src, dst) in {"new->old": (new, old), "old->new": (old, new)}.items():
        t0 = time.perf_counter()
        fitted[direction] = fit_map(kind, params, src, dst)
        seconds[direction] = round(time.perf_counter() - t0, 3)
    return fitted, seconds


def latency_maps_of(kind: str, fitted: dict[str, Map]) -> dict[tuple[str, str], Map]:
    """The two fitted maps keyed by (condition, kind): the query map (c) and the corpus map (d)."""
    return {(DIRECTIONS[direction], kind): m for direction, m in fitted.items()}


def mapped_outcomes(task: RetrievalTask, vo: Encoded, vn: Encoded, fitted: dict[str, Map]) -> dict[str, tuple]:
    """Conditions (c), (d), (e): ``((metrics, per-query nDCG), direction, doc cosine to new)``."""
    mapped_queries = fitted["new->old"].transform(vn.queries)
    mapped_docs = fitted["old->new"].transform(vo.docs)
    # (e): concatenated unit halves, so the inner product is the mean of the two cosines
    both_q = np.hstack([l2_normalize(vo.queries), l2_normalize(vn.queries)])
    both_d = np.hstack([l2_normalize(vo.docs), l2_normalize(mapped_docs)])
    held = float(per_text_cosine(mapped_docs, vn.docs).mean())
    return {
        "c": (score(task, mapped_queries, vo.docs), "new->old", None),
        "d": (score(task, vn.queries, mapped_docs), "old->new", held),
        "e": (score(task, both_q, both_d), "old->new", held),
    }


def run_pair(corpus: Corpus, old: str, new: str, vecs: dict[str, Encoded], config: UpgradeConfig) -> PairResult:
    """Every map, anchor count and seed for one corpus and model pair.

    Maps are fitted on anchor rows of the corpus's anchor pool only; evaluation queries are
    only ever transformed and scored.
    """
    task, vo, vn = corpus.task, vecs[old], vecs[new]
    m_a, pq_a = score(task, vo.queries, vo.docs)
    m_b, pq_b = score(task, vn.queries, vn.docs)
    base = {"corpus": corpus.key, "old": old, "new": new}
    rows = [{**base, "condition": "a", "metrics": m_a}, {**base, "condition": "b", "metrics": m_b}]
    per_query = {"a": pq_a, "b": pq_b}
    latency_maps = {}
    for n_anchors in config.anchors:
        if n_anchors > len(corpus.anchor_pool):
            log(f"skip {n_anchors} anchors: pool has {len(corpus.anchor_pool)}")
            continue
        for seed in config.seeds:
            idx = draw_anchors(len(corpus.anchor_pool), n_anchors, seed)
            for kind in config.maps:
                fitted, fit_s = fit_both_directions(kind, config, seed, vo.anchors[idx], vn.anchors[idx])
                for cond, ((metrics, pq), direction, cosine) in mapped_outcomes(task, vo, vn, fitted).items():
                    rows.append(
                        {
                            **base, "condition": cond, "map": kind, "n_anchors": n_anchors, "seed": seed,
                            "metrics": metrics, "pct_ceiling": 100 * metrics["ndcg@10"] / m_b["ndcg@10"],
                            "fit_seconds": fit_s[direction], "doc_cosine_to_new": cosine,
                        }
                    )  # fmt: skip
                    acc = per_query.setdefault(f"{cond}/{kind}/{n_anchors}", {q: 0.0 for q in pq})
                    for q, v in pq.items():
                        acc[q] += v / len(config.seeds)
                if n_anchors == config.latency_anchors and seed == config.seeds[0]:
                    latency_maps.update(latency_maps_of(kind, fitted))
            log(f"  {corpus.key} {old}->{new}: {n_anchors} anchors, seed {seed} done")
    return PairResult(rows, pair_comparisons(per_query, base), latency_maps)


def pair_comparisons(per_query: dict[str, dict], base: dict) -> list[dict]:
    """Paired tests of every mapped system against (a) and (b), per condition (Holm within each)."""
    comparisons = []
    for cond in CONDITIONS:
        systems = {k: v for k, v in per_query.items() if k.startswith(cond + "/")}
        for ref in ("a", "b"):
            for c in compare_systems({ref: per_query[ref], **systems}, ref, metric="ndcg@10", seed=0):
                comparisons.append({**base, "condition": cond, "against": ref, **c.__dict__})
    return comparisons


def baseline_row(corpus: str, old: str, new: str, rows: list[dict]) -> dict:
    """nDCG@10 of (a) and (b), and (a) as a percentage of (b)."""
    a, b = (next(r["metrics"]["ndcg@10"] for r in rows if r["condition"] == c) for c in ("a", "b"))
    return {"corpus": corpus, "old": old, "new": new, "ndcg_a": a, "ndcg_b": b, "pct_a": 100 * a / b}


def summarize(rows: list[dict]) -> list[dict]:
    """Mean and std over seeds per (corpus, pair, condition, map, anchors)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["condition"] in CONDITIONS:
            groups.setdefault((r["corpus"], r["old"], r["new"], r["condition"], r["map"], r["n_anchors"]), []).append(r)
    out = []
    for (corpus, old, new, cond, kind, n), rs in sorted(groups.items()):
        nd = np.array([r["metrics"]["ndcg@10"] for r in rs])
        pct = np.array([r["pct_ceiling"] for r in rs])
        out.append(
            {
                "corpus": corpus, "old": old, "new": new, "condition": cond, "map": kind, "n_anchors": n,
                "n_seeds": len(rs), "ndcg@10_mean": float(nd.mean()), "ndcg@10_std": float(nd.std()),
                "pct_ceiling_mean": float(pct.mean()), "pct_ceiling_std": float(pct.std()),
                "recall@100_mean": float(np.mean([r["metrics"]["recall@100"] for r in rs])),
                "doc_cosine_to_new": None if cond == "c" else float(np.mean([r["doc_cosine_to_new"] for r in rs])),
            }
        )  # fmt: skip
    return out
