"""The fusion study's mixed-domain retrieval set, built from the shared real data: science,
medicine, software.

One corpus holds the SciFact abstracts, the answers of a seeded sample of MedQuAD groups and every
skills answer; queries come from all three domains, split by group so that no group (shared
answer, document, focus or cluster) sits on two sides:

- **train** pairs (query, relevant document text) per domain, for fine-tuning specialists and
  fitting alignment maps: SciFact train claims not in val; MedQuAD pairs of groups outside the
  evaluation sample; skills pairs of the train groups;
- **val** queries (with judgements) for calibration, gates, thresholds and weights;
- **test** queries, used only for the final numbers.

Document and query ids are prefixed by their domain (``scifact:``, ``medquad:``, ``skills:``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from keff.data import key_components
from keff.data.beir import load_beir
from keff.data.leakage import repeats
from keff.data.qa import QAPairs, load_qa
from keff.data.qa_task import qa_retrieval_task
from keff.data.splits import grouped_split, sample_groups

DOMAINS = ("scifact", "medquad", "skills")


@dataclass
class QuerySet:
    """Queries of one split across domains, judged against the mixed corpus."""

    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)

    def add(self, domain: str, ids, texts, qrels) -> None:
        self.ids += [f"{domain}:{q}" for q in ids]
        self.texts += list(texts)
        self.domains += [domain] * len(ids)
        for q in ids:
            self.qrels[f"{domain}:{q}"] = {f"{domain}:{d}": r for d, r in qrels[q].items()}

    def select(self, domain: str) -> QuerySet:
        """The queries of one domain (a per-domain slice)."""
        out = QuerySet()
        keep = [i for i, d in enumerate(self.domains) if d == domain]
        out.ids = [self.ids[i] for i in keep]
        out.texts = [self.texts[i] for i in keep]
        out.domains = [domain] * len(keep)
        out.qrels = {q: self.qrels[q] for q in out.ids}
        return out


@dataclass
class MixedDomain:
    """The mixed corpus, its val/test queries and per-domain training pairs."""

    doc_ids: list[str]
    doc_texts: list[str]
    doc_domains: list[str]
    val: QuerySet
    test: QuerySet
    train_pairs: dict[str, list[tuple[str, str]]]
    notes: dict[str, str]
    data_hashes: dict[str, str]

    def summary(self) -> dict:
        count = {d: self.doc_domains.count(d) for d in DOMAINS}
        return {
            "docs": count,
            "val_queries": {d: self.val.domains.count(d) for d in DOMAINS},
            "test_queries": {d: self.test.domains.count(d) for d in DOMAINS},
            "train_pairs": {d: len(p) for d, p in self.train_pairs.items()},
            "notes": self.notes,
        }


def _scifact(root: Path, mixed: MixedDomain, val_frac: float, seed: int) -> None:
    ds = load_beir(root)
    mixed.doc_ids += [f"scifact:{d}" for d in ds.doc_ids]
    mixed.doc_texts += ds.doc_texts
    mixed.doc_domains += ["scifact"] * len(ds.doc_ids)
    test_ids, test_texts = ds.split_queries("test")
    mixed.test.add("scifact", test_ids, test_texts, ds.qrels["test"])
    train_ids, train_texts = ds.split_queries("train")
    # SciFact's own train split repeats a few test claims word for word: drop them
    kept = [i for i, rep in enumerate(repeats(train_texts, test_texts)) if not rep]
    dropped = len(train_ids) - len(kept)
    train_ids, train_texts = [train_ids[i] for i in kept], [train_texts[i] for i in kept]
    # claims judged against a shared abstract form one group: never on both sides
    groups = key_components([[f"doc={d}" for d in ds.qrels["train"][q]] for q in train_ids])
    split = grouped_split(groups, val_frac=val_frac, test_frac=0.0, seed=seed)
    mixed.val.add("scifact", [train_ids[i] for i in split.val], [train_texts[i] for i in split.val], ds.qrels["train"])
    doc_text = dict(zip(ds.doc_ids, ds.doc_texts))
    mixed.train_pairs["scifact"] = [
        (train_texts[i], doc_text[d]) for i in split.train for d, r in ds.qrels["train"][train_ids[i]].items() if r > 0
    ]
    mixed.notes["scifact"] = (
        f"all {len(ds.doc_ids)} abstracts; test = the {len(test_ids)} SciFact test claims; the {len(train_ids)} train "
        f"claims ({dropped} identical to a test claim dropped) split by shared abstract into "
        f"{split.val.size} val and {split.train.size} train (seed {seed})"
    )
    mixed.data_hashes.update({f"scifact/{k}": v for k, v in ds.file_hashes.items()})


def _qa_domain(
    domain: str,
    pairs: QAPairs,
    rows: np.ndarray,
    train_rows: np.ndarray,
    split_groups: np.ndarray,
    mixed: MixedDomain,
    val_frac: float,
    seed: int,
) -> str:
    """Put the answers of ``rows`` in the corpus, split their questions by group into val and
    test, and take training pairs from ``train_rows``."""
    task = qa_retrieval_task(pairs, query_rows=rows, pool_rows=rows)
    mixed.doc_ids += [f"{domain}:{p}" for p in task.pool_ids]
    mixed.doc_texts += task.pool_texts
    mixed.doc_domains += [domain] * len(task.pool_ids)
    split = grouped_split(split_groups, val_frac=val_frac, test_frac=0.0, seed=seed)
    # grouped_split with test_frac=0 gives (train, val): its "train" part is our test part
    for part, target in ((split.val, mixed.val), (split.train, mixed.test)):
        ids = [task.query_ids[i] for i in part]
        target.add(domain, ids, [task.query_texts[i] for i in part], task.qrels)
    mixed.train_pairs[domain] = [(pairs.questions[i], pairs.answers[i]) for i in train_rows]
    mixed.data_hashes[f"{domain}/{pairs.path.name}"] = pairs.sha256
    return f"{len(task.pool_ids)} answers; {split.val.size} val and {split.train.size} test questions"


def build_mixed_domain(
    data: str | Path,
    *,
    medquad_groups: int = 300,
    val_frac: float = 0.3,
    skills_test_frac: float = 0.35,
    seed: int = 0,
) -> MixedDomain:
    """Build the mixed-domain set from the shared data folder (holding ``beir/``, ``qa/``).

    Parameters
    ----------
    data : path
        The shared data folder.
    medquad_groups : int
        MedQuAD groups (seeded) whose answers join the corpus and whose questions are evaluated;
        pairs of every other group are training pairs.
    val_frac : float
        Share of each domain's evaluation questions (SciFact: of its train claims) held out as
        validation, by group.
    skills_test_frac : float
        Share of the skills pairs (by group) whose questions are evaluated; of those, ``val_frac``
        go to validation; the rest are training pairs.
    seed : int
        Seed of every draw and split.
    """

    data = Path(data)
    mixed = MixedDomain([], [], [], QuerySet(), QuerySet(), {}, {}, {})
    _scifact(data / "beir" / "scifact", mixed, val_frac, seed)

    med = load_qa(data / "qa" / "medquad.jsonl", preset="medquad")
    rows = sample_groups(med.groups, medquad_groups, seed=seed)
    inside = np.zeros(len(med.ids), dtype=bool)
    inside[rows] = True
    note = _qa_domain("medquad", med, rows, np.flatnonzero(~inside), med.groups[rows], mixed, val_frac, seed)
    n_groups = int(np.unique(med.groups).size)
    mixed.notes["medquad"] = (
        f"{medquad_groups} of {n_groups} groups (seed {seed}): {note}; train pairs from the other groups"
    )

    skills = load_qa(data / "qa" / "skills_qa.jsonl", preset="skills")
    split = grouped_split(skills.groups, val_frac=0.0, test_frac=skills_test_frac, seed=seed)
    note = _qa_domain("skills", skills, split.test, split.train, skills.groups[split.test], mixed, val_frac, seed)
    mixed.notes["skills"] = (
        f"{split.test.size} pairs (by group, seed {seed}) evaluated: {note}; the other {split.train.size} pairs train "
        "(their answers are not in the corpus)"
    )
    return mixed
