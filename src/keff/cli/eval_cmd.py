"""``keff eval`` and ``keff compare``."""

from __future__ import annotations

from pathlib import Path

import typer

from keff.cli.console import err, out, print_results_table
from keff.errors import DataError


def load_task(data: Path, *, split: str, qa_preset: str | None, sample_groups: int | None, seed: int):
    """A BEIR folder or a Q/A ``.jsonl`` file as a :class:`~keff.tasks.RetrievalTask`."""
    from keff.data import load_beir, load_qa
    from keff.tasks import beir_task, qa_task

    if data.is_dir():
        return beir_task(load_beir(data, splits=[split]), split)
    if data.is_file() and data.suffix == ".jsonl":
        preset = qa_preset or data.stem.replace("_qa", "")
        pairs = load_qa(data, preset=preset)
        return qa_task(pairs, name=data.stem, sample_n_groups=sample_groups, seed=seed)
    raise DataError("expected a BEIR folder or a Q/A .jsonl file", path=data)


def eval_command(
    data: Path = typer.Option(
        ..., "--data", help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/) or Q/A .jsonl file."
    ),
    encoder: str = typer.Option(
        ..., "--encoder", "-e", help="Registry name (keff models list), model folder or hub name."
    ),
    split: str = typer.Option("test", help="qrels split to evaluate (BEIR)."),
    out_path: Path | None = typer.Option(None, "--out", help="Write the result JSON here."),
    qa_preset: str | None = typer.Option(
        None, help="Q/A file layout: skills or medquad (default: from the file name)."
    ),
    sample_groups: int | None = typer.Option(None, help="Q/A: evaluate only this many seeded groups (slow encoders)."),
    precomputed: Path | None = typer.Option(
        None,
        help="Folder of precomputed vectors (corpus.npy/queries.npy or questions.npy/answers.npy) "
        "to seed the cache with, after a fingerprint check.",
    ),
    k: int = typer.Option(100, help="Depth of the retrieved list."),
    seed: int = typer.Option(0, help="Seed for sampling, bootstrap and latency draws."),
    backend: str = typer.Option("numpy", help="Search backend: numpy or faiss."),
) -> None:
    """Score one encoder on one data set with exact search; print a table, optionally write JSON."""
    from keff.encoders import get_encoder
    from keff.eval import write_result

    task = load_task(data, split=split, qa_preset=qa_preset, sample_groups=sample_groups, seed=seed)
    enc = get_encoder(encoder)
    if precomputed is not None:
        seed_precomputed(enc, data, precomputed, split=split, qa_preset=qa_preset)
    from keff.tasks import evaluate_encoder

    result = evaluate_encoder(task, enc, k=k, seed=seed, backend=backend)
    if task.note:
        err.print(f"[yellow]note:[/] {task.note}")
    print_results_table(
        [result], task.metrics, title=f"{task.name}: {len(task.query_ids)} queries, {len(task.doc_ids)} documents"
    )
    if out_path is not None:
        write_result(result, out_path)
        out.print(f"wrote {out_path}")


def seed_precomputed(enc, data: Path, folder: Path, *, split: str, qa_preset: str | None) -> None:
    """Seed ``enc``'s cache from ``folder`` for the data set at ``data`` and print the probe check."""
    from keff.data import load_beir, load_qa
    from keff.precomputed import seed_beir_vectors, seed_qa_vectors

    if data.is_dir():
        reports = seed_beir_vectors(enc, load_beir(data, splits=[split]), folder)
    else:
        reports = seed_qa_vectors(enc, load_qa(data, preset=qa_preset or data.stem.replace("_qa", "")), folder)
    for r in reports:
        err.print(
            f"seeded {r.n_seeded} vectors after re-encoding {r.n_probed} "
            f"(min cosine {r.min_cosine:.5f}, mean {r.mean_cosine:.5f})"
        )


def compare_command(
    results: list[Path] = typer.Argument(..., help="Two or more result JSON files (the first is the baseline)."),
    metric: list[str] = typer.Option(None, "--metric", "-m", help="Metric(s) to test (default: the headline one)."),
    seed: int = typer.Option(0, help="Seed for bootstrap and randomisation."),
    resamples: int = typer.Option(10000, help="Bootstrap / randomisation resamples."),
    out_path: Path | None = typer.Option(None, "--out", help="Write the comparison as markdown here."),
    plot: Path | None = typer.Option(None, help="Write a bar chart PNG here."),
) -> None:
    """Compare systems on the same queries with paired tests (bootstrap CI, randomisation, Wilcoxon, Holm)."""
    from keff.atomic import atomic_write_text
    from keff.eval import compare_systems, comparison_markdown, load_result, markdown_table, plot_results

    if len(results) < 2:
        raise typer.BadParameter("give at least two result files")
    loaded = [load_result(p) for p in results]
    datasets = {r.dataset for r in loaded}
    if len(datasets) > 1:
        raise DataError(f"results are on different data sets: {sorted(datasets)}")
    names = [r.system for r in loaded]
    if len(set(names)) != len(names):
        names = [f"{r.system} ({p.name})" for r, p in zip(loaded, results)]
    metrics = metric or [headline_metric(loaded[0].metrics)]
    shown = [m for m in loaded[0].metrics]
    print_results_table(loaded, shown, title=f"{loaded[0].dataset}")
    comparisons = []
    for m in metrics:
        per_query = {n: r.per_query[m] for n, r in zip(names, loaded)}
        comparisons += compare_systems(per_query, names[0], metric=m, seed=seed, n_resamples=resamples)
    md = comparison_markdown(comparisons)
    out.print(md)
    if out_path is not None:
        atomic_write_text(out_path, markdown_table(loaded) + "\n\n" + md + "\n")
        out.print(f"wrote {out_path}")
    if plot is not None:
        plot_results(loaded, plot, title=loaded[0].dataset)
        out.print(f"wrote {plot}")


def headline_metric(metrics: dict) -> str:
    """The metric a table leads with: nDCG@10 for BEIR, Hit@1 for Q/A, else the first one."""
    for m in ("ndcg@10", "hit@1"):
        if m in metrics:
            return m
    return next(iter(metrics))
