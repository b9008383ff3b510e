"""``keff index``: build and maintain a persistent index of your documents; ``keff query``."""

from pathlib import Path

import typer

from keff.cli.console import err, out
from keff.cli.outputs import OVERWRITE
from keff.cli.typer_app import new_app

app = new_app(help="A persistent index of your documents: build, add, remove, inspect.", no_args_is_help=True)

SOURCE_HELP = "Documents: a BEIR folder, a .jsonl of {id, text, ...}, or a folder of .txt/.md files."


def _params(values: list[str] | None) -> dict[str, int]:
    """``["M=32", "ef_search=64"]`` -> ``{"M": 32, "ef_search": 64}``."""
    params = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        if not sep or not name or not value.strip().isdigit():
            raise typer.BadParameter(f"expected NAME=INTEGER, got {item!r}", param_hint="--param")
        params[name.strip()] = int(value)
    return params


ENGINE = typer.Option(
    "inprocess", help="Where the model encodes: inprocess (default) or ray (Ray Data; a local instance, or the "
    "cluster at $RAY_ADDRESS; needs the ray extra: pip install 'keff[ray]'). Both give byte-identical vectors."
)  # fmt: skip
RAY_ACTORS = typer.Option(None, "--ray-actors", min=1, help="--engine ray: encoder actors (default 2; one CPU each).")
RAY_BATCH = typer.Option(
    None,
    "--ray-batch",
    min=1,
    help="--engine ray: model batches (of the encoder's 32 texts) per actor call (default 1).",
)


def _engine_options(engine: str, actors: int | None, batch: int | None) -> dict[str, int]:
    """The ray engine's options from the command line (refused with another engine)."""
    options = {k: v for k, v in (("actors", actors), ("batches_per_call", batch)) if v is not None}
    if options and engine != "ray":
        raise typer.BadParameter("--ray-actors and --ray-batch go with --engine ray", param_hint="--engine")
    return options


@app.command("build")
def build_command(
    index: Path = typer.Argument(..., help="Index folder to create."),
    source: Path = typer.Option(..., "--from", help=SOURCE_HELP),
    encoders: list[str] = typer.Option(..., "--encoder", "-e", help="Encoder (repeat for several; first = primary)."),
    backend: str = typer.Option("exact", help="Search backend: exact (default), flat, hnsw, ivf or milvus."),
    param: list[str] = typer.Option(None, "--param", help="Backend parameter NAME=INTEGER (e.g. M=32, nprobe=16)."),
    milvus_uri: str = typer.Option(
        None,
        "--milvus-uri",
        help="Milvus backend: a Milvus Lite file *.db (relative: inside the index folder; "
        "default milvus.db) or a server's http://host:19530 (token from $KEFF_MILVUS_TOKEN).",
    ),  # fmt: skip
    overwrite: bool = OVERWRITE,
    engine: str = ENGINE,
    ray_actors: int = RAY_ACTORS,
    ray_batch: int = RAY_BATCH,
) -> None:
    """Build an index of your documents with one or more encoders (cached vectors are reused)."""
    from keff.docindex import Index, read_documents

    params: dict = _params(param)
    if milvus_uri is not None:
        if backend != "milvus":
            raise typer.BadParameter("--milvus-uri goes with --backend milvus", param_hint="--milvus-uri")
        params["uri"] = milvus_uri
    docs = read_documents(source)
    err.print(f"indexing {len(docs):,} documents from {source} with {', '.join(encoders)} ({backend} search)")
    ix = Index.build(index, docs, encoders, backend=backend, backend_params=params, overwrite=overwrite,
                     engine=engine, engine_options=_engine_options(engine, ray_actors, ray_batch))  # fmt: skip
    out.print(f"built {ix.root}: {ix.n_docs:,} documents, encoders {', '.join(ix.encoder_keys)}")


@app.command("add")
def add_command(
    index: Path = typer.Argument(..., help="Index folder."),
    source: Path = typer.Option(..., "--from", help=SOURCE_HELP),
    replace: bool = typer.Option(False, help="Replace documents whose id the index already holds."),
    engine: str = ENGINE,
    ray_actors: int = RAY_ACTORS,
    ray_batch: int = RAY_BATCH,
) -> None:
    """Add documents (encoded by every encoder of the index) in one atomic commit."""
    from keff.docindex import Index, read_documents

    ix = Index.open(index)
    n = ix.add(read_documents(source), replace=replace, engine=engine,
               engine_options=_engine_options(engine, ray_actors, ray_batch))  # fmt: skip
    out.print(f"added {n:,} documents to {ix.root}: {ix.n_docs:,} now")


