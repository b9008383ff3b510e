"""One corpus and model pair: fit every map on anchors, score conditions (a)-(e), compare per query."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from keff.arrays import l2_normalize
from keff.eval import compare_systems, evaluate_retrieval, gap_closed, paired_bootstrap_ci
from keff.maps import Map, make_map, map_params, per_text_cosine
from keff.studies.common import log
from keff.studies.upgrade.config import MAP_SETTINGS, UpgradeConfig
from keff.studies.upgrade.corpora import METRICS, Corpus, Encoded, draw_anchors
from keff.tasks import RetrievalTask

CONDITIONS = {
    "c": "new queries mapped to the old index",
    "d": "old corpus mapped to the new space",
    "e": "(a) + (d): cosines of both averaged (equal weights, not tuned)",
    "h": "(a) + (d) weighted, the weight chosen on held-out anchors (their new-model neighbours)",
}
#: The hybrid weights tried on held-out anchors (weight of the old model's cosine).
HYBRID_WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))
#: Held-out anchors (never fitted on) that choose the hybrid's weight, at most.
HELD_OUT_ANCHORS = 1000
#: The fitting directions: new->old maps the queries (c), old->new the corpus (d and e).
DIRECTIONS = {"new->old": "c", "old->new": "d"}


@dataclass
class PairResult:
    """One corpus and model pair: result rows, paired comparisons, and the maps to time."""

    rows: list[dict]
    comparisons: list[dict]
    latency_maps: dict[tuple[str, str], Map]
    gaps: list[dict]


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


def map_kind(name: str) -> str:
    """The registry kind of one of the study's maps (:data:`MAP_SETTINGS`)."""
    return MAP_SETTINGS[name].get("kind", name)


def study_params(name: str, rank: int, seed: int) -> dict:
    """The study's settings of one of its maps (:data:`MAP_SETTINGS`, without the kind), with the
    rank and the seed for the kinds that take them."""
    takes = map_params(map_kind(name))
    own = {k: v for k, v in MAP_SETTINGS[name].items() if k != "kind"}
    return {
        **({"rank": rank} if "rank" in takes else {}),
        **own,  # a map's own setting (e.g. the cluster maps' rank) wins
        **({"seed": seed} if "seed" in takes else {}),
    }


def fit_map(name: str, params: dict, X: np.ndarray, Y: np.ndarray) -> Map:
    """The study's map ``name`` fitted on anchor rows ``X`` -> ``Y`` (the study's only fitting step)."""
    return make_map(map_kind(name), **params).fit(X, Y)


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


def hybrid(q_old: np.ndarray, q_new: np.ndarray, d_old: np.ndarray, d_mapped: np.ndarray, w: float):
    """Query and document rows whose inner product is ``w cos(old) + (1 - w) cos(new, mapped)``."""
    a, b = np.sqrt(w), np.sqrt(1.0 - w)
    q = np.hstack([a * l2_normalize(q_old), b * l2_normalize(q_new)])
    return q, np.hstack([a * l2_normalize(d_old), b * l2_normalize(d_mapped)])


def choose_hybrid_weight(old: np.ndarray, new: np.ndarray, mapped: np.ndarray, k: int = 10) -> tuple[float, list]:
    """The hybrid weight (of :data:`HYBRID_WEIGHTS`) whose ranking of held-out anchors best
    recovers each anchor's ``k`` nearest neighbours under the new model (recall@k, the anchor
    itself excluded): a proxy for "as close to re-embedding as possible" that needs no
    evaluation query. ``old``, ``new``: the held-out anchors' vectors; ``mapped``: old mapped."""
    target = l2_normalize(new) @ l2_normalize(new).T
    np.fill_diagonal(target, -np.inf)
    truth = np.argpartition(-target, k, axis=1)[:, :k]
    recalls = []
    for w in HYBRID_WEIGHTS:
        q, d = hybrid(old, new, old, mapped, w)
        s = q @ d.T
        np.fill_diagonal(s, -np.inf)
        top = np.argpartition(-s, k, axis=1)[:, :k]
        hits = (top[:, :, None] == truth[:, None, :]).any(axis=2).sum(axis=1)
        recalls.append(float(hits.mean() / k))
    return HYBRID_WEIGHTS[int(np.argmax(recalls))], recalls


