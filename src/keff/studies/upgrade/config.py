"""The upgrade study's configuration: model pairs, corpora, maps, anchor counts, seeds, timing."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from keff.errors import KeffError

#: (old, new) encoder pairs measured by default.
DEFAULT_PAIRS: tuple[tuple[str, str], ...] = (("minilm", "mpnet"), ("mpnet", "minilm"), ("minilm-l3-onnx", "minilm"))
#: The maps the study reports, and the settings it reports each with (rank and seed come from
#: the configuration, for the kinds that take them). A name is a map kind of the registry unless
#: its settings name one (``"kind"``: a variant of that kind).
MAP_SETTINGS: dict[str, dict[str, Any]] = {
    "procrustes": {"center": True, "scale": True},
    "affine": {},
    "lowrank": {"base": "none"},
    "mlp": {"hidden": 512},
    # the residual MLP over a ridge (affine) base: the identity base of "mlp" between two
    # different models' equal-width spaces leaves the MLP the whole map to learn
    # (at most 40 epochs of 512 rows, patience 3: 10,000 anchors took minutes per fit here)
    "mlp-affine": {"kind": "mlp", "hidden": 512, "base": "linear", "epochs": 40, "patience": 3, "batch_size": 512},
    # ranking loss on the anchor pairs (in-batch InfoNCE), from the Procrustes start
    "contrastive": {"init": "procrustes", "epochs": 30, "patience": 3, "batch_size": 256},
    # local Procrustes: a global Procrustes base, then per-cluster corrections routed by the mapped vector
    "cluster-routed": {"base": "procrustes", "n_clusters": 16, "rank": 32},
}
#: Where anchors come from (see :attr:`UpgradeConfig.anchor_source`).
ANCHOR_SOURCES = ("corpus", "generic", "generic-questions")
#: Seeds and anchor counts of a ``quick`` (smoke) run.
QUICK_SEEDS, QUICK_ANCHORS = (0,), (100, 1000)


@dataclass(frozen=True)
class UpgradeConfig:
    """What the upgrade study measures.

    Attributes
    ----------
    pairs : tuple of (str, str)
        (old, new) encoder names.
    corpora : tuple of str
        ``"medquad"`` and ``"skills"`` are seeded samples of groups of MedQuAD and skills Q/A
        (``qa/medquad.jsonl``, ``qa/skills_qa.jsonl`` of the data folder) with anchors drawn from
        the answers of other groups; any other name is the test split
        of the BEIR folder ``beir/<name>``, with anchors drawn from its corpus.
    maps : tuple of str
        Maps, each a key of :data:`MAP_SETTINGS`.
    anchors : tuple of int
        Anchor counts (a count larger than a corpus's anchor pool is skipped, with a message).
    seeds : tuple of int
        Seeds of the anchor draws (and of the maps that take a seed); results are averaged.
    rank : int
        Rank of the low-rank map.
    medquad_groups, skills_groups : int
        MedQuAD and skills Q/A: groups sampled for evaluation.
    medquad_anchor_pool : int
        Q/A corpora: at most this many answers of the other groups are drawn as the anchor pool.
    anchor_source : {"corpus", "generic", "generic-questions"}
        Where anchors come from: the evaluation corpus's own texts (Q/A corpora: answers of other
        groups), ``generic_pool`` seeded texts of the other shared corpora (WikiText paragraphs,
        MedQuAD and skills answers, SciFact abstracts; never the evaluated one), or as many
        questions of the other shared Q/A corpora (query-kind anchors, encoded as queries).
    generic_pool : int
        Size of the generic anchor pool.
    latency_corpus : str or None
        The corpus whose vectors time the maps (None: no timing); timed only when it is one of
        ``corpora``.
    latency_anchors : int
        The anchor count (one of ``anchors``) whose first-seed maps are timed.
    latency_batch, latency_repeats : int
        Rows per timed batch call, and timed calls per function.
    quick : bool
        A smoke run: seeds and anchors are replaced by :data:`QUICK_SEEDS` and
        :data:`QUICK_ANCHORS` (see :meth:`resolved`).
    """

    pairs: tuple[tuple[str, str], ...] = DEFAULT_PAIRS
    corpora: tuple[str, ...] = ("scifact", "medquad")
    maps: tuple[str, ...] = ("procrustes", "affine", "lowrank", "mlp")
    anchors: tuple[int, ...] = (100, 300, 1000, 3000)
    seeds: tuple[int, ...] = (0, 1, 2)
    rank: int = 128
    medquad_groups: int = 300
    skills_groups: int = 150
    medquad_anchor_pool: int = 3000
    anchor_source: str = "corpus"
    generic_pool: int = 10000
    latency_corpus: str | None = "scifact"
    latency_anchors: int = 1000
    latency_batch: int = 1024
    latency_repeats: int = 31
    quick: bool = False

    def __post_init__(self) -> None:
        if not self.pairs or not all(len(pair) == 2 for pair in self.pairs):
            raise KeffError(f"pairs must be (old, new) encoder names; got {self.pairs!r}")
        unknown = sorted(set(self.maps) - set(MAP_SETTINGS))
        if not self.maps or unknown:
            raise KeffError(f"maps must be among {', '.join(MAP_SETTINGS)}; got {list(self.maps)}")
        if self.anchor_source not in ANCHOR_SOURCES:
            raise KeffError(f"anchor_source must be one of {', '.join(ANCHOR_SOURCES)}; got {self.anchor_source!r}")
        if not self.corpora or not self.seeds or not self.anchors or min(self.anchors) < 2:
            raise KeffError("corpora, seeds and anchors must be non-empty, with at least 2 anchors")

    def resolved(self) -> UpgradeConfig:
        """The configuration a run uses: a quick run's seeds and anchors replaced."""
        return replace(self, seeds=QUICK_SEEDS, anchors=QUICK_ANCHORS) if self.quick else self

    def times_latency(self) -> bool:
        """Whether a run times the maps (the latency corpus is one of the corpora)."""
        return self.latency_corpus is not None and self.latency_corpus in self.corpora

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: tuples (the pairs too) as lists."""
        return {k: _listed(v) for k, v in asdict(self).items()}


def _listed(value: Any) -> Any:
    return [_listed(v) for v in value] if isinstance(value, tuple) else value