@app.command("remove")
def remove_command(
    index: Path = typer.Argument(..., help="Index folder."),
    ids: list[str] = typer.Argument(None, help="Ids of the documents to remove."),
    ids_file: Path = typer.Option(None, help="Or a file with one id per line."),
) -> None:
    """Remove documents by id in one atomic commit (an unknown id removes nothing)."""
    from keff.data._io import read_lines
    from keff.docindex import Index

    wanted = list(ids or [])
    if ids_file is not None:
        wanted += [line.strip() for _, line in read_lines(ids_file, what="ids file")[1]]
    if not wanted:
        raise typer.BadParameter("give ids to remove, or --ids-file")
    ix = Index.open(index)
    n = ix.remove(wanted)
    out.print(f"removed {n:,} documents from {ix.root}: {ix.n_docs:,} left")


@app.command("info")
def info_command(
    index: Path = typer.Argument(..., help="Index folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the information as JSON."),
) -> None:
    """What an index holds: documents, encoders, backend, attached transforms, recent changes."""
    import json

    from keff.docindex import Index

    info = Index.open(index).info()
    if as_json:
        out.print_json(json.dumps(info))
        return
    out.print(f"{info['path']}: {info['documents']:,} documents ({info['removed']:,} removed rows), "
              f"generation {info['generation']}, backend {info['backend']}")  # fmt: skip
    for enc in info["encoders"]:
        out.print(f"  encoder {enc['key']}: {enc['name']} ({enc['dim']}-d, fingerprint {enc['fingerprint'][:12]})")
    for t in info["transforms"]:
        out.print(f"  transform {t.get('name')}: {t.get('kind')}, {t.get('summary', '')} (from {t.get('file', '?')})")
    if info["transforms"] or len(info["encoders"]) > 1:
        out.print(f"  encoder weighting: {info.get('weighting', 'equal')}")
    for note in info.get("notes", []):
        out.print(f"  [yellow]note:[/] {note}")
    if info.get("upgrade"):
        up = info["upgrade"]
        out.print(f"  upgrade to {up['target']['name']} ({up['target']['key']}): serving {up['mode']}, "
                  f"{up['reembedded']:,}/{up['rows']:,} rows re-embedded")  # fmt: skip
    for h in info["history"]:
        details = {k: v for k, v in h.items() if k not in ("time", "action", "command", "keff_version")}
        out.print(f"  {h.get('time')}: {h.get('action')} {json.dumps(details)}")


def query_command(
    index: Path = typer.Argument(..., help="Index folder."),
    texts: list[str] = typer.Argument(..., help="Query text(s)."),
    k: int = typer.Option(10, "-k", min=1, help="Results per query."),
    as_json: bool = typer.Option(False, "--json", help="Print results as JSON (one object per query)."),
) -> None:
    """Search an index: the top-k documents of each query, with scores."""
    import json

    from rich.table import Table

    from keff.docindex import Index

    queries = [t for t in texts if t.strip()]
    if len(queries) < len(texts):
        err.print("[yellow]warning:[/] skipped empty or whitespace-only queries")
    if not queries:
        raise typer.BadParameter("every query is empty")
    ix = Index.open(index)
    results = ix.search(queries, k)
    if as_json:
        out.print_json(
            json.dumps([{"query": q, "hits": [h.to_dict() for h in hits]} for q, hits in zip(queries, results)])
        )
        return
    for q, hits in zip(queries, results):
        table = Table(title=repr(q))
        for col in ("rank", "score", "id", "text"):
            table.add_column(col)
        for rank, h in enumerate(hits, start=1):
            table.add_row(str(rank), f"{h.score:.4f}", h.id, h.text[:100])
        out.print(table)


# -- transforms and evaluation (keff.docindex.transforms, keff.docindex.evaluate) -------------------
DATA = typer.Option(..., "--data", help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/) or Q/A .jsonl file.")
FIT_SPLIT = typer.Option("train", help="qrels split to fit on (BEIR); never the one you evaluate on.")
QA_LAYOUT = typer.Option(
    "auto",
    "--qa-layout",
    help="Q/A file layout: skills, medquad, auto (from the file's fields), a JSON config, "
    "or fields like 'question=q,answer=a,relevance=topic'.",
)


