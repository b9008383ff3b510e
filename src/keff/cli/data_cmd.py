"""``keff data``: fetch and check data sets."""

from pathlib import Path

import typer

from keff.cli.console import out
from keff.cli.typer_app import new_app

app = new_app(help="Fetch and check data sets.", no_args_is_help=True)
fetch_app = new_app(help="Download a public data set.", no_args_is_help=True)
app.add_typer(fetch_app, name="fetch")


@fetch_app.command("beir")
def fetch_beir_command(
    name: str = typer.Argument(..., help="BEIR data set name, e.g. scifact, nfcorpus, fiqa."),
    to: Path = typer.Option(..., "--to", help="Folder to unpack into (creates TO/NAME)."),
    base_url: str = typer.Option(None, help="Mirror to download from (default: the BEIR host)."),
    overwrite: bool = typer.Option(False, help="Replace an existing TO/NAME."),
) -> None:
    """Download and unpack a BEIR data set from its public URL, then validate it."""
    from keff.cli.outputs import check_output_dir
    from keff.data import BEIR_BASE_URL, fetch_beir, load_beir

    check_output_dir(to, [name], overwrite=overwrite, option="--to")
    path = fetch_beir(name, to, base_url=base_url or BEIR_BASE_URL, overwrite=overwrite)
    ds = load_beir(path)
    splits = ", ".join(f"{s} ({len(q)} queries)" for s, q in sorted(ds.qrels.items()))
    out.print(f"{path}: {len(ds.doc_ids)} documents, {len(ds.query_ids)} queries; qrels: {splits}")


@app.command("check")
def check_command(
    data: Path = typer.Argument(..., help="BEIR folder to validate."),
) -> None:
    """Validate a BEIR folder (ids, qrels, malformed lines) and print its statistics."""
    from keff.data import load_beir

    ds = load_beir(data)
    out.print(f"{data}: {len(ds.doc_ids)} documents, {len(ds.query_ids)} queries")
    for split, qrels in sorted(ds.qrels.items()):
        n_judg = sum(len(v) for v in qrels.values())
        out.print(f"  {split}: {len(qrels)} judged queries, {n_judg} judgements")
    for name, digest in sorted(ds.file_hashes.items()):
        out.print(f"  sha256 {digest[:16]}  {name}")
