"""``keff index``: build and maintain a persistent index of your documents; ``keff query``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from keff.cli.console import err, out
from keff.cli.outputs import OVERWRITE

app = typer.Typer(help="A persistent index of your documents: build, add, remove, inspect.", no_args_is_help=True)

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


@app.command("build")
def build_command(
    index: Path = typer.Argument(..., help="Index folder to create."),
    source: Path = typer.Option(..., "--from", help=SOURCE_HELP),
    encoders: list[str] = typer.Option(..., "--encoder", "-e", help="Encoder (repeat for several; first = primary)."),
    backend: str = typer.Option("exact", help="Search backend: exact (default), flat, hnsw or ivf."),
    param: list[str] = typer.Option(None, "--param", help="Backend parameter NAME=INTEGER (e.g. M=32, nprobe=16)."),
    overwrite: bool = OVERWRITE,
) -> None:
    """Build an index of your documents with one or more encoders (cached vectors are reused)."""
    from keff.docindex import Index, read_documents

    params = _params(param)
    docs = read_documents(source)
    err.print(f"indexing {len(docs):,} documents from {source} with {', '.join(encoders)} ({backend} search)")
    ix = Index.build(index, docs, encoders, backend=backend, backend_params=params, overwrite=overwrite)
    out.print(f"built {ix.root}: {ix.n_docs:,} documents, encoders {', '.join(ix.encoder_keys)}")


@app.command("add")
def add_command(
    index: Path = typer.Argument(..., help="Index folder."),
    source: Path = typer.Option(..., "--from", help=SOURCE_HELP),
    replace: bool = typer.Option(False, help="Replace documents whose id the index already holds."),
) -> None:
    """Add documents (encoded by every encoder of the index) in one atomic commit."""
    from keff.docindex import Index, read_documents

    ix = Index.open(index)
    n = ix.add(read_documents(source), replace=replace)
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
        out.print(f"  transform: {t.get('name', t.get('kind'))} ({t.get('kind')})")
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
