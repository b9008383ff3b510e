"""``keff demo``: the main job, end to end, in a few minutes."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import typer

from keff.cli.console import err, out, print_results_table
from keff.cli.outputs import OVERWRITE, check_output_dir

DEFAULT_ENCODERS = ("minilm", "mpnet", "minilm-l3-onnx")


def sample_corpus_dir() -> Path:
    """The two-domain sample corpus shipped inside the package."""
    return Path(str(resources.files("keff.data").joinpath("sample", "two_domains")))


def resolve_demo_data(data: Path | None) -> Path:
    """The BEIR folder the demo runs on."""
    from keff.paths import find_shared_data

    if data is not None:
        return data
    shared = find_shared_data()
    if shared is not None and (shared / "beir" / "scifact").is_dir():
        err.print(f"using the shared real data at {shared}")
        return shared / "beir" / "scifact"
    err.print(
        "[yellow]no real data found[/] (set KEFF_DATA_DIR or pass --data): running on keff's tiny "
        "two-domain sample corpus, which is far too small for claims.\n"
        "Fetch a real set with:  keff data fetch beir scifact --to ~/data && keff demo --data ~/data/scifact"
    )
    return sample_corpus_dir()


def demo_command(
    data: Path | None = typer.Option(
        None, "--data", help="BEIR folder (default: shared SciFact, else the shipped sample)."
    ),
    encoders: str = typer.Option(",".join(DEFAULT_ENCODERS), help="Comma-separated encoders to compare."),
    split: str = typer.Option("test", help="qrels split to evaluate."),
    out_dir: Path | None = typer.Option(
        None, "--out", help="Folder for the results (default: the cache's demo/NAME folder, replaced on each run)."
    ),
    overwrite: bool = OVERWRITE,
    seed: int = typer.Option(0, help="Seed for bootstrap, randomisation and latency draws."),
) -> None:
    """Compare real encoders on a retrieval set: metrics, paired significance, latency, report files."""
    from keff.atomic import atomic_write_text
    from keff.data import load_beir
    from keff.encoders import get_encoder
    from keff.errors import ModelNotAvailable
    from keff.eval import compare_systems, comparison_markdown, markdown_table, plot_results, write_result
    from keff.paths import cache_dir, shipped_vectors
    from keff.precomputed import seed_beir_vectors
    from keff.tasks import beir_task, evaluate_encoder

    names = [e.strip() for e in encoders.split(",") if e.strip()]
    if not names:
        raise typer.BadParameter("name at least one encoder", param_hint="--encoders")
    outputs = [f"{n}.json" for n in names] + ["report.md", "report.png"]
    if out_dir is not None:
        check_output_dir(out_dir, outputs, overwrite=overwrite)
    folder = resolve_demo_data(data)
    dataset = load_beir(folder)
    task = beir_task(dataset, split)
    if out_dir is None:  # keff's own folder: each run replaces the previous one's files
        out_dir = check_output_dir(cache_dir() / "demo" / dataset.name, outputs, overwrite=True)
    out.rule(f"keff demo: {task.name}, {len(task.query_ids)} queries over {len(task.doc_ids)} documents")

    results, first_encoder = [], None
    for name in names:
        try:
            enc = get_encoder(name)
        except ModelNotAvailable as exc:
            err.print(f"[yellow]skipping {name}:[/] {exc}")
            continue
        vectors = shipped_vectors(folder, name)
        if vectors is not None:
            for report in seed_beir_vectors(enc, dataset, vectors):
                err.print(f"{name}: {report.message}", markup=False, highlight=False)
        err.print(f"{name}: encoding (cached vectors are reused) and searching...")
        first_encoder = first_encoder or enc
        result = evaluate_encoder(task, enc, seed=seed)
        write_result(result, out_dir / f"{name}.json")
        results.append(result)
    if not results:
        raise ModelNotAvailable("no encoder could be loaded; install one with: pip install 'keff[st,onnx]'")

    print_results_table(results, task.metrics, title="exact search, cosine, untouched encoders")
    if "train" in dataset.qrels and split != "train":
        out.print(split_checks(dataset, split, first_encoder))
    md = markdown_table(results)
    if len(results) > 1:
        best = max(results, key=lambda r: r.metrics["ndcg@10"])
        per_query = {r.system: r.per_query["ndcg@10"] for r in results}
        comparisons = compare_systems(per_query, best.system, metric="ndcg@10", seed=seed)
        cmp_md = comparison_markdown(comparisons)
        out.print(f"\nPaired tests against the best encoder ({best.system}), nDCG@10, Holm-corrected:\n")
        out.print(cmp_md)
        md += "\n\n" + cmp_md
    atomic_write_text(out_dir / "report.md", md + "\n")
    plot_results(results, out_dir / "report.png", title=task.name)
    out.print(f"\nwrote {out_dir}/report.md, report.png and one JSON per encoder")
    if out_dir.is_relative_to(cache_dir()):
        out.print("(keff's demo folder: the next run replaces these files; --out DIR keeps them elsewhere)")


def split_checks(dataset, split: str, encoder) -> str:
    """One paragraph on whether the train queries leak into ``split`` and how alike the sides are."""
    from keff.data import leak_check, split_parity

    train_ids, train_texts = dataset.split_queries("train")
    eval_ids, eval_texts = dataset.split_queries(split)
    leak = leak_check(
        train_texts,
        eval_texts,
        a_vecs=encoder.encode(train_texts, kind="query"),
        b_vecs=encoder.encode(eval_texts, kind="query"),
    )
    parity = split_parity([len(t.split()) for t in train_texts], [len(t.split()) for t in eval_texts])
    verdict = "clean" if leak.clean else "LEAKS"
    meaning = (
        ""
        if leak.clean
        else f" Some {split} queries repeat or nearly repeat train queries. Nothing in this demo is fitted on "
        "train queries, so these scores are not inflated; a model fitted on the train split would have "
        f"seen them, so judge such a model on the {split} queries without a train twin."
    )
    return (
        f"\nSplit check, train ({len(train_ids)} queries) vs {split} ({len(eval_ids)}): {verdict}: "
        f"{leak.exact_text_overlap} identical texts, {leak.near_duplicates} near-duplicates "
        f"(cosine >= 0.98 with {encoder.name}).{meaning} Query length in words: train median "
        f"{parity['train']['quantiles']['50']:.0f}, {split} median {parity['eval']['quantiles']['50']:.0f}, "
        f"KS p = {parity['ks_pvalue']:.2g}."
    )