def mapped_outcomes(
    task: RetrievalTask, vo: Encoded, vn: Encoded, fitted: dict[str, Map], held: np.ndarray | None = None
) -> dict[str, tuple]:
    """Conditions (c), (d), (e) and, given held-out anchor rows, (h): ``((metrics, per-query
    nDCG), direction, doc cosine to new, extra)``."""
    mapped_queries = fitted["new->old"].transform(vn.queries)
    mapped_docs = fitted["old->new"].transform(vo.docs)
    held_cos = float(per_text_cosine(mapped_docs, vn.docs).mean())
    out = {
        "c": (score(task, mapped_queries, vo.docs), "new->old", None, {}),
        "d": (score(task, vn.queries, mapped_docs), "old->new", held_cos, {}),
        "e": (score(task, *hybrid(vo.queries, vn.queries, vo.docs, mapped_docs, 0.5)), "old->new", held_cos, {}),
    }
    if held is not None and len(held):
        w, recalls = choose_hybrid_weight(vo.anchors[held], vn.anchors[held],
                                          fitted["old->new"].transform(vo.anchors[held]))  # fmt: skip
        q, d = hybrid(vo.queries, vn.queries, vo.docs, mapped_docs, w)
        out["h"] = (score(task, q, d), "old->new", held_cos, {"hybrid_weight": w, "held_out_recall": recalls})
    return out


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
            rest = np.setdiff1d(np.arange(len(corpus.anchor_pool)), idx)
            held = np.sort(np.random.default_rng(seed).permutation(rest)[:HELD_OUT_ANCHORS])
            if len(held) < 100:
                held = None
            for kind in config.maps:
                fitted, fit_s = fit_both_directions(kind, config, seed, vo.anchors[idx], vn.anchors[idx])
                outcomes = mapped_outcomes(task, vo, vn, fitted, held)
                for cond, ((metrics, pq), direction, cosine, extra) in outcomes.items():
                    rows.append(
                        {
                            **base, "condition": cond, "map": kind, "n_anchors": n_anchors, "seed": seed,
                            "metrics": metrics, "pct_ceiling": 100 * metrics["ndcg@10"] / m_b["ndcg@10"],
                            "fit_seconds": fit_s[direction], "doc_cosine_to_new": cosine, **extra,
                        }
                    )  # fmt: skip
                    acc = per_query.setdefault(f"{cond}/{kind}/{n_anchors}", {q: 0.0 for q in pq})
                    for q, v in pq.items():
                        acc[q] += v / len(config.seeds)
                if n_anchors == config.latency_anchors and seed == config.seeds[0]:
                    latency_maps.update(latency_maps_of(kind, fitted))
            log(f"  {corpus.key} {old}->{new}: {n_anchors} anchors, seed {seed} done")
    return PairResult(rows, pair_comparisons(per_query, base), latency_maps, pair_gaps(per_query, base))


def pair_comparisons(per_query: dict[str, dict], base: dict) -> list[dict]:
    """Paired tests of every mapped system against (a) and (b), per condition (Holm within each)."""
    comparisons = []
    for cond in CONDITIONS:
        systems = {k: v for k, v in per_query.items() if k.startswith(cond + "/")}
        if not systems:  # (h) needs held-out anchors the pool may not have
            continue
        for ref in ("a", "b"):
            for c in compare_systems({ref: per_query[ref], **systems}, ref, metric="ndcg@10", seed=0):
                comparisons.append({**base, "condition": cond, "against": ref, **c.__dict__})
    return comparisons


def pair_gaps(per_query: dict[str, dict], base: dict) -> list[dict]:
    """Per mapped system: the share of the (a)-to-(b) gap it closes (bootstrap CI over queries),
    and whether it regresses (significantly below the old model (a): paired CI entirely below 0)."""
    qs = sorted(per_query["a"])
    a, b = (np.array([per_query[r][q] for q in qs]) for r in ("a", "b"))
    out = []
    for key, pq in per_query.items():
        if key in ("a", "b"):
            continue
        cond, kind, n = key.split("/")
        m = np.array([pq[q] for q in qs])
        diff, lo, hi = paired_bootstrap_ci(m, a, seed=0)
        row = {**base, "condition": cond, "map": kind, "n_anchors": int(n), "vs_old": diff,
               "vs_old_ci": [lo, hi], "regression": bool(hi < 0), "gap_closed": None, "gap_ci": None}  # fmt: skip
        if b.mean() > a.mean():
            g, glo, ghi = gap_closed(m, a, b, seed=0)
            row.update(gap_closed=g, gap_ci=[glo, ghi])
        out.append(row)
    return out


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
