"""The upgrade study's two entry points: the full run and the re-measure of its latency section."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from keff.encoders import get_encoder
from keff.errors import KeffError
from keff.eval import run_metadata
from keff.maps import Map
from keff.studies.common import log
from keff.studies.upgrade.config import UpgradeConfig
from keff.studies.upgrade.corpora import Encoded, build_corpus, draw_anchors, encode_corpus
from keff.studies.upgrade.experiment import baseline_row, fit_both_directions, latency_maps_of, run_pair, summarize
from keff.studies.upgrade.latency import latency_rows


def encoder_names(config: UpgradeConfig) -> list[str]:
    """Every encoder of the configured pairs, sorted."""
    return sorted({name for pair in config.pairs for name in pair})


def run(config: UpgradeConfig, *, data: Path) -> dict:
    """Measure every corpus, model pair, map, anchor count and seed; time the maps.

    Parameters
    ----------
    config : UpgradeConfig
        What to measure (a quick config is resolved first, see :meth:`UpgradeConfig.resolved`).
    data : Path
        The shared data folder (``beir/``, ``qa/``).

    Returns
    -------
    dict
        JSON-ready: ``benchmark``, ``meta``, ``config``, ``notes`` (per corpus), ``baselines``
        (conditions (a) and (b) per corpus and pair), ``rows`` (every fitted map's metrics),
        ``summary`` (mean and std over seeds), ``comparisons`` (paired tests), ``gaps`` (gap closed
        and regression per mapped system), ``latency``. The
        driver adds ``plot``, the figure's file name.

    Raises
    ------
    KeffError
        When maps are timed but ``latency_anchors`` is not one of the anchor counts.
    """
    config = config.resolved()
    if config.times_latency() and config.latency_anchors not in config.anchors:
        raise KeffError(f"latency_anchors {config.latency_anchors} must be one of the anchors {list(config.anchors)}")
    if not config.times_latency():
        log(f"the maps are not timed: latency corpus {config.latency_corpus} is not among {list(config.corpora)}")
    encoders = encoder_names(config)
    fingerprints = {n: get_encoder(n).fingerprint for n in encoders}
    rows, comparisons, gaps, latency, baselines, notes = [], [], [], [], [], {}
    for key in config.corpora:
        corpus = build_corpus(key, data, config)
        notes[key] = corpus.note
        vecs = {n: encode_corpus(corpus, n) for n in encoders}
        for old, new in config.pairs:
            pair = run_pair(corpus, old, new, vecs, config)
            rows += pair.rows
            comparisons += pair.comparisons
            gaps += pair.gaps
            baselines.append(baseline_row(key, old, new, pair.rows))
            if key == config.latency_corpus:
                latency += latency_rows(pair.latency_maps, vecs, old, new, config)
    return {
        "benchmark": "upgrade",
        "meta": run_metadata(seed=config.seeds[0], encoders=fingerprints),
        "config": config.to_dict(),
        "notes": notes,
        "baselines": baselines,
        "summary": summarize(rows),
        "comparisons": comparisons,
        "gaps": gaps,
        "latency": latency,
        "rows": rows,
    }


def remeasure_latency(config: UpgradeConfig, results: dict, *, data: Path) -> dict:
    """``results`` with its ``latency`` section measured again (and ``latency_meta`` recorded).

    The timed maps are refitted exactly as :func:`run` fits them: ``latency_anchors`` anchors of
    the first seed, drawn from the latency corpus's pool, for every pair and map kind.
    """
    config = config.resolved()
    if config.latency_corpus is None:
        raise KeffError("no latency corpus configured: nothing to re-measure")
    corpus = build_corpus(config.latency_corpus, data, config)
    vecs = {n: encode_corpus(corpus, n) for n in encoder_names(config)}
    seed = config.seeds[0]
    idx = draw_anchors(len(corpus.anchor_pool), config.latency_anchors, seed)
    latency = []
    for old, new in config.pairs:
        latency += latency_rows(refit_latency_maps(config, seed, vecs[old], vecs[new], idx), vecs, old, new, config)
    return {**results, "latency": latency, "latency_meta": run_metadata(seed=seed)}


def refit_latency_maps(
    config: UpgradeConfig, seed: int, vo: Encoded, vn: Encoded, idx: np.ndarray
) -> dict[tuple[str, str], Map]:
    """Every configured map kind fitted both ways on the anchor rows ``idx``, keyed (condition, kind)."""
    maps = {}
    for kind in config.maps:
        fitted, _ = fit_both_directions(kind, config, seed, vo.anchors[idx], vn.anchors[idx])
        maps.update(latency_maps_of(kind, fitted))
    return maps