def _task(data: Path, split: str, qa_layout: str, *, training: bool):
    """The retrieval task of ``data`` (one split of a BEIR folder, or every pair of a Q/A file)."""
    from keff.cli.eval_cmd import load_task

    task, pairs, _ = load_task(data, split=split, qa_layout=qa_layout, sample_groups=None, seed=0)
    if pairs is not None:
        err.print(f"read {len(pairs)} Q/A pairs from {data} with the {pairs.layout.name} layout")
        if training:
            err.print("[yellow]note:[/] a Q/A file has no splits: every pair is used; give a file of training pairs")
    return task


def _fit_setup(index: Path, name: str, data: Path, split: str, qa_layout: str, out_path: Path | None, overwrite: bool):
    """The index and training task of a fit-* command, after checking its outputs are free."""
    from keff.cli.outputs import check_output
    from keff.docindex import Index
    from keff.errors import KeffError

    check_output(out_path, overwrite=overwrite)
    ix = Index.open(index)
    if any(t.name == name for t in ix.transforms) and not overwrite:
        raise KeffError(f"{ix.root} already has a transform named {name!r}: pass --overwrite to replace it, or --name")
    return ix, _task(data, split, qa_layout, training=True)


def attach_fitted(ix, save, name: str, overwrite: bool, out_path: Path | None) -> dict:
    """Save a fitted artifact with ``save(path)``, attach it as ``name``, copy it to ``out_path``."""
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix=".keff-fit-", dir=ix.root) as tmp:
        path = save(Path(tmp) / f"{name}.sef")
        entry = ix.attach(path, name=name, replace=overwrite)
        if out_path is not None:
            shutil.copyfile(path, out_path)
            out.print(f"wrote {out_path}")
    return entry


@app.command("attach")
def attach_command(
    index: Path = typer.Argument(..., help="Index folder."),
    source: Path = typer.Argument(..., help="SEF file: a query map, fusion weights or a specialist."),
    encoder: str = typer.Option(
        None, "--encoder", "-e", help="Index encoder key it applies to (default: the one of its fingerprint)."
    ),
    name: str = typer.Option(None, help="Its name in the index (default: the file name without .sef)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an attached transform of the same name."),
) -> None:
    """Attach a learned transform (checked against the index's encoders) in one atomic commit."""
    from keff.docindex import Index

    ix = Index.open(index)
    entry = ix.attach(source, name=name, encoder=encoder, replace=overwrite)
    out.print(f"attached {entry['name']} to {ix.root}: {entry['kind']}, {entry['summary']}")
    for note in ix.transforms.notes:
        err.print(f"[yellow]note:[/] {note}")


@app.command("detach")
def detach_command(
    index: Path = typer.Argument(..., help="Index folder."),
    name: str = typer.Argument(..., help="Name of the transform (keff index info lists them)."),
) -> None:
    """Detach a transform in one atomic commit (works even if that transform stops the index opening)."""
    from keff.docindex.index import detach_transform

    entry = detach_transform(index, name)
    out.print(f"detached {name} ({entry.get('kind')}) from {index}")


