"""``keff fuse``: the mixed-domain fusion benchmark, and ``keff search`` over fused specialists."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from keff.cli.console import err, out
from keff.cli.outputs import OVERWRITE, check_output

app = typer.Typer(help="Fuse specialists per query: benchmark on the mixed-domain set.", no_args_is_help=True)


@app.command("bench")
def bench_command(
    data: Path = typer.Option(None, "--data", help="Shared data folder (beir/, qa/); default ../shared/data."),
    out_path: Path = typer.Option(
        Path("benchmarks/results/fusion.json"), "--out", help="Result JSON (a PNG beside it)."
    ),
    medquad_groups: int = typer.Option(300, min=1, help="MedQuAD groups in the mixed corpus (seeded sample)."),
    seed: int = typer.Option(0, help="Seed of every split, sample and fit."),
    drift: bool = typer.Option(True, help="Also run the drift experiment (two rotated siblings)."),
    specialists_out: Path = typer.Option(None, help="Save the fitted specialists (SEF) into this folder."),
    only: str = typer.Option(
        None, help="Comma-separated subset of specialists (a quick run; must include the router)."
    ),
    overwrite: bool = OVERWRITE,
) -> None:
    """Build every specialist (fine-tuning the domain ones on first use, cached) and run every
    fusion strategy on the mixed-domain test queries; writes JSON and a plot."""
    from keff.atomic import atomic_write_text
    from keff.errors import DataError
    from keff.fusion.bench import run_fusion_bench
    from keff.fusion.plot import plot_fusion
    from keff.paths import cache_dir, find_shared_data

    check_output(out_path, overwrite=overwrite)
    check_output(out_path.with_suffix(".png"), overwrite=overwrite, option="--out (its .png)")
    data = data or find_shared_data()
    if data is None:
        raise DataError("shared data not found: pass --data DIR (the folder holding beir/ and qa/)")
    specialists_out = specialists_out or cache_dir() / "fusion" / "specialists"
    result = run_fusion_bench(data, medquad_groups=medquad_groups, seed=seed, drift=drift,
                              specialists_out=specialists_out, only=only.split(",") if only else None)  # fmt: skip
    png = out_path.with_suffix(".png")
    plot_fusion(result, png)
    result["plot"] = png.name
    atomic_write_text(out_path, json.dumps(result, indent=1, sort_keys=True, default=float) + "\n")
    picks = result["picks"]
    out.print(f"best single: {picks['best_single']}; best fused: {picks['best_fused']}")
    out.print(f"wrote {out_path} and {png}; specialists in {specialists_out}")
    err.print("render BENCHMARKS.md with: python benchmarks/render.py")


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
