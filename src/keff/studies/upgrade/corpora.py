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
    """One evaluation corpus and the pool its anchor texts are drawn from (``anchor_kind``: how
    the anchors are encoded, ``"doc"`` or ``"query"`` for question anchors)."""

    key: str
    task: RetrievalTask
    anchor_pool: list[str]
    note: str
    anchor_kind: str = "doc"


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


#: The Q/A corpora of the data folder's ``qa/`` (evaluated on a seeded sample of groups).
QA_FILES = {"medquad": "medquad.jsonl", "skills": "skills_qa.jsonl"}
QA_TITLES = {"medquad": "MedQuAD", "skills": "Skills Q/A"}


def qa_corpus(data: Path, name: str, n_groups: int, pool_size: int, seed: int) -> Corpus:
    """``n_groups`` seeded groups of the Q/A corpus ``name`` (questions against their answers);
    anchors are up to ``pool_size`` distinct answers of the other groups."""
    pairs = load_qa(data / "qa" / QA_FILES[name], preset=name)
    task = replace(qa_task(pairs, f"{name}_sample", sample_n_groups=n_groups, seed=seed), metrics=METRICS)
    inside = set(sample_groups(pairs.groups, n_groups, seed=seed).tolist())
    outside = sorted({pairs.answers[i] for i in range(len(pairs.ids)) if i not in inside})
    rng = np.random.default_rng(seed)
    pool = [outside[i] for i in sorted(rng.choice(len(outside), size=min(pool_size, len(outside)), replace=False))]
    note = (
        f"{QA_TITLES[name]} {task.note}: {len(task.query_ids)} questions against {len(task.doc_ids)} answers; "
        f"anchors drawn from {len(pool)} answers of other groups (seed {seed})"
    )
    return Corpus(name, task, pool, note)


#: The shared corpora generic anchors are drawn from (a corpus never lends anchors to its own evaluation).
GENERIC_SOURCES = ("wikitext", "medquad", "skills", "scifact")
#: The shared corpora that hold questions (generic question anchors, for mapping queries).
QUESTION_SOURCES = ("medquad", "skills")


def generic_texts(data: Path, source: str, questions: bool = False) -> list[str] | None:
    """The distinct texts of one shared corpus (WikiText paragraphs, MedQuAD or skills answers,
    SciFact abstracts; with ``questions``, MedQuAD or skills questions), or None when its file is
    not in ``data`` (or it holds no questions)."""
    if questions and source not in QUESTION_SOURCES:
        return None
    if source == "wikitext":
        from keff.data.sequences import wikitext_sequences

        path = data / "sequences" / "wikitext_test.raw"
        if not path.is_file():
            return None
        texts = [u for units in wikitext_sequences(path).units for u in units]
    elif source in QA_FILES:
        path = data / "qa" / QA_FILES[source]
        if not path.is_file():
            return None
        pairs = load_qa(path, preset=source)
        texts = pairs.questions if questions else pairs.answers
    else:
        if not (data / "beir" / source / "corpus.jsonl").is_file():
            return None
        texts = list(load_beir(data / "beir" / source, splits=[]).doc_texts)
    return list(dict.fromkeys(texts))


def generic_pool(data: Path, exclude: str, size: int, seed: int, questions: bool = False) -> tuple[list[str], str]:
    """A seeded pool of ``size`` distinct texts from the shared corpora other than ``exclude``
    (unlabelled text a user has anyway, not the evaluation corpus; with ``questions``, their
    questions), and a note of its make-up (naming the sources absent from ``data``).

    Raises
    ------
    DataError
        When no source is present.
    """
    sources = QUESTION_SOURCES if questions else GENERIC_SOURCES
    found = {src: generic_texts(data, src, questions) for src in sources if src != exclude}
    by_source = {src: texts for src, texts in found.items() if texts}
    what = "question" if questions else "anchor"
    if not by_source:
        raise DataError(f"no generic {what} source in {data}: looked for {', '.join(found)}")
    texts = list(dict.fromkeys(t for src in by_source.values() for t in src))
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(texts), size=min(size, len(texts)), replace=False))
    pool = [texts[i] for i in rows]
    chosen = set(pool)
    parts = ", ".join(f"{sum(t in chosen for t in src):,} {name}" for name, src in by_source.items())
    absent = [src for src, texts in found.items() if not texts]
    missing = f"; absent: {', '.join(absent)}" if absent else ""
    kind = "generic question anchors" if questions else "generic anchors"
    return pool, f"{len(pool):,} {kind} ({parts}{missing}; seed {seed})"


def build_corpus(key: str, data: Path, config: UpgradeConfig) -> Corpus:
    """The corpus named ``key`` (see :attr:`UpgradeConfig.corpora`), with its own anchor pool or,
    when ``config.anchor_source`` is ``"generic"`` (``"generic-questions"``), a pool of the other
    shared corpora's texts (questions)."""
    if key in QA_FILES:
        groups = config.medquad_groups if key == "medquad" else config.skills_groups
        corpus = qa_corpus(data, key, groups, config.medquad_anchor_pool, MEDQUAD_SEED)
    else:
        corpus = beir_corpus(data, key)
    if config.anchor_source != "corpus":
        questions = config.anchor_source == "generic-questions"
        pool, note = generic_pool(data, key, config.generic_pool, MEDQUAD_SEED, questions=questions)
        return replace(corpus, anchor_pool=pool, note=corpus.note.split("; anchors")[0] + "; " + note,
                       anchor_kind="query" if questions else "doc")  # fmt: skip
    return corpus


def encode_corpus(corpus: Corpus, name: str) -> Encoded:
    """The corpus's queries, documents and anchor pool encoded by ``name`` (cached vectors reused)."""
    enc = get_encoder(name)
    log(f"encoding {corpus.key} with {name} (cached vectors are reused)")
    return Encoded(
        queries=enc.encode(corpus.task.query_texts, kind="query"),
        docs=enc.encode(corpus.task.doc_texts, kind="doc"),
        anchors=enc.encode(corpus.anchor_pool, kind=corpus.anchor_kind),
    )


def draw_anchors(pool_size: int, n_anchors: int, seed: int) -> np.ndarray:
    """Sorted row indices of ``n_anchors`` anchors drawn from a pool, seeded."""
    return np.sort(np.random.default_rng(seed).choice(pool_size, n_anchors, replace=False))
