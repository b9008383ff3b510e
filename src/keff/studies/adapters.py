"""Adapters over frozen encoders on held-out questions, in distribution and on unseen sources.

Protocols (the answer pool is never refitted; a hit is any answer of the question's group):

- Q/A sets (skills, MedQuAD): grouped 5-fold as in the projection study; each adapter is
  fitted on four folds' pairs (its own early-stopping/do-no-harm validation is a held-out part
  of those) and scores the fifth fold's questions.
- SciFact: fitted on the train qrels' (claim, abstract) pairs, scored on the test claims against
  the whole corpus (through the document head for asymmetric adapters); the test claims whose
  relevant abstracts a train claim also cites are reported apart from the rest.
- MedQuAD leave-one-source-out (minilm): each of the six sources is held out in turn; adapters
  are fitted on the other five and score the held-out source's questions against every answer.

Rows: the untouched encoder (identity), the existing ``ContrastiveMap``, each adapter kind with
and without hard negatives as trained (best validation epoch), and the shipped defaults after
the do-no-harm rule (the identity wherever the rule refused the adapter). Every row has its
training time and parameter count; the default adapter's training time on 15,000 pairs and its
application cost against a same-shape matrix product are measured separately.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from keff.adapters import AsymAdapter, QueryAdapter
from keff.adapters.evaluate import domain_folds, evaluate_adapters
from keff.atomic import atomic_path
from keff.data import qa_field
from keff.estimator import n_parameters
from keff.eval import compare_latency, run_metadata
from keff.maps import ContrastiveMap
from keff.projection import ProjectionSetup, summarise
from keff.studies.common import log
from keff.studies.projection import QA_FILES, ProjectionConfig, setup_for

#: Rows: name -> (adapter class or None for ContrastiveMap / identity, parameters).
METHODS: dict[str, tuple[Any, dict[str, Any]] | None] = {
    "identity": None,
    "contrastive (existing map)": (ContrastiveMap, {}),
    "query linear": (QueryAdapter, {"head": "linear", "hard_negatives": 0}),
    "query linear +hn": (QueryAdapter, {"head": "linear"}),
    "query lowrank +hn": (QueryAdapter, {"head": "lowrank"}),
    "query mlp +hn": (QueryAdapter, {"head": "mlp"}),
    "asym linear": (AsymAdapter, {"head": "linear", "hard_negatives": 0}),
    "asym linear +hn": (AsymAdapter, {"head": "linear"}),
    "asym lowrank +hn": (AsymAdapter, {"head": "lowrank"}),
    "asym mlp +hn": (AsymAdapter, {"head": "mlp"}),
}
#: The shipped defaults (``keff adapt fit --kind query|asym``) and the row they are trained as.
DEFAULTS = {"query default (do-no-harm)": "query linear +hn", "asym default (do-no-harm)": "asym linear +hn"}
#: Leave-one-source-out rows: the defaults validated by groups (as trained and after the rule)
#: and validated on held-out sources (``validation="domains"``).
LOSO_METHODS: dict[str, tuple[Any, dict[str, Any]] | None] = {
    "identity": None,
    "contrastive (existing map)": (ContrastiveMap, {}),
    "query linear +hn": (QueryAdapter, {"head": "linear"}),
    "asym linear +hn": (AsymAdapter, {"head": "linear"}),
    "query linear +hn, domain validation": (QueryAdapter, {"head": "linear", "validation": "domains"}),
    "asym linear +hn, domain validation": (AsymAdapter, {"head": "linear", "validation": "domains"}),
}
LOSO_DEFAULTS = {
    "query default (do-no-harm)": "query linear +hn",
    "asym default (do-no-harm)": "asym linear +hn",
    "query default, domain validation (do-no-harm)": "query linear +hn, domain validation",
    "asym default, domain validation (do-no-harm)": "asym linear +hn, domain validation",
}


@dataclass
class AdaptersConfig:
    """What the study runs (``quick``: skills with minilm only, no leave-one-source-out)."""

    seed: int = 0
    medquad_mpnet_groups: int = 300
    timing_pairs: int = 15000
    quick: bool = False

    def plans(self) -> list[tuple[str, str, int | None]]:
        """(data set, encoder, sampled groups or None): the projection study's plans."""
        return ProjectionConfig(medquad_mpnet_groups=self.medquad_mpnet_groups, quick=self.quick).plans()


def evaluate(setup: ProjectionSetup, dataset: str, encoder: str, seed: int) -> dict:
    log(f"{dataset} / {encoder}: {len(setup.folds)} fold(s)")
    outcomes = evaluate_adapters(setup, setup.folds, METHODS, DEFAULTS, seed=seed, log=log)
    result = {
        "dataset": dataset,
        "encoder": encoder,
        "note": setup.note,
        "metrics": list(setup.metrics),
        "fingerprint": setup.fingerprint,
        "fold_test_queries": [int(test.size) for _, test in setup.folds],
        "rows": summarise(outcomes, setup.metrics, seed),
    }
    if setup.slices:
        result["slices"] = {name: summarise(outcomes, setup.metrics, seed, query_ids=ids)
                            for name, ids in setup.slices.items()}  # fmt: skip
    return result


