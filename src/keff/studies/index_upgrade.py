"""Model upgrade of a persistent index without downtime, measured end to end on a BEIR set.

An index of the corpus is built with the old encoder. :func:`keff.docindex.upgrade.upgrade`
fits maps old <-> new on anchor documents of the index and validates its serving modes against
keeping the old model; the validations are tried in order (by default pseudo-queries of held-out
anchors, then the training split's queries) and the first that accepts a mode serves. Then, on
the **test** queries (used for nothing but this scoring), nDCG@10, recall@100 and MRR@10 of:

- the old model (the index before the upgrade);
- the upgraded index answering new-encoder queries right after ``upgrade`` (the chosen mode), and
  each other mode as a diagnostic (chosen on the validation queries, never on these);
- half-way through ``reembed`` (true vectors for the re-embedded half, mapped ones for the rest);
- after ``reembed`` switched over, and a fresh index built with the new encoder: their vectors
  are compared exactly (per document id) and so are their top-10 rankings (ids and scores).

Metrics are computed from the index's own search results (:meth:`Index.search_vectors` with the
queries :meth:`Index.encode_queries` gives, then :func:`keff.eval.evaluate_run`); ``keff index
eval`` (:mod:`keff.docindex.evaluate`) was being written alongside and is not used here.

``benchmarks/index_upgrade.py`` is the driver; ``benchmarks/render.py`` renders the results.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from keff.data import load_beir
from keff.docindex import Index, read_documents
from keff.docindex import upgrade as up
from keff.encoders import get_encoder
from keff.errors import KeffError
from keff.eval import compare_systems, run_metadata
from keff.eval.metrics import evaluate_run, run_from_topk
from keff.paths import shipped_vectors
from keff.precomputed import seed_beir_vectors
from keff.studies.common import log
from keff.tasks import RetrievalTask, beir_task

METRICS = ("ndcg@10", "recall@100", "mrr@10")
#: Validation kinds: pseudo-queries of held-out anchors, or the judged queries of a training split.
VALIDATIONS = ("pseudo", "train")


@dataclass(frozen=True)
class IndexUpgradeConfig:
    """What the study measures.

    Attributes
    ----------
    dataset : str
        BEIR folder ``beir/<dataset>`` of the shared data.
    old, new : str
        Encoder the index is built with, and the one it is upgraded to.
    anchors : int
        Anchor documents of the index embedded by the new encoder.
    map_kind : str
        Map kind fitted both ways.
    holdout : float
        Share of the anchors held out as pseudo-queries (``pseudo`` validation).
    validations : tuple of str
        Tried in order (each of :data:`VALIDATIONS`); the first that accepts a mode serves.
    train_split, eval_split : str
        Split of the ``train`` validation, and the split scored (never used before scoring).
    chunk : int
        Rows per ``reembed`` commit.
    seed : int
    seed_vectors : bool
        Seed keff's cache from shipped vectors of the encoders (checked on a probe sample first).
    workdir : Path, optional
        Where the indexes are built (default: a temporary folder, removed afterwards).
    """

    dataset: str = "scifact"
    old: str = "minilm-l3-onnx"
    new: str = "minilm"
    anchors: int = 1000
    map_kind: str = "affine"
    holdout: float = 0.2
    validations: tuple[str, ...] = VALIDATIONS
    train_split: str = "train"
    eval_split: str = "test"
    chunk: int = 1024
    seed: int = 0
    seed_vectors: bool = True
    workdir: Path | None = None

    def __post_init__(self) -> None:
        unknown = [v for v in self.validations if v not in VALIDATIONS]
        if not self.validations or unknown:
            raise KeffError(f"validations must be among {', '.join(VALIDATIONS)}; got {list(self.validations)}")
        if self.eval_split == self.train_split:
            raise KeffError("the scored split must not be the validation's training split")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["validations"] = list(self.validations)
        d["workdir"] = None if self.workdir is None else str(self.workdir)
        return d


def score(index: Index, task: RetrievalTask, queries: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """Metrics and per-query nDCG@10 of the index's top-100 for ``queries`` (encoder key -> vectors)."""
    scores, rows = index.search_vectors(queries, 100)
    aggregate, per_query = evaluate_run(run_from_topk(task.query_ids, index.documents.ids, scores, rows), task.qrels,
                                        METRICS)  # fmt: skip
    return {m: float(v) for m, v in aggregate.items()}, per_query["ndcg@10"]


