"""keff's metric names (``ndcg@10``, ``mrr@10``, ...) and their ir_measures equivalents."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from keff.errors import KeffError

DEFAULT_METRICS: tuple[str, ...] = (
    "ndcg@10",
    "mrr@10",
    "recall@1",
    "recall@5",
    "recall@10",
    "recall@100",
    "map@100",
)
"""Metrics reported for BEIR-style retrieval."""

QA_METRICS: tuple[str, ...] = ("hit@1", "hit@5", "hit@10", "mrr@100")
"""Metrics reported for question -> answer retrieval."""

# keff family -> ir_measures measure name (pytrec_eval definitions).
FAMILIES: dict[str, str] = {
    "ndcg": "nDCG",
    "mrr": "RR",
    "recall": "R",
    "map": "AP",
    "hit": "Success",
}

_PATTERN = re.compile(r"^([a-z]+)@([0-9]+)$")
VALID_FORMS = ", ".join(f"{family}@k" for family in FAMILIES) + " (k a positive integer, lowercase)"


class MetricName(NamedTuple):
    """A parsed metric name: ``family`` in :data:`FAMILIES` and cutoff ``k >= 1``."""

    family: str
    k: int

    @property
    def name(self) -> str:
        """The canonical keff spelling, e.g. ``"ndcg@10"``."""
        return f"{self.family}@{self.k}"

    @property
    def ir_measures_name(self) -> str:
        """The ir_measures spelling, e.g. ``"nDCG@10"``."""
        return f"{FAMILIES[self.family]}@{self.k}"


def parse_metric(name: str) -> MetricName:
    """Parse ``"ndcg@10"`` into ``MetricName("ndcg", 10)``.

    Raises
    ------
    KeffError
        If ``name`` is not one of the valid forms (listed in the message).
    """
    match = _PATTERN.match(name) if isinstance(name, str) else None
    if match is None or match.group(1) not in FAMILIES or int(match.group(2)) < 1:
        raise KeffError(f"unknown metric {name!r}; valid forms are {VALID_FORMS}")
    return MetricName(match.group(1), int(match.group(2)))


def parse_metrics(names: Sequence[str]) -> list[MetricName]:
    """Parse every name (see :func:`parse_metric`); refuse an empty list and duplicates."""
    if isinstance(names, str):
        raise KeffError(f"metrics must be a sequence of names, not the string {names!r}")
    parsed = [parse_metric(n) for n in names]
    if not parsed:
        raise KeffError(f"no metrics requested; valid forms are {VALID_FORMS}")
    seen = [p.name for p in parsed]
    dupes = sorted({n for n in seen if seen.count(n) > 1})
    if dupes:
        raise KeffError(f"metric(s) requested twice: {', '.join(dupes)}")
    return parsed
