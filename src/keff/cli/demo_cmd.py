"""``keff demo``: the main job, end to end, in a few minutes."""

from pathlib import Path

import typer

from keff.cli.console import err, out, print_results_table
from keff.cli.outputs import OVERWRITE, check_output_dir

DEFAULT_ENCODERS = ("minilm", "mpnet", "minilm-l3-onnx")


def sample_corpus_dir() -> Path:
    """The two-domain sample corpus shipped inside the package."""
    from importlib import resources

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
    index: bool = typer.Option(
        True,
        "--index/--no-index",
        help="Also index the documents with the first encoder and attach a query map "
        "fitted on the train queries (keff index), showing one query before and after.",
    ),
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
    outputs = [f"{n}.json" for n in names] + ["report.md", "report.png"] + (["index"] if index else [])
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
        out.print(split_checks(dataset, split, first_encoder, fitted_below=index))
    md = markdown_table(results)
    if len(results) > 1:
        best = max(results, key=lambda r: r.metrics["ndcg@10"])
        per_query = {r.system: r.per_query["ndcg@10"] for r in results}
        comparisons = compare_systems(per_query, best.system, metric="ndcg@10", seed=seed)
        cmp_md = comparison_markdown(comparisons)
        out.print(f"\nPaired tests against the best encoder ({best.system}), nDCG@10, Holm-corrected:\n")
        out.print(cmp_md)
        md += "\n\n" + cmp_md
    if index:
        md += index_step(folder, dataset, split, first_encoder.name, out_dir / "index", seed=seed)
    atomic_write_text(out_dir / "report.md", md + "\n")
    plot_results(results, out_dir / "report.png", title=task.name)
    out.print(f"\nwrote {out_dir}/report.md, report.png and one JSON per encoder")
    if out_dir.is_relative_to(cache_dir()):
        out.print("(keff's demo folder: the next run replaces these files; --out DIR keeps them elsewhere)")


def split_checks(dataset, split: str, encoder, *, fitted_below: bool = False) -> str:
    """One paragraph on whether the train queries leak into ``split`` and how alike the sides are
    (``fitted_below``: the demo goes on to fit a query map on the train queries)."""
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
        else f" Some {split} queries repeat or nearly repeat train queries. Nothing in "
        + ("the comparison above" if fitted_below else "this demo")
        + " is fitted on train queries, so these scores are not inflated; a model fitted on the train split"
        + (" (like the index's query map below)" if fitted_below else "")
        + f" would have seen them, so judge such a model on the {split} queries without a train twin."
    )
    return (
        f"\nSplit check, train ({len(train_ids)} queries) vs {split} ({len(eval_ids)}): {verdict}: "
        f"{leak.exact_text_overlap} identical texts, {leak.near_duplicates} near-duplicates "
        f"(cosine >= 0.98 with {encoder.name}).{meaning} Query length in words: train median "
        f"{parity['train']['quantiles']['50']:.0f}, {split} median {parity['eval']['quantiles']['50']:.0f}, "
        f"KS p = {parity['ks_pvalue']:.2g}."
    )


#: The query map the demo fits on the train queries: on SciFact it helps test claims whose abstract a
#: train claim also cites and, unlike the linear maps, costs nothing on the others (BENCHMARKS.md).
DEMO_MAP = "contrastive"


