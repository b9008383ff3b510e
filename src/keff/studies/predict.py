"""Next-vector prediction on held-out documents: baselines vs small trained models, order gates.

Per data set (WikiText paragraphs; SciFact abstracts and MedQuAD pages as sentences, seeded
samples of documents where all would take too long to encode here) and encoder: units are embedded once (through the
cache), documents split train/val/test (seeded, disjoint; windows touching a unit text repeated
across the line are dropped and counted), windows of k context units cut, baselines fitted on
train windows (ridge's alpha and kNN's k chosen on validation), trained models fitted on train
windows (early stopping on documents they hold out of those), everything scored on the test
windows: pool of every test unit without the window's context, rank within the document,
cosine, margin over the previous unit; paired bootstrap CIs and randomisation tests of every
model against the strongest baseline. Order gates: offset sweep, shuffled and reversed context,
a two-step rollout. Latency: p50/p95 of one prediction (batch 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from keff.atomic import atomic_path
from keff.data import load_beir
from keff.data.sequences import (
    Sequences,
    qa_page_sequences,
    sample_documents,
    sentence_sequences,
    wikitext_sequences,
)
from keff.encoders import get_encoder
from keff.eval import run_metadata
from keff.predict.evaluate import HEAD, MODELS, evaluate_sequences
from keff.studies.common import log


@dataclass
class PredictConfig:
    """What the study runs."""

    seed: int = 0
    k: int = 3
    encoders: tuple[str, ...] = ("minilm",)
    scifact_docs: int = 1500
    medquad_pages: int = 400
    models: dict[str, dict[str, Any]] = field(default_factory=lambda: dict(MODELS))
    quick: bool = False


def load_sets(data: Path, config: PredictConfig) -> list[Sequences]:
    sets = [wikitext_sequences(data / "sequences" / "wikitext_test.raw")]
    if not config.quick:
        ds = load_beir(data / "beir" / "scifact")
        n = min(config.scifact_docs, len(ds.doc_ids))
        rows = np.sort(np.random.default_rng(config.seed).choice(len(ds.doc_ids), n, replace=False))
        sets.append(sentence_sequences("scifact", [ds.doc_ids[i] for i in rows], [ds.doc_texts[i] for i in rows]))
        pages = qa_page_sequences(data / "qa" / "medquad.jsonl")
        sets.append(sample_documents(pages, config.medquad_pages, seed=config.seed))
    return sets


def evaluate_set(seq: Sequences, encoder: str, config: PredictConfig) -> dict:
    """One data set with one encoder (units embedded through the cache)."""
    texts, _, _ = seq.flat()
    log(f"{seq.name} / {encoder}: encoding {len(texts):,} {seq.unit}s of {len(seq.doc_ids)} documents")
    V = get_encoder(encoder).encode(texts, kind="doc")
    result = evaluate_sequences(seq, V, k=config.k, models=config.models, seed=config.seed, log=log)
    return {**result, "encoder": encoder}


def run(config: PredictConfig, *, data: Path) -> dict:
    results = [evaluate_set(seq, enc, config) for seq in load_sets(data, config) for enc in config.encoders]
    return {"benchmark": "predict", "meta": run_metadata(seed=config.seed), "k": config.k, "results": results}


def plot(results: list[dict], path: Path) -> Path:
    """hit@5 in the pool (with CI) of every row, one panel per set."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6 * len(results), 3.4), dpi=110)
    FigureCanvasAgg(fig)
    for i, res in enumerate(results):
        ax = fig.add_subplot(1, len(results), i + 1)
        names = list(res["rows"])
        means = [res["rows"][n][HEAD]["mean"] for n in names]
        err = np.array([[m - res["rows"][n][HEAD]["ci"][0], res["rows"][n][HEAD]["ci"][1] - m]
                        for m, n in zip(means, names)]).T  # fmt: skip
        colours = ["#7f7f7f" if n in res["rows"] and n not in res["train_seconds"] else "#1f77b4" for n in names]
        ax.barh(range(len(names)), means, xerr=err, color=colours)
        ax.set_yticks(range(len(names)), names, fontsize=7)
        ax.set_title(f"{res['dataset']} ({res['unit']}s) / {res['encoder']}: {HEAD} in the pool", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)
