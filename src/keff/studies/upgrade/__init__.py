"""Model upgrade without re-embedding: how much of the new model's quality does a map recover?

A corpus is indexed with an old encoder; a team wants a new encoder's quality. For each model
pair (old -> new), corpus, map type, anchor count and seed this measures nDCG@10 of

  (a) the old model everywhere,
  (b) the new model everywhere (the ceiling),
  (c) the old corpus index, queried with new-model queries mapped into the old space,
  (d) the old corpus mapped into the new space, queried natively with the new model,
  (e) (a) and (d) together, the two cosines averaged,
  (h) (a) and (d) weighted, the weight chosen on held-out anchors (never on evaluation queries),

where the maps are fitted on anchor documents embedded by both models (drawn from documents,
never from evaluation queries; seeded; or, with ``anchor_source="generic"``, from the other
shared corpora). Each mapped system also gets the share of the (a)-to-(b) gap it closes and
whether it is significantly below (a). Mapped vectors are L2-normalised before cosine search.
It also times each map's added query latency against plain float32 matrix products of its own
shapes (:meth:`keff.maps.Map.matmul_floor`) and of one dense ``X @ W``, interleaved in one run.

``benchmarks/upgrade.py`` is the driver; ``benchmarks/render.py`` renders the results.
"""

from keff.studies.upgrade.config import MAP_SETTINGS, UpgradeConfig
from keff.studies.upgrade.plot import plot, plot_gap
from keff.studies.upgrade.study import remeasure_latency, run

__all__ = ["MAP_SETTINGS", "UpgradeConfig", "plot", "plot_gap", "remeasure_latency", "run"]
