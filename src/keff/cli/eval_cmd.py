"""``keff eval`` and ``keff compare``."""

from pathlib import Path

import typer

from keff.cli.console import err, out, print_results_table
from keff.cli.outputs import OVERWRITE, check_output
from keff.errors import DataError

BACKENDS = ("numpy", "faiss")
SAMPLED_POOL_WARNING = (
    "[bold yellow]warning:[/] a sampled evaluation searches only the answers of the sampled groups "
    "({n_pool} of them): with so few candidates scores are inflated, often near perfect, and are NOT "
    "comparable with an evaluation on the whole set"
)


def load_task(data: Path, *, split: str, qa_layout: str, sample_groups: int | None, seed: int):
    """A BEIR folder or a Q/A ``.jsonl`` file (read from exactly ``data``) as a retrieval task,
    and what was read: ``(task, pairs, dataset)``, pairs None for a BEIR folder and dataset None
    for a Q/A file (read once: seeding precomputed vectors needs it again)."""
    from keff.data import load_beir, load_qa, parse_qa_layout
    from keff.tasks import beir_task, qa_task

    if data.is_dir():
        if sample_groups is not None:
            raise typer.BadParameter("--sample-groups applies to Q/A files, not BEIR folders")
        dataset = load_beir(data, splits=[split])
        return beir_task(dataset, split), None, dataset
    if data.is_file() and data.suffix == ".jsonl":
        pairs = load_qa(data, layout=parse_qa_layout(qa_layout))
        return qa_task(pairs, name=data.stem, sample_n_groups=sample_groups, seed=seed), pairs, None
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
    overwrite: bool = OVERWRITE,
    qa_layout: str = typer.Option(
        "auto",
        "--qa-layout",
        "--qa-preset",
        help="Q/A file layout: skills, medquad, auto (from the file's fields), a JSON config, "
        "or fields like 'question=q,answer=a,relevance=topic'.",
    ),
    sample_groups: int | None = typer.Option(
        None, min=1, help="Q/A: evaluate only this many seeded groups (inflates scores; for slow encoders)."
    ),
    precomputed: str = typer.Option(
        "auto",
        help="Folder of precomputed vectors (corpus.npy/queries.npy or questions.npy/answers.npy) to seed "
        "the cache with after a fingerprint check; 'auto': the ones shipped beside shared data; 'none'.",
    ),
    k: int = typer.Option(100, min=1, help="Depth of the retrieved list."),
    seed: int = typer.Option(0, help="Seed for sampling, bootstrap and latency draws."),
    backend: str = typer.Option("numpy", help="Search backend: numpy or faiss."),
) -> None:
    """Score one encoder on one data set with exact search; print a table, optionally write JSON."""
    from keff.encoders import get_encoder
    from keff.eval import write_result

    check_output(out_path, overwrite=overwrite)
    if backend not in BACKENDS:
        raise typer.BadParameter(f"choose from {', '.join(BACKENDS)}", param_hint="--backend")
    task, pairs, dataset = load_task(data, split=split, qa_layout=qa_layout, sample_groups=sample_groups, seed=seed)
    if pairs is not None:
        err.print(f"read {len(pairs)} Q/A pairs from {data} with the {pairs.layout.name} layout")
    enc = get_encoder(encoder)
    folder = _precomputed_folder(precomputed, data, encoder)
    if folder is not None:
        seed_precomputed(enc, folder, dataset=dataset, pairs=pairs)
    from keff.tasks import evaluate_encoder

    result = evaluate_encoder(task, enc, k=k, seed=seed, backend=backend)
    if pairs is not None:
        result.meta["qa_layout"] = pairs.layout.describe()
    print_results_table(
        [result], task.metrics, title=f"{task.name}: {len(task.query_ids)} queries, {len(task.doc_ids)} documents"
    )
    if task.note:
        err.print(f"[yellow]note:[/] {task.note}")
        err.print(SAMPLED_POOL_WARNING.format(n_pool=len(task.doc_ids)))
    if out_path is not None:
        write_result(result, out_path)
        out.print(f"wrote {out_path}")


def _precomputed_folder(spec: str, data: Path, encoder: str) -> Path | None:
    from keff.paths import shipped_vectors

    if spec == "none":
        return None
    if spec == "auto":
        folder = shipped_vectors(data, encoder)
        if folder is not None:
            err.print(
                f"found precomputed {encoder} vectors at {folder}; checking them before use (--precomputed none skips)"
            )
        return folder
    folder = Path(spec).expanduser()
    if not folder.is_dir():
        raise DataError("--precomputed: not a folder (give a folder, 'auto' or 'none')", path=folder)
    return folder


def seed_precomputed(enc, folder: Path, *, dataset=None, pairs=None) -> None:
    """Seed ``enc``'s cache from ``folder`` for a BEIR ``dataset`` or Q/A ``pairs`` and print the
    probe check."""
    from keff.precomputed import seed_beir_vectors, seed_qa_vectors

    reports = seed_beir_vectors(enc, dataset, folder) if dataset is not None else seed_qa_vectors(enc, pairs, folder)
    for r in reports:
        err.print(r.message, markup=False, highlight=False)


def compare_command(
    results: list[Path] = typer.Argument(..., help="Two or more result JSON files (the first is the baseline)."),
    metric: list[str] = typer.Option(None, "--metric", "-m", help="Metric(s) to test (default: the headline one)."),
    seed: int = typer.Option(0, help="Seed for bootstrap and randomisation."),
    resamples: int = typer.Option(10000, min=100, help="Bootstrap / randomisation resamples."),
    out_path: Path | None = typer.Option(None, "--out", help="Write the comparison as markdown here."),
    plot: Path | None = typer.Option(None, help="Write a bar chart PNG here."),
    overwrite: bool = OVERWRITE,
) -> None:
    """Compare systems on the same queries with paired tests (bootstrap CI, randomisation, Wilcoxon, Holm)."""
    from keff.atomic import atomic_write_text
    from keff.eval import compare_systems, comparison_markdown, load_result, markdown_table, plot_results

    if len(results) < 2:
        raise typer.BadParameter("give at least two result files")
    check_output(out_path, overwrite=overwrite)
    check_output(plot, overwrite=overwrite, option="--plot")
    loaded = [load_result(p) for p in results]
    datasets = {r.dataset for r in loaded}
    if len(datasets) > 1:
        raise DataError(f"results are on different data sets: {sorted(datasets)}")
    names = [r.system for r in loaded]
    if len(set(names)) != len(names):
        names = [f"{r.system} ({p.name})" for r, p in zip(loaded, results)]
    metrics = metric or [headline_metric(loaded[0].metrics)]
    for m in metrics:
        lacking = [str(p) for p, r in zip(results, loaded) if m not in r.per_query]
        if lacking:
            known = ", ".join(sorted(loaded[0].per_query)) or "none"
            raise DataError(f"metric {m!r} has no per-query scores in {', '.join(lacking)} (known: {known})")
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