def score_texts(index: Index, task: RetrievalTask) -> tuple[dict, dict]:
    """:func:`score` of the task's query texts encoded as the index encodes them (the upgrade honoured)."""
    return score(index, task, index.encode_queries(task.query_texts))


def _seed(name: str, folder: Path, dataset) -> list[dict]:
    vectors = shipped_vectors(folder, name)
    if vectors is None:
        return []
    reports = seed_beir_vectors(get_encoder(name), dataset, vectors)
    for r in reports:
        log(f"{name}: {r.message}")
    return [{"file": Path(r.source).name, "min_cosine": r.min_cosine, "n_checked": r.n_checked} for r in reports]


def cache_entries(names: tuple[str, ...]) -> dict[str, int]:
    """Entries of each encoder in keff's embedding cache (their growth = texts the model encoded)."""
    encoders = {name: get_encoder(name) for name in names}
    usage = next(iter(encoders.values())).cache.usage()
    return {name: usage.get(enc.fingerprint[:16], (0, 0))[0] for name, enc in encoders.items()}


class _Encodes:
    """Texts each encoder's model encoded per phase (cache growth), for the timings' context."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names, self.last, self.phases = names, cache_entries(names), []

    def phase(self, name: str) -> None:
        now = cache_entries(self.names)
        self.phases.append({"phase": name, "encoded": {n: now[n] - self.last[n] for n in self.names}})
        self.last = now


def _timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, round(time.perf_counter() - start, 2)


def _try_upgrades(config: IndexUpgradeConfig, index: Index, folder: Path) -> tuple[list[dict], Any]:
    """Each configured validation in turn until one accepts a mode; every attempt's figures."""
    attempts = []
    for kind in config.validations:
        log(f"upgrade to {config.new}: validating on {kind} queries")
        queries = folder if kind == "train" else None
        try:
            report, seconds = _timed(up.upgrade, index, config.new, anchors=config.anchors, map_kind=config.map_kind,
                                     holdout=config.holdout, queries=queries, split=config.train_split,
                                     seed=config.seed)  # fmt: skip
        except up.UpgradeRefused as exc:
            attempts.append({"validation": kind, "verdict": "refused", **exc.validation.to_dict()})
            log(f"  refused: {exc.validation.summary()}")
            continue
        attempts.append({"validation": kind, "verdict": "accepted", "seconds": seconds, **report.validation.to_dict()})
        log(f"  accepted {report.mode}: {report.validation.summary()}")
        return attempts, report
    return attempts, None


def run(config: IndexUpgradeConfig, *, data: Path) -> dict:
    """Build, upgrade, re-embed and compare (see the module docstring); JSON-ready results."""
    folder = data / "beir" / config.dataset
    dataset = load_beir(folder)
    task = beir_task(dataset, config.eval_split)
    seeding = {name: _seed(name, folder, dataset) for name in (config.old, config.new)} if config.seed_vectors else {}
    docs = read_documents(folder)
    results: dict[str, Any] = {
        "benchmark": "index_upgrade",
        "meta": run_metadata(
            seed=config.seed,
            encoders={n: get_encoder(n).fingerprint for n in (config.old, config.new)},
            data_hashes={config.dataset: dict(dataset.file_hashes)},
        ),
        "config": config.to_dict(),
        "seeding": seeding,
        "n_docs": len(docs),
        "n_test_queries": len(task.query_ids),
    }
    with tempfile.TemporaryDirectory(prefix="keff-index-upgrade-") as tmp:
        work = Path(config.workdir) if config.workdir is not None else Path(tmp)
        results.update(_measure(config, task, docs, work, folder))
    return results


