"""The study's corpora (a BEIR test split, a MedQuAD sample), their anchor pools, and their vectors."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from keff.data import load_beir, load_qa, sample_groups
from keff.encoders import get_encoder
from keff.errors import DataError
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


#: The shared corpora generic anchors are drawn from (a corpus never lends anchors to its own evaluation).
GENERIC_SOURCES = ("wikitext", "medquad", "skills", "scifact")


def generic_texts(data: Path, source: str) -> list[str] | None:
    """The distinct texts of one shared corpus (WikiText paragraphs, MedQuAD or skills answers,
    SciFact abstracts), or None when its file is not in ``data``."""
    if source == "wikitext":
        from keff.data.sequences import wikitext_sequences

        path = data / "sequences" / "wikitext_test.raw"
        if not path.is_file():
            return None
        texts = [u for units in wikitext_sequences(path).units for u in units]
    elif source in ("medquad", "skills"):
        path = data / "qa" / ("skills_qa.jsonl" if source == "skills" else "medquad.jsonl")
        if not path.is_file():
            return None
        texts = load_qa(path, preset=source).answers
    else:
        if not (data / "beir" / source / "corpus.jsonl").is_file():
            return None
        texts = list(load_beir(data / "beir" / source, splits=[]).doc_texts)
    return list(dict.fromkeys(texts))


def generic_pool(data: Path, exclude: str, size: int, seed: int) -> tuple[list[str], str]:
    """A seeded pool of ``size`` distinct texts from the shared corpora other than ``exclude``
    (unlabelled text a user has anyway, not the evaluation corpus), and a note of its make-up
    (naming the sources absent from ``data``).

    Raises
    ------
    DataError
        When no source is present.
    """
    found = {src: generic_texts(data, src) for src in GENERIC_SOURCES if src != exclude}
    by_source = {src: texts for src, texts in found.items() if texts}
    if not by_source:
        raise DataError(f"no generic anchor source in {data}: looked for {', '.join(found)}")
    texts = list(dict.fromkeys(t for src in by_source.values() for t in src))
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(texts), size=min(size, len(texts)), replace=False))
    pool = [texts[i] for i in rows]
    chosen = set(pool)
    parts = ", ".join(f"{sum(t in chosen for t in src):,} {name}" for name, src in by_source.items())
    absent = [src for src, texts in found.items() if not texts]
    missing = f"; absent: {', '.join(absent)}" if absent else ""
    return pool, f"{len(pool):,} generic anchors ({parts}{missing}; seed {seed})"


def build_corpus(key: str, data: Path, config: UpgradeConfig) -> Corpus:
    """The corpus named ``key`` (see :attr:`UpgradeConfig.corpora`), with its own anchor pool or,
    when ``config.anchor_source`` is ``"generic"``, a pool of the other shared corpora's texts."""
    if key == "medquad":
        corpus = medquad_corpus(data, config.medquad_groups, config.medquad_anchor_pool, MEDQUAD_SEED)
    else:
        corpus = beir_corpus(data, key)
    if config.anchor_source == "generic":
        pool, note = generic_pool(data, key, config.generic_pool, MEDQUAD_SEED)
        return replace(corpus, anchor_pool=pool, note=corpus.note.split("; anchors")[0] + "; " + note)
    return corpus


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
