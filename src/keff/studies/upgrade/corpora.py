"""The study's corpora (a BEIR test split, a MedQuAD sample), their anchor pools, and their vectors."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from keff.data import load_beir, load_qa, sample_groups
from keff.encoders import get_encoder
from keff.studies.common import log
from keff.studies.upgrade.config import UpgradeConfig
from keff.tasks import RetrievalTask, beir_task, qa_task

METRICS = ("ndcg@10", "recall@100")
#: How notes name the BEIR corpora (others by their folder name).
BEIR_TITLES = {"scifact": "SciFact"}
#: The MedQuAD sample and its anchor pool are drawn with this seed, whatever the run's seeds.
MEDQUAD_SEED = 0


@dataclass
class Corpus:
    """One evaluation corpus and the pool its anchor documents are drawn from."""

    key: str
    task: RetrievalTask
    anchor_pool: list[str]
    note: str


@dataclass
class Encoded:
    """One encoder's vectors of a corpus: evaluation queries, documents, anchor pool."""

    queries: np.ndarray
    docs: np.ndarray
    anchors: np.ndarray


def beir_corpus(data: Path, name: str) -> Corpus:
    """The test split of ``data/beir/<name>`` against its full corpus; anchors from that corpus."""
    task = beir_task(load_beir(data / "beir" / name, splits=["test"]), "test")
    note = (
        f"{BEIR_TITLES.get(name, name)} test: {len(task.query_ids)} queries, full corpus of {len(task.doc_ids)}; "
        "anchors drawn from the corpus"
    )
    return Corpus(name, task, list(task.doc_texts), note)


def medquad_corpus(data: Path, n_groups: int, pool_size: int, seed: int) -> Corpus:
    """``n_groups`` seeded MedQuAD groups (questions against their answers); anchors are up to
    ``pool_size`` distinct answers of the other groups."""
    pairs = load_qa(data / "qa" / "medquad.jsonl", preset="medquad")
    task = replace(qa_task(pairs, "medquad_sample", sample_n_groups=n_groups, seed=seed), metrics=METRICS)
    inside = set(sample_groups(pairs.groups, n_groups, seed=seed).tolist())
    outside = sorted({pairs.answers[i] for i in range(len(pairs.ids)) if i not in inside})
    rng = np.random.default_rng(seed)
    pool = [outside[i] for i in sorted(rng.choice(len(outside), size=min(pool_size, len(outside)), replace=False))]
    note = (
        f"MedQuAD {task.note}: {len(task.query_ids)} questions against {len(task.doc_ids)} answers; anchors drawn "
        f"from {len(pool)} answers of other groups (seed {seed})"
    )
    return Corpus("medquad", task, pool, note)


def build_corpus(key: str, data: Path, config: UpgradeConfig) -> Corpus:
    """The corpus named ``key`` (see :attr:`UpgradeConfig.corpora`)."""
    if key == "medquad":
        return medquad_corpus(data, config.medquad_groups, config.medquad_anchor_pool, MEDQUAD_SEED)
    return beir_corpus(data, key)


def encode_corpus(corpus: Corpus, name: str) -> Encoded:
    """The corpus's queries, documents and anchor pool encoded by ``name`` (cached vectors reused)."""
    enc = get_encoder(name)
    log(f"encoding {corpus.key} with {name} (cached vectors are reused)")
    return Encoded(
        queries=enc.encode(corpus.task.query_texts, kind="query"),
        docs=enc.encode(corpus.task.doc_texts, kind="doc"),
        anchors=enc.encode(corpus.anchor_pool, kind="doc"),
    )


def draw_anchors(pool_size: int, n_anchors: int, seed: int) -> np.ndarray:
    """Sorted row indices of ``n_anchors`` anchors drawn from a pool, seeded."""
    return np.sort(np.random.default_rng(seed).choice(pool_size, n_anchors, replace=False))
