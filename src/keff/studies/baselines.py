"""Raw-encoder baselines: SciFact (test split, full corpus) and the two Q/A sets.

Every row is the untouched encoder with cosine and exact search, the row every later keff
method must beat. MiniLM and MPNet vectors are reused from the shared precomputed embeddings
only after keff's seeding checks prove them (:mod:`keff.encoders.seeding`). Encoders too slow for
a full set are evaluated on a seeded sample of whole groups, and the table says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from keff.data import load_beir, load_qa
from keff.encoders import get_encoder
from keff.errors import ModelNotAvailable
from keff.eval import compare_systems, run_metadata, write_result
from keff.precomputed import seed_beir_vectors, seed_qa_vectors
from keff.studies.common import log
from keff.tasks import RetrievalTask, beir_task, evaluate_encoder, qa_task

#: Published SciFact test nDCG@10 (BEIR / sentence-transformers model cards), and the tolerance
#: within which keff must reproduce them.
PUBLISHED_SCIFACT = {"minilm": 0.645, "mpnet": 0.656}
TOLERANCE = 0.005
ENCODERS = ("minilm", "mpnet", "minilm-int8-onnx", "minilm-l3-onnx")
#: Encoders that embed long texts too slowly here for all 14,220 MedQuAD answers (~1.6 docs/s).
SLOW = ("mpnet",)


@dataclass
class BaselinesConfig:
    """What the baselines study runs.

    Attributes
    ----------
    encoders : tuple of str
        Encoders to evaluate (one that is not installed is skipped, with the reason).
    medquad_sample_groups : int
        Groups in the seeded MedQuAD sample (for slow encoders, and for a like-for-like row of all).
    seed : int
        Seed of the sample, bootstrap and latency draws.
    runs_dir : Path, optional
        Where to write each run's full per-query result (not committed).
    slow : tuple of str
        Encoders evaluated only on the MedQuAD sample.
    """

    encoders: tuple[str, ...] = ENCODERS
    medquad_sample_groups: int = 300
    seed: int = 0
    runs_dir: Path | None = None
    slow: tuple[str, ...] = field(default=SLOW)


def tasks_of(data: Path, config: BaselinesConfig) -> dict[str, RetrievalTask]:
    """The evaluated tasks of the shared data folder, by key."""
    medquad = load_qa(data / "qa" / "medquad.jsonl", layout="medquad")
    return {
        "scifact": beir_task(load_beir(data / "beir" / "scifact"), "test"),
        "skills_qa": qa_task(load_qa(data / "qa" / "skills_qa.jsonl", layout="skills"), "skills_qa"),
        "medquad": qa_task(medquad, "medquad"),
        "medquad_sample": qa_task(
            medquad, "medquad_sample", sample_n_groups=config.medquad_sample_groups, seed=config.seed
        ),
    }


def seed_shipped_vectors(enc, data: Path, name: str) -> list:
    """Seed ``enc``'s cache from the shared precomputed vectors of SciFact and skills, if shipped."""
    reports = []
    if (data / "embeddings" / "scifact" / name).is_dir():
        reports += seed_beir_vectors(enc, load_beir(data / "beir" / "scifact"), data / "embeddings" / "scifact" / name)
    if (data / "embeddings" / "skills_qa" / name).is_dir():
        skills = load_qa(data / "qa" / "skills_qa.jsonl", layout="skills")
        reports += seed_qa_vectors(enc, skills, data / "embeddings" / "skills_qa" / name)
    return reports


def _row(key: str, task: RetrievalTask, name: str, enc, result, reports: list, seconds: float) -> dict:
    row = {
        "task": key,
        "dataset": task.name,
        "system": name,
        "fingerprint": enc.fingerprint,
        "metrics": result.metrics,
        "n_queries": len(task.query_ids),
        "n_docs": len(task.doc_ids),
        "sample": task.note,
        "latency": result.meta.get("latency"),
        "encode_seconds": result.meta.get("encode_seconds"),
        "wall_seconds": round(seconds, 1),
        "probe_min_cosine": min((r.min_cosine for r in reports), default=None),
    }
    if key == "scifact" and name in PUBLISHED_SCIFACT:
        row["published_ndcg@10"] = PUBLISHED_SCIFACT[name]
        row["reproduced"] = abs(result.metrics["ndcg@10"] - PUBLISHED_SCIFACT[name]) <= TOLERANCE
    return row


def run(config: BaselinesConfig, *, data: Path) -> dict:
    """Evaluate every encoder on every task of the shared data folder ``data``."""
    tasks = tasks_of(data, config)
    rows, results_by_task, skipped = [], {}, []
    for name in config.encoders:
        try:
            enc = get_encoder(name)
        except ModelNotAvailable as exc:
            log(f"skipping {name}: {exc}")
            skipped.append({"task": "all", "system": name, "why": str(exc)})
            continue
        reports = seed_shipped_vectors(enc, data, name)
        for key, task in tasks.items():
            if key == "medquad" and name in config.slow:
                skipped.append({"task": key, "system": name, "why": "about 1.6 long texts/s here: the full set "
                                "would take hours; see the seeded sample"})  # fmt: skip
                continue
            start = time.perf_counter()
            log(f"{name} on {task.name}: {len(task.query_ids)} queries, {len(task.doc_ids)} documents")
            result = evaluate_encoder(task, enc, seed=config.seed)
            result.meta["seeded_from_precomputed"] = [r.__dict__ for r in reports]
            if config.runs_dir is not None:
                write_result(result, config.runs_dir / f"{key}__{name}.json")
            results_by_task.setdefault(key, []).append(result)
            rows.append(_row(key, task, name, enc, result, reports, time.perf_counter() - start))
    return {
        "benchmark": "baselines",
        "meta": run_metadata(seed=config.seed, data_hashes={k: t.data_hashes for k, t in tasks.items()}),
        "tolerance": TOLERANCE,
        "rows": rows,
        "skipped": skipped,
        "comparisons": paired_comparisons(results_by_task, config.seed),
    }


def paired_comparisons(results_by_task: dict, seed: int) -> list[dict]:
    """Per task, every encoder against the best one on the task's headline metric."""
    comparisons = []
    for key, results in results_by_task.items():
        if len(results) < 2:
            continue
        metric = "ndcg@10" if "ndcg@10" in results[0].metrics else "hit@1"
        best = max(results, key=lambda r: r.metrics[metric])
        per_query = {r.system: r.per_query[metric] for r in results}
        for c in compare_systems(per_query, best.system, metric=metric, seed=seed):
            comparisons.append({"task": key, **c.__dict__})
    return comparisons
