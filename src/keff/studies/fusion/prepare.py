"""Prepare the members of a fusion experiment: fine-tune, encode, align, estimate sigma^2.

Every document is embedded once per specialist (through keff's disk cache), never per query.
Maps, centroids and variance estimators are fitted on training texts; calibration uses
validation queries; test queries are only encoded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from keff.arrays import l2_normalize
from keff.encoders import get_encoder
from keff.fusion import fit_specialist
from keff.paths import cache_dir
from keff.studies.common import log
from keff.studies.fusion.judge import Judge
from keff.studies.fusion.mixed import DOMAINS, MixedDomain
from keff.studies.fusion.strategies import Member
from keff.train.finetune import finetune_specialist
from keff.uncertainty import CalibratedVariance, CentroidDistance, KnnDensity

#: The sigma^2 estimators every member carries (see :func:`fit_variances`).
ESTIMATORS = ("constant", "centroid", "knn", "calibrated")


@dataclass(frozen=True)
class Plan:
    """How to obtain one specialist: a registry encoder, or minilm fine-tuned on a domain.

    Attributes
    ----------
    name : str
        The specialist's name in every row and file.
    encoder : str, optional
        A registry encoder name (when not fine-tuned).
    finetune : str, optional
        The domain whose training pairs minilm is fine-tuned on (cached by content).
    rotate, seed, max_seconds, epochs
        Fine-tuning settings (see :func:`keff.train.finetune.finetune_specialist`).
    """

    name: str
    encoder: str | None = None
    finetune: str | None = None
    rotate: bool = False
    seed: int = 0
    max_seconds: float = 600.0
    epochs: int = 3


#: The study's specialists: four generalists and three domain fine-tunes of minilm.
SPECIALISTS = (
    Plan("minilm", encoder="minilm"),
    Plan("mpnet", encoder="mpnet"),
    Plan("minilm-l3-onnx", encoder="minilm-l3-onnx"),
    Plan("minilm-int8-onnx", encoder="minilm-int8-onnx"),
    Plan("ft-scifact", finetune="scifact"),
    Plan("ft-medquad", finetune="medquad"),
    Plan("ft-skills", finetune="skills"),
)
#: The drift experiment's two siblings pushed apart: each fine-tuned behind its own random
#: rotation of the output.
DRIFTED = (
    Plan("rot-scifact", finetune="scifact", rotate=True, seed=1, max_seconds=300.0),
    Plan("rot-medquad", finetune="medquad", rotate=True, seed=2, max_seconds=300.0),
)


def resolve_encoder(plan: Plan, mixed: MixedDomain) -> tuple[str, dict]:
    """The encoder name or folder of a plan, fine-tuning it first when it is not cached yet."""
    if plan.finetune is None:
        return str(plan.encoder), {}
    pairs = mixed.train_pairs[plan.finetune]
    spec = {"domain": plan.finetune, "rotate": plan.rotate, "seed": plan.seed, "max_seconds": plan.max_seconds,
            "epochs": plan.epochs,
            "base": get_encoder("minilm", cache=False).fingerprint,
            "pairs": hashlib.sha256(json.dumps(pairs).encode()).hexdigest()}  # fmt: skip
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]
    out = cache_dir() / "specialists" / f"{plan.name}-{key}"
    report_path = out / "keff_finetune.json"
    if not report_path.is_file():
        log(
            f"fine-tuning {plan.name} on {len(pairs)} {plan.finetune} pairs "
            f"({plan.epochs} epochs or {plan.max_seconds:.0f} s)"
        )
        finetune_specialist(
            pairs, out, epochs=plan.epochs, rotate_output=plan.rotate, seed=plan.seed, max_seconds=plan.max_seconds
        )
    return str(out), json.loads(report_path.read_text())


def _sample(texts: list[str], n: int, seed: int) -> list[str]:
    texts = list(dict.fromkeys(texts))
    if len(texts) <= n:
        return texts
    rows = np.sort(np.random.default_rng(seed).choice(len(texts), n, replace=False))
    return [texts[i] for i in rows]


def training_texts(mixed: MixedDomain, domain: str, n: int, seed: int) -> list[str]:
    """Up to ``n`` distinct training texts of a domain, half queries and half documents."""
    pairs = mixed.train_pairs[domain]
    return _sample([q for q, _ in pairs], n // 2, seed) + _sample([d for _, d in pairs], n - n // 2, seed)


def build_members(
    plans: tuple[Plan, ...],
    mixed: MixedDomain,
    judge_val: Judge,
    *,
    reference: str = "minilm",
    map_kind: str = "procrustes",
    anchors_per_domain: int = 700,
    seed: int = 0,
) -> tuple[list[Member], dict]:
    """Fine-tune (if needed), encode and fit every planned specialist.

    Parameters
    ----------
    plans : tuple of Plan
        The specialists, in the order of the returned members.
    mixed : MixedDomain
        Corpus, queries and training pairs. Maps, centroids and the centroid and kNN estimators
        are fitted on training texts only; calibration on ``judge_val``'s validation errors;
        test queries are only encoded and mapped.
    judge_val : Judge
        Judgements of ``mixed.val``.
    reference : str
        The plan whose space is the shared frame (no map); when no plan has that name, the
        registry encoder of that name embeds the anchors that define the frame.
    map_kind : str
        Map into the frame (a name in :data:`keff.maps.MAPS`).
    anchors_per_domain : int
        Training texts per domain the maps are fitted on.
    seed : int
        Seed of the text samples and the kNN estimator.

    Returns
    -------
    members : list of Member
    info : dict
        Per specialist: encoder, fingerprint, fine-tuning report, anchor cosine to the reference.
    """
    anchors = [t for d in DOMAINS for t in training_texts(mixed, d, anchors_per_domain, seed)]
    domain_texts = {d: training_texts(mixed, d, 1000, seed + 1) for d in DOMAINS}
    generalist = [t for d in DOMAINS for t in _sample(domain_texts[d], 400, seed)]
    encoded, info = {}, {}
    for plan in sorted(plans, key=lambda p: p.name != reference):  # the reference first
        source, report = resolve_encoder(plan, mixed)
        enc = get_encoder(source)
        log(f"encoding the mixed corpus, queries and anchors with {plan.name} (cached vectors are reused)")
        texts = domain_texts[plan.finetune] if plan.finetune else generalist
        encoded[plan.name] = (enc, {
            "docs": enc.encode(mixed.doc_texts, kind="doc"),
            "val": enc.encode(mixed.val.texts, kind="query"),
            "test": enc.encode(mixed.test.texts, kind="query"),
            "anchors": enc.encode(anchors, kind="doc"),
            "domain": enc.encode(texts, kind="doc"),
        })  # fmt: skip
        info[plan.name] = {"encoder": source, "fingerprint": enc.fingerprint, "finetune": report.get("report")}
    if reference in encoded:
        ref_anchors = encoded[reference][1]["anchors"]
    else:
        ref_anchors = get_encoder(reference).encode(anchors, kind="doc")
    ref_unit = l2_normalize(ref_anchors, zero_rows="error", name="reference anchor")

    members = []
    for plan in plans:
        enc, own = encoded[plan.name]
        is_ref = plan.name == reference
        spec = fit_specialist(
            plan.name, enc, anchors_own=own["anchors"], anchors_frame=None if is_ref else ref_anchors,
            domain_texts_own=own["domain"], uncertainty=CentroidDistance(), map_kind=map_kind,
            domain=plan.finetune, info=info[plan.name],
        )  # fmt: skip
        frame = {k: spec.to_frame(own[k]) for k in ("docs", "val", "test", "anchors", "domain")}
        m = Member(plan.name, spec, {k: own[k] for k in ("docs", "val", "test")}, frame)
        fit_variances(m, frame, judge_val, seed=seed)
        members.append(m)
        if not is_ref:
            cos = np.sum(frame["anchors"] * ref_unit, axis=1)
            info[plan.name]["anchor_cosine_to_reference"] = {
                "mean": float(cos.mean()),
                "p10": float(np.percentile(cos, 10)),
            }
    anchor_frames = np.stack([m.frame["anchors"] for m in members])
    for m, a in zip(members, anchor_frames):
        m.residual = ((a - anchor_frames.mean(axis=0)) ** 2).mean(axis=0) + 1e-6
    return members, info


def fit_variances(m: Member, frame: dict[str, np.ndarray], judge_val: Judge, *, seed: int) -> None:
    """sigma^2 of every query and document under each estimator, fitted on training texts
    (centroid, kNN) and validation errors (calibrated)."""
    centroid = m.specialist.uncertainty
    knn = KnnDensity(seed=seed).fit(frame["domain"])
    errors = 1.0 - judge_val.per_query(m.score("val"))
    calibrated = CalibratedVariance().fit_from(centroid, frame["val"], errors)
    m.specialist.uncertainty = calibrated
    for name, est in (("centroid", centroid), ("knn", knn), ("calibrated", calibrated)):
        m.variances[name] = {s: est.variance(frame[s]) for s in ("val", "test", "docs")}
    m.variances["constant"] = {s: np.ones(len(frame[s])) for s in ("val", "test", "docs")}
