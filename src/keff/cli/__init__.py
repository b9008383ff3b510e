"""keff's command line: one verb per job (``keff --help``)."""

from __future__ import annotations

import sys

import typer

from keff.cli import align_cmd, data_cmd, demo_cmd, eval_cmd, fuse_cmd, models_cmd, project_cmd
from keff.errors import KeffError

app = typer.Typer(
    name="keff",
    help="Make frozen embedding models work together, and measure it on real retrieval data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("eval")(eval_cmd.eval_command)
app.command("compare")(eval_cmd.compare_command)
app.command("demo")(demo_cmd.demo_command)
app.add_typer(data_cmd.app, name="data")
app.add_typer(models_cmd.app, name="models")
app.add_typer(align_cmd.app, name="align")
app.add_typer(fuse_cmd.app, name="fuse")
app.add_typer(project_cmd.app, name="project")
app.command("search")(fuse_cmd.search_command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app; a :class:`KeffError` prints one clean line and exits 2."""
    try:
        app(args=argv, standalone_mode=True)
    except KeffError as exc:
        from keff.cli.console import err

        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
