"""The fusion study's configuration and its one entry point, :func:`run`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from keff.errors import KeffError
from keff.eval import run_metadata
from keff.studies.fusion.drift import drift_experiment
from keff.studies.fusion.evaluate import domain_checks, evaluate_all, significance, uncertainty_report
from keff.studies.fusion.judge import Judge
from keff.studies.fusion.latency import latency
from keff.studies.fusion.mixed import build_mixed_domain
from keff.studies.fusion.prepare import DRIFTED, SPECIALISTS, Plan, build_members


@dataclass
class FusionConfig:
    """What the fusion study runs.

    Attributes
    ----------
    medquad_groups : int
        MedQuAD groups (seeded sample) whose answers join the mixed corpus.
    seed : int
        Seed of every split, sample and fit.
    router : str
        The specialist whose frame vectors decide which specialists skip routing encodes.
    specialists_out : path, optional
        Save every fitted specialist as ``<name>.sef`` in this folder (None: not saved).
    drift : bool
        Also run the drift experiment (two rotated siblings, fused without and with alignment).
    only : tuple of str, optional
        Keep these specialists by name (a quick run); must include the router.
    specialists : tuple of Plan
        Every specialist of the study (``only`` picks among them).
    drifted : tuple of Plan
        The drift experiment's two siblings.
    reference : str
        The specialist (or registry encoder) whose space is the shared frame.
    """

    medquad_groups: int = 300
    seed: int = 0
    router: str = "minilm-l3-onnx"
    specialists_out: Path | None = None
    drift: bool = True
    only: tuple[str, ...] | None = None
    specialists: tuple[Plan, ...] = SPECIALISTS
    drifted: tuple[Plan, ...] = DRIFTED
    reference: str = "minilm"

    def plans(self) -> tuple[Plan, ...]:
        """The specialists to build, checked before any long work.

        Raises
        ------
        KeffError
            ``only`` names an unknown specialist or leaves out the router; the router is not
            among the specialists; the drift experiment has other than two siblings.
        """
        names = [p.name for p in self.specialists]
        if self.only is not None:
            unknown = sorted(set(self.only) - set(names))
            if unknown:
                raise KeffError(f"unknown specialists {unknown} in only (choose from {', '.join(names)})")
        plans = tuple(p for p in self.specialists if self.only is None or p.name in self.only)
        if self.router not in [p.name for p in plans]:
            raise KeffError(f"the router {self.router!r} must be among the specialists built")
        if self.drift and len(self.drifted) != 2:
            raise KeffError(f"the drift experiment needs two siblings; got {len(self.drifted)}")
        return plans


def run(config: FusionConfig, *, data: str | Path) -> dict:
    """Build the mixed-domain set and every specialist, run all strategies.

    Parameters
    ----------
    config : FusionConfig
    data : path
        The shared data folder (holding ``beir/`` and ``qa/``).

    Returns
    -------
    dict
        JSON-ready results (``benchmarks/render.py`` renders them): the data summary, the
        specialists, one row per strategy, paired tests and picks, per-domain checks, latency,
        the uncertainty report and (with ``config.drift``) the drift experiment.
    """
    plans = config.plans()
    mixed = build_mixed_domain(data, medquad_groups=config.medquad_groups, seed=config.seed)
    judge_val = Judge(mixed.val.ids, mixed.doc_ids, mixed.val.qrels, mixed.val.domains)
    judge_test = Judge(mixed.test.ids, mixed.doc_ids, mixed.test.qrels, mixed.test.domains)
    members, info = build_members(plans, mixed, judge_val, reference=config.reference, seed=config.seed)
    if config.specialists_out is not None:
        for m in members:
            m.specialist.save(Path(config.specialists_out) / f"{m.name}.sef")
    rows, gate_info = evaluate_all(members, judge_val, judge_test, router=config.router)
    comparisons, picks = significance(rows)
    result = {
        "benchmark": "fusion",
        "meta": run_metadata(seed=config.seed, encoders={k: v["fingerprint"] for k, v in info.items()},
                             data_hashes=mixed.data_hashes),
        "data": mixed.summary(),
        "specialists": info,
        "gate": gate_info,
        "rows": [{k: v for k, v in r.items() if k != "per_query_ndcg"} for r in rows],
        "comparisons": comparisons,
        "picks": picks,
        "domain_checks": domain_checks(rows, judge_test, picks["best_fused"]),
        "latency": latency(members),
        "uncertainty": uncertainty_report(members, judge_test),
    }  # fmt: skip
    if config.drift:
        result["drift"] = drift_experiment(
            config.drifted, mixed, judge_val, judge_test, reference=config.reference, seed=config.seed
        )
    return result