def leave_one_source_out(data: Path, encoder: str, seed: int) -> dict:
    """MedQuAD with each source held out in turn (fitted on the other five)."""
    path = data / "qa" / QA_FILES["medquad"]
    setup = setup_for(data, "medquad", encoder, None, seed)
    sources = np.array(qa_field(path, "source"))
    if len(sources) != len(setup.Q):
        raise RuntimeError(f"{path}: {len(sources)} sources for {len(setup.Q)} pairs")
    names, folds = domain_folds(sources)
    log(f"medquad / {encoder}: leave one source out ({len(names)} sources)")
    outcomes = evaluate_adapters(setup, folds, LOSO_METHODS, LOSO_DEFAULTS, domains=sources, seed=seed, log=log)
    per_source = {}
    for s, (_, test) in zip(names, folds):
        ids = [setup.query_ids[i] for i in test]
        per_source[s] = summarise(outcomes, setup.metrics, seed, query_ids=ids)
    return {
        "dataset": "medquad",
        "encoder": encoder,
        "metrics": list(setup.metrics),
        "sources": {s: int((sources == s).sum()) for s in names},
        "rows": summarise(outcomes, setup.metrics, seed),
        "per_source": per_source,
    }


def timing(data: Path, config: AdaptersConfig) -> dict:
    """The default query adapter's training time on ``timing_pairs`` MedQuAD pairs (minilm, cached
    vectors) and the application cost of each head against a same-shape matrix product."""
    setup = setup_for(data, "medquad", "minilm", None, config.seed)
    n = min(config.timing_pairs, len(setup.Q))
    rows = np.random.default_rng(config.seed).choice(len(setup.Q), n, replace=False)
    out: dict[str, Any] = {"pairs": int(n), "train": {}, "apply": {}}
    X = np.ascontiguousarray(setup.Q[:2000])
    rng = np.random.default_rng(config.seed)
    for head in ("linear", "lowrank", "mlp"):
        t0 = time.perf_counter()
        m = QueryAdapter(head=head, seed=config.seed).fit(
            setup.Q[rows], setup.A[rows], setup.groups[rows], progress=False
        )
        out["train"][head] = {"seconds": time.perf_counter() - t0, "epochs_run": len(m.history_) - 1,
                              "best_epoch": m.best_epoch_, "parameters": n_parameters(m)}  # fmt: skip
        floor = m.matmul_floor(rng)
        t = compare_latency({"adapter": lambda r, m=m: m.transform(X[r]), "floor": lambda r, f=floor: f(X[r])},
                            len(X), baseline="floor", repeats=15, single=300)  # fmt: skip
        out["apply"][head] = {
            "batch_ratio": t["batch_ratio"]["adapter"],
            "single_ratio": t["single_ratio"]["adapter"],
            "single_us": t["single_us"]["adapter"],
            "floor_single_us": t["single_us"]["floor"],
        }
        log(f"  {head}: trained on {n} pairs in {out['train'][head]['seconds']:.1f} s")
    return out


def run(config: AdaptersConfig, *, data: Path) -> dict:
    results = [
        evaluate(setup_for(data, ds, enc, g, config.seed), ds, enc, config.seed) for ds, enc, g in config.plans()
    ]
    out: dict[str, Any] = {
        "benchmark": "adapters",
        "meta": run_metadata(seed=config.seed),
        "methods": {k: (None if v is None else {"class": v[0].__name__, **v[1]}) for k, v in METHODS.items()},
        "defaults": DEFAULTS,
        "adapter_params": QueryAdapter().get_params(),
        "results": results,
    }
    if not config.quick:
        out["leave_one_source_out"] = leave_one_source_out(data, "minilm", config.seed)
        out["timing"] = timing(data, config)
    return out


def plot(results: list[dict], path: Path) -> Path:
    """Head-metric difference to the identity (with CI) of every row, one panel per set."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows_n = (len(results) + 2) // 3
    fig = Figure(figsize=(13, 3.0 * rows_n), dpi=110)
    FigureCanvasAgg(fig)
    for i, res in enumerate(results):
        ax = fig.add_subplot(rows_n, 3, i + 1)
        head = res["metrics"][0]
        rows = res["rows"]
        diffs = [r["metrics"][head]["diff"] for r in rows]
        err = np.array([[d - r["metrics"][head]["diff_ci"][0], r["metrics"][head]["diff_ci"][1] - d]
                        for d, r in zip(diffs, rows)]).T  # fmt: skip
        colours = ["#7f7f7f" if r["method"] == "identity" else "#2ca02c" if "default" in r["method"] else "#1f77b4"
                   for r in rows]  # fmt: skip
        ax.barh(range(len(rows)), diffs, xerr=err, color=colours)
        ax.axvline(0, color="black", lw=0.6)
        ax.set_yticks(range(len(rows)), [r["method"] for r in rows], fontsize=6)
        ax.set_title(f"{res['dataset']} / {res['encoder']}: {head} - identity", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)