@app.command("fit-fusion")
def fit_fusion_command(
    index: Path = typer.Argument(..., help="Index folder (two or more encoders)."),
    data: Path = DATA,
    split: str = FIT_SPLIT,
    qa_layout: str = QA_LAYOUT,
    name: str = typer.Option("fusion", help="Name of the attached weights."),
    step: float = typer.Option(0.1, help="Grid spacing of the weights (1/step must be whole)."),
    depth: int = typer.Option(100, min=10, help="Each encoder's candidates per query."),
    out_path: Path | None = typer.Option(None, "--out", help="Also write the weights (SEF) here."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace weights of the same name (and --out)."),
) -> None:
    """Fit one weight per encoder on training queries (nDCG@10), save it into the index and attach it."""
    from keff.docindex.evaluate import fit_fusion_weights

    ix, task = _fit_setup(index, name, data, split, qa_layout, out_path, overwrite)
    err.print(f"fitting fusion weights of {', '.join(ix.encoder_keys)} on {task.name}: {len(task.query_ids):,} queries")
    fw = fit_fusion_weights(ix, task, step=step, depth=depth)
    for map_name in fw.info["maps_fitted_on_these_queries"]:
        err.print(f"[yellow]warning:[/] query map {map_name} was fitted on these same queries, so its encoder scores "
                  "better on them than on new queries and the weights favour it; fit the weights on other queries "
                  "(a validation split) or before attaching the map")  # fmt: skip
    entry = attach_fitted(ix, fw.save, name, overwrite, out_path)
    out.print(f"attached {entry['name']} to {ix.root}: {entry['summary']} "
              f"(nDCG@10 {fw.info['train_objective']:.4f} on the {len(task.query_ids):,} fitting queries)")  # fmt: skip


@app.command("fit-map")
def fit_map_command(
    index: Path = typer.Argument(..., help="Index folder."),
    data: Path = DATA,
    split: str = FIT_SPLIT,
    qa_layout: str = QA_LAYOUT,
    method: str = typer.Option(
        "lowrank", help="procrustes, affine, lowrank, routed-centroid, routed-question or contrastive."
    ),
    encoder: str = typer.Option(None, "--encoder", "-e", help="Index encoder key (default: the primary one)."),
    name: str = typer.Option(None, help="Name of the attached map (default: the method)."),
    seed: int = typer.Option(0, help="Seed of maps that draw random numbers."),
    out_path: Path | None = typer.Option(None, "--out", help="Also write the map (SEF) here."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a map of the same name (and --out)."),
) -> None:
    """Fit a query map on training queries -> their relevant documents, save it into the index and attach it."""
    from keff.docindex.evaluate import fit_query_map

    name = name or method
    ix, task = _fit_setup(index, name, data, split, qa_layout, out_path, overwrite)
    err.print(f"fitting a {method} query map on {task.name}: {len(task.query_ids):,} queries")
    m, provenance = fit_query_map(ix, task, method=method, encoder=encoder, seed=seed)
    entry = attach_fitted(ix, lambda p: m.save(p, meta=provenance), name, overwrite, out_path)
    out.print(f"attached {entry['name']} to {ix.root}: {entry['summary']} "
              f"(fitted on {provenance['n_pairs']:,} query-document pairs)")  # fmt: skip


@app.command("eval")
def eval_command(
    index: Path = typer.Argument(..., help="Index folder."),
    data: Path = DATA,
    split: str = typer.Option("test", help="qrels split to evaluate (BEIR)."),
    qa_layout: str = QA_LAYOUT,
    k: int = typer.Option(100, min=1, help="Depth of the retrieved list."),
    seed: int = typer.Option(0, help="Seed of the latency draw."),
    out_path: Path | None = typer.Option(None, "--out", help="Write the result JSON here."),
    overwrite: bool = OVERWRITE,
) -> None:
    """Score the index's search (with its transforms) on judged queries: keff eval's table and result JSON."""
    from keff.cli.console import print_results_table
    from keff.cli.outputs import check_output
    from keff.docindex import Index
    from keff.docindex.evaluate import evaluate_index
    from keff.eval import write_result

    check_output(out_path, overwrite=overwrite)
    ix = Index.open(index)
    task = _task(data, split, qa_layout, training=False)
    err.print(f"searching {ix.root} ({ix.transforms.weighting} weighting, {len(ix.transforms)} transforms) "
              f"with {len(task.query_ids):,} queries of {task.name}")  # fmt: skip
    result = evaluate_index(ix, task, k=k, seed=seed)
    docs = result.meta["documents"]
    print_results_table([result], task.metrics, title=f"{task.name}: {len(task.query_ids)} queries, index of "
                        f"{ix.n_docs} documents")  # fmt: skip
    if docs["task_not_in_index"] or docs["index_not_in_task"]:
        err.print(
            f"[yellow]note:[/] the index holds {docs['index_not_in_task']:,} documents the task's corpus lacks and "
            f"lacks {docs['task_not_in_index']:,} of its unjudged documents: not comparable with keff eval on the task"
        )
    if out_path is not None:
        write_result(result, out_path)
        out.print(f"wrote {out_path}")


# -- model upgrade without downtime (keff.docindex.upgrade) -----------------------------------------
@app.command("upgrade")
def upgrade_command(
    index: Path = typer.Argument(..., help="Index folder."),
    to: str = typer.Option(None, "--to", help="The new encoder (its primary encoder is upgraded)."),
    anchors: int = typer.Option(1000, "--anchors", min=2, help="Index documents embedded by the new encoder to fit."),
    map_kind: str = typer.Option("affine", "--map", help="Map kind fitted both ways: procrustes, affine, lowrank, ..."),
    holdout: float = typer.Option(0.2, help="Share of the anchors held out as pseudo-queries (without --queries)."),
    queries: Path = typer.Option(
        None, "--queries", help="BEIR folder whose training queries and qrels validate instead of pseudo-queries."
    ),
    split: str = typer.Option("train", help="qrels split of --queries (never test)."),
    seed: int = typer.Option(0, help="Seed of the anchor draw, the held-out split and seeded maps."),
    cancel: bool = typer.Option(False, "--cancel", help="Cancel the upgrade in progress instead."),
) -> None:
    """Serve a new encoder's queries at once: fit maps on the index's own documents, validate every serving mode
    against keeping the old model, and commit the best one (refused, exit 2, if none is at or above the old model)."""
    from rich.table import Table

    from keff.docindex import Index
    from keff.docindex.upgrade import MODES, cancel_upgrade, upgrade

    if cancel:
        done = cancel_upgrade(index)
        out.print(f"cancelled the upgrade of {index}" if done else f"{index} has no upgrade in progress")
        return
    if not to:
        raise typer.BadParameter("name the new encoder", param_hint="--to")
    ix = Index.open(index)
    what = f"the training queries of {queries}" if queries is not None else "pseudo-queries of held-out anchors"
    err.print(f"fitting {map_kind} maps {ix.encoder_keys[0]} <-> {to} on {anchors:,} anchors; validating on {what}")
    report = upgrade(ix, to, anchors=anchors, map_kind=map_kind, holdout=holdout, queries=queries, split=split,
                     seed=seed)  # fmt: skip
    v = report.validation
    table = Table(title=f"validation: {v.queries}")
    for col in ("system", "nDCG@10", "MRR@10", ""):
        table.add_column(col)
    for name, f in v.figures.items():
        mark = "serves" if name == v.chosen else "accepted" if name in v.accepted else "below old" * (name != "old")
        label = "old model" if name == "old" else f"{name}: {MODES[name]}"
        table.add_row(label, f"{f['ndcg@10']:.4f}", f"{f['mrr@10']:.4f}", mark)
    out.print(table)
    out.print(f"upgraded {ix.root}: new-encoder queries ({report.target}) are served by {report.mode}; "
              "run 'keff index reembed' to re-embed the documents and switch over")  # fmt: skip
    if report.detach_at_switch:
        err.print(f"[yellow]note:[/] at switch-over, the transforms fitted on the old encoder "
                  f"({', '.join(report.detach_at_switch)}) are detached")  # fmt: skip


@app.command("reembed")
def reembed_command(
    index: Path = typer.Argument(..., help="Index folder under upgrade."),
    chunk: int = typer.Option(1024, "--chunk", min=1, help="Documents re-embedded per commit."),
    max_rows: int = typer.Option(None, "--max-rows", min=1, help="Stop after this many rows (resume later)."),
) -> None:
    """Re-embed the documents with the upgrade's new encoder (resumable, one commit per chunk), then switch over."""
    from keff.docindex.upgrade import reembed

    report = reembed(index, chunk=chunk, max_rows=max_rows)
    if report.switched:
        out.print(f"re-embedded {report.encoded:,} documents; switched {index} over to {report.target}")
    else:
        out.print(f"re-embedded {report.encoded:,} documents ({report.reembedded:,}/{report.rows:,} rows); "
                  "run 'keff index reembed' again to continue")  # fmt: skip


@app.command("rebuild-backend")
def rebuild_backend_command(index: Path = typer.Argument(..., help="Index folder.")) -> None:
    """Drop and refill the index's Milvus collection from its verified vectors (when opening it says
    the collection is out of step with the index)."""
    from keff.docindex.index import writer_lock
    from keff.docindex.manifest import read_manifest
    from keff.docindex.milvus import check_rebuildable, rebuild

    check_rebuildable(index, read_manifest(index))  # refuses a folder without an index before locking it
    with writer_lock(index):
        manifest = read_manifest(index)
        done = rebuild(index, manifest)
    out.print(f"rebuilt {done['collection']} for {index}: {done['written']:,} rows")
