"""``keff search``: search a corpus with fused specialists from the terminal."""

from pathlib import Path

import typer

from keff.cli.console import err, out


def search_command(
    specialists: list[Path] = typer.Option(..., "--specialist", "-s", help="Specialist SEF files (repeat the option)."),
    data: Path = typer.Option(..., "--data", help="BEIR folder whose corpus to search."),
    strategy: str = typer.Option("kalman", help="kalman (precision weights), mean (equal) or route (lowest sigma^2)."),
    k: int = typer.Option(10, min=1, help="Results per query."),
    query: list[str] = typer.Option(
        None, "--query", "-q", help="Query text (repeatable); without it, read queries interactively."
    ),
) -> None:
    """Search a corpus with fused specialists from the terminal (one query per line; empty line quits)."""
    from rich.table import Table

    from keff.data import load_beir
    from keff.fusion.methods import WEIGHTINGS
    from keff.fusion.searcher import FusedSearcher
    from keff.fusion.specialist import Specialist

    if strategy not in WEIGHTINGS:
        raise typer.BadParameter(f"choose from {', '.join(WEIGHTINGS)}", param_hint="--strategy")
    loaded = [Specialist.load(p) for p in specialists]
    ds = load_beir(data)
    err.print(
        f"indexing {len(ds.doc_ids)} documents with {', '.join(s.name for s in loaded)} (cached vectors are reused)"
    )
    searcher = FusedSearcher(loaded, ds.doc_ids, ds.doc_texts)

    def answer(text: str) -> None:
        if not text.strip():
            err.print("[yellow]warning:[/] skipped an empty or whitespace-only query")
            return
        hits, w = searcher.search([text], k=k, strategy=strategy)
        weights = ", ".join(f"{s.name} {x:.2f}" for s, x in zip(loaded, w[:, 0]))
        table = Table(title=f"{text!r}  (weights: {weights})")
        for col in ("rank", "score", "id", "text"):
            table.add_column(col)
        for rank, hit in enumerate(hits[0], start=1):
            table.add_row(str(rank), f"{hit.score:.4f}", hit.doc_id, hit.text[:100])
        out.print(table)

    if query:
        for text in query:
            answer(text)
        return
    while True:
        try:
            text = input("query> ").strip()
        except EOFError:
            break
        if not text:
            break
        answer(text)
