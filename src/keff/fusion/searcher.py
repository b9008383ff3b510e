"""Search a corpus with several specialists at once, fusing them per query.

Documents are embedded once per specialist (through keff's disk cache) and kept in
per-specialist indexes; a query is encoded by every specialist, each specialist's sigma^2 of it
gives its weight, and the per-specialist cosines are combined (no vector averaging across
frames, so this works with or without alignment).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from keff.errors import KeffError
from keff.fusion.methods import WEIGHTINGS, fusion_weights
from keff.fusion.specialist import Specialist
from keff.fusion.vector import weighted_scores
from keff.index.numpy_backend import topk_rows


@dataclass
class Hit:
    doc_id: str
    score: float
    text: str


class FusedSearcher:
    """Per-specialist indexes over one corpus, queried with per-query fusion weights."""

    def __init__(self, specialists: Sequence[Specialist], doc_ids: Sequence[str], doc_texts: Sequence[str]):
        if not specialists:
            raise KeffError("give at least one specialist")
        self.specialists = list(specialists)
        self.encoders = [s.load_encoder() for s in self.specialists]
        self.doc_ids, self.doc_texts = list(doc_ids), list(doc_texts)
        self.docs = [enc.encode(self.doc_texts, kind="doc") for enc in self.encoders]

    def weights(self, texts: Sequence[str], strategy: str = "kalman") -> tuple[np.ndarray, list[np.ndarray]]:
        """(S, n) fusion weights of the queries and each specialist's own query vectors."""
        if strategy not in WEIGHTINGS:
            raise KeffError(f"unknown strategy {strategy!r} (choose from {', '.join(WEIGHTINGS)})")
        own = [enc.encode(list(texts), kind="query") for enc in self.encoders]
        var = np.stack([s.variance(s.to_frame(q)) for s, q in zip(self.specialists, own)])
        return fusion_weights(var, strategy), own

    def search(self, texts: Sequence[str], k: int = 10, strategy: str = "kalman") -> tuple[list[list[Hit]], np.ndarray]:
        """Top-``k`` documents per query, and the (S, n) weights used."""
        w, own = self.weights(texts, strategy)
        scores = weighted_scores(np.stack([q @ d.T for q, d in zip(own, self.docs)]), w)
        top, idx = topk_rows(scores, min(k, len(self.doc_ids)))
        hits = [[Hit(self.doc_ids[j], float(s), self.doc_texts[j]) for s, j in zip(ts, ti)] for ts, ti in zip(top, idx)]
        return hits, w