def _measure(config: IndexUpgradeConfig, task: RetrievalTask, docs, work: Path, folder: Path) -> dict:
    encodes = _Encodes((config.old, config.new))
    log(f"building the {config.old} index of {len(docs):,} documents")
    index, build_s = _timed(Index.build, work / "upgraded", docs, [config.old], overwrite=True)
    old_key = index.encoder_keys[0]
    systems: dict[str, dict] = {}
    per_query: dict[str, dict] = {}
    systems["old"], per_query["old"] = score_texts(index, task)
    out: dict[str, Any] = {"build_seconds": build_s, "systems": systems, "model_encoded": encodes.phases}
    encodes.phase("build and old-model queries")
    attempts, report = _try_upgrades(config, index, folder)
    out["attempts"] = attempts
    encodes.phase("upgrade (validations)")
    if report is None:
        log("every validation refused the upgrade: nothing more to measure")
        return out
    out["chosen"] = report.mode
    systems["upgraded"], per_query["upgraded"] = score_texts(index, task)
    queries = index.encode_queries(task.query_texts, [old_key, report.target_key])
    for mode in up.MODES:  # diagnostics: every mode on the test queries (the choice was made before)
        top, rows = index.upgrade.search(queries, 100, mode=mode)
        aggregate, _ = evaluate_run(run_from_topk(task.query_ids, index.documents.ids, top, rows), task.qrels,
                                    METRICS)  # fmt: skip
        systems[f"mode:{mode}"] = {m: float(v) for m, v in aggregate.items()}

    half = index.documents.n_rows // 2
    log(f"re-embedding {half:,} of {index.documents.n_rows:,} documents, then scoring half-way")
    encodes.phase("test queries")
    first, first_s = _timed(up.reembed, index, chunk=config.chunk, max_rows=half)
    encodes.phase("reembed, first half")
    systems["half_reembedded"], per_query["half_reembedded"] = score_texts(index, task)
    log("re-embedding the rest and switching over")
    second, second_s = _timed(up.reembed, index, chunk=config.chunk)
    encodes.phase("reembed, rest and switch")
    index = Index.open(index.root)
    systems["switched"], per_query["switched"] = score_texts(index, task)
    out["reembed"] = {
        "chunk": config.chunk,
        "runs": [
            {"rows": first.encoded, "seconds": first_s, "switched": first.switched},
            {"rows": second.encoded, "seconds": second_s, "switched": second.switched},
        ],
        "docs_per_second": round((first.encoded + second.encoded) / max(first_s + second_s, 1e-9), 1),
        "generation": index.manifest.generation,
    }

    log(f"building a fresh {config.new} index to compare")
    fresh, fresh_s = _timed(Index.build, work / "fresh", docs, [config.new], overwrite=True)
    encodes.phase("fresh build")
    out["fresh_build_seconds"] = fresh_s
    systems["fresh"], per_query["fresh"] = score_texts(fresh, task)
    out["equality"] = compare_indexes(index, fresh, task)
    out["comparisons"] = [
        c.__dict__
        for c in compare_systems(
            {"old": per_query["old"], **{k: v for k, v in per_query.items() if k != "old"}}, "old",
            metric="ndcg@10", seed=config.seed,
        )
    ]  # fmt: skip
    out["done"] = {
        "upgraded_at_or_above_old": systems["upgraded"]["ndcg@10"] >= systems["old"]["ndcg@10"],
        "switched_equals_fresh": out["equality"]["vectors_identical"] and out["equality"]["top10_identical"],
    }
    return out


def compare_indexes(a: Index, b: Index, task: RetrievalTask) -> dict[str, Any]:
    """Whether two single-encoder indexes hold identical vectors per document id and return identical
    top-10 rankings (ids and scores) for the task's queries."""
    key_a, key_b = a.encoder_keys[0], b.encoder_keys[0]
    ids = sorted(a.documents.row_of)
    same_ids = ids == sorted(b.documents.row_of)
    va = a.vectors[key_a][[a.documents.row_of[i] for i in ids]]
    vb = b.vectors[key_b][[b.documents.row_of[i] for i in ids]] if same_ids else None
    ra, rb = a.search(task.query_texts, 10), b.search(task.query_texts, 10)
    differ = sum([(h.id, h.score) for h in x] != [(h.id, h.score) for h in y] for x, y in zip(ra, rb))
    return {
        "same_encoder": key_a == key_b,
        "same_document_ids": same_ids,
        "n_docs": len(ids),
        "vectors_identical": bool(same_ids and np.array_equal(va, vb)),
        "max_abs_vector_diff": None if vb is None else float(np.abs(va - vb).max()),
        "n_queries": len(ra),
        "top10_differing_queries": int(differ),
        "top10_identical": differ == 0,
    }


__all__ = ["METRICS", "VALIDATIONS", "IndexUpgradeConfig", "compare_indexes", "run", "score", "score_texts"]