def index_step(folder: Path, dataset, split: str, encoder: str, path: Path, *, seed: int = 0) -> str:
    """Index ``dataset`` with ``encoder``, attach a query map fitted on its train queries, and show the
    evaluation and one query's results before and after; returns the report's markdown section."""
    from rich.table import Table

    from keff.cli.index_cmd import attach_fitted
    from keff.docindex import Index, read_documents
    from keff.docindex.evaluate import evaluate_index, fit_query_map
    from keff.errors import MissingExtra
    from keff.eval import markdown_table
    from keff.tasks import beir_task

    out.rule("Your own documents: keff index with a learned query map")
    if "train" not in dataset.qrels or split == "train":
        out.print(f"(skipped: {folder.name} has no train queries apart from the {split} split to fit a map on)")
        return ""
    docs = read_documents(folder)
    ix = Index.build(path, docs, [encoder], overwrite=True)
    out.print(f"built {ix.root}: {ix.n_docs:,} documents, {encoder}, exact search (cached vectors reused)")
    task, train = beir_task(dataset, split), beir_task(dataset, "train")
    before = evaluate_index(ix, task, system=f"{encoder} index", latency_queries=0)
    err.print(f"fitting a {DEMO_MAP} query map on the {len(train.query_ids)} train queries...")
    try:
        m, provenance = fit_query_map(ix, train, method=DEMO_MAP, seed=seed)
    except MissingExtra as exc:
        out.print(f"(skipped the map: {exc})")
        return ""
    attach_fitted(ix, lambda p: m.save(p, meta=provenance), DEMO_MAP, True, None)
    after = evaluate_index(ix, task, system=f"{encoder} index + {DEMO_MAP} map", latency_queries=0)
    out.print(f"attached the map (fitted on {provenance['n_pairs']} train query-document pairs, never on {split} "
              f"queries): keff index info {ix.root}")  # fmt: skip
    print_results_table([before, after], task.metrics, title=f"keff index eval on {task.name}")
    summary, seen = seen_slices(dataset, split, before, after)
    out.print(summary)
    b, a = before.per_query["ndcg@10"], after.per_query["ndcg@10"]
    unseen = [q for q in b if q not in seen and a[q] > b[q]]
    qid = max(unseen or list(b), key=lambda q: a[q] - b[q])
    if a[qid] > b[qid]:
        among = "whose relevant documents no train query has " if unseen else ""
        what = f"The {split} query {among}the map helps most (nDCG@10 {b[qid]:.2f} -> {a[qid]:.2f})"
    else:
        lowered = sum(1 for q in b if a[q] < b[q])
        qid = next(iter(b))
        what = f"The map raises no {split} query's nDCG@10 ({lowered} lowered); the first {split} query"
    text = dict(zip(task.query_ids, task.query_texts))[qid]
    out.print(f"\n{what}: {text!r}")
    relevant = {d for d, r in task.qrels.get(qid, {}).items() if r > 0}
    for title, hits in (("before", ix.hits(*ix.search_vectors(ix.encode_queries([text]), 3))[0]),
                        (f"after (with the {DEMO_MAP} map)", ix.search([text], 3)[0])):  # fmt: skip
        table = Table(title=title)
        for col in ("rank", "score", "id", "relevant", "text"):
            table.add_column(col)
        for rank, h in enumerate(hits, start=1):
            table.add_row(str(rank), f"{h.score:.3f}", h.id, "yes" if h.id in relevant else "", h.text[:80])
        out.print(table)
    out.print(f"Search it yourself: keff query {ix.root} \"your question\"  (keff index detach {ix.root} {DEMO_MAP} "
              "removes the map)")  # fmt: skip
    return "\n\n## keff index with a query map fitted on the train queries\n\n" + markdown_table([before, after]) + \
        "\n\n" + summary  # fmt: skip


def seen_slices(dataset, split: str, before, after) -> tuple[str, set[str]]:
    """nDCG@10 before and after, apart for the queries whose relevant documents a train query also has
    (one line), and those queries."""
    train_docs = {d for rels in dataset.qrels["train"].values() for d, r in rels.items() if r > 0}
    b, a = before.per_query["ndcg@10"], after.per_query["ndcg@10"]
    seen = [q for q in b if any(r > 0 and d in train_docs for d, r in dataset.qrels[split].get(q, {}).items())]
    unseen = [q for q in b if q not in set(seen)]

    def mean(values, qids):
        return sum(values[q] for q in qids) / len(qids) if qids else float("nan")

    return (
        f"nDCG@10 on the {len(seen)} {split} queries with a relevant document a train query also has: "
        f"{mean(b, seen):.4f} -> {mean(a, seen):.4f}; on the other {len(unseen)}: {mean(b, unseen):.4f} -> "
        f"{mean(a, unseen):.4f}. A map fitted on training queries learns the documents they asked for; the second "
        "number is what it does for documents no training query asked for."
    ), set(seen)
