"""``keff project``: fit and evaluate query-to-answer projections on Q/A pairs."""

from pathlib import Path

import typer

from keff.cli.console import err, out
from keff.cli.outputs import OVERWRITE, check_output
from keff.cli.typer_app import new_app

app = new_app(
    help="Project queries toward answers: fit maps on Q/A pairs, evaluate on held-out groups.", no_args_is_help=True
)

PAIRS = typer.Option(..., help="Q/A pairs (.jsonl), read from exactly this path.")
QA_LAYOUT = typer.Option(
    "auto",
    "--qa-layout",
    help="Layout of the file: skills, medquad, auto (from the file's fields, never its name), a JSON config "
    "file, or fields like 'id=qid,question=q,answer=a,relevance=topic|source+doc,split=area'.",
)
SAMPLE_GROUPS = typer.Option(
    None, min=1, help="Use a seeded sample of this many groups (smaller pool: scores are inflated)."
)


def _setup(pairs: Path, qa_layout: str, encoder: str, sample_groups: int | None, seed: int):
    from keff.data import parse_qa_layout
    from keff.errors import DataError
    from keff.projection import qa_setup

    if not pairs.is_file():
        raise DataError("Q/A pairs file not found (a .jsonl file, one pair per line)", path=pairs)
    s = qa_setup(pairs, parse_qa_layout(qa_layout), encoder, sample_groups, seed, log=err.print)
    if sample_groups is not None:
        err.print(
            f"[bold yellow]warning:[/] only {len(s.pool_ids)} answers of {sample_groups} sampled groups are searched: "
            "scores are inflated and not comparable with the whole set"
        )
    return s


@app.command("fit")
def fit_command(
    pairs: Path = PAIRS,
    qa_layout: str = QA_LAYOUT,
    encoder: str = typer.Option("minilm", help="Encoder of questions and answers."),
    method: str = typer.Option(
        "contrastive", help="procrustes, affine, lowrank, routed-centroid, routed-question, contrastive."
    ),
    sample_groups: int = SAMPLE_GROUPS,
    seed: int = typer.Option(0),
    out_path: Path = typer.Option(..., "--out", help="Where to write the map (SEF)."),
    overwrite: bool = OVERWRITE,
) -> None:
    """Fit a projection on every pair of the file and save it (evaluate first with `keff project eval`)."""
    from keff.projection import METHODS, fit_projection, make_projection, n_parameters

    check_output(out_path, overwrite=overwrite)
    if method not in METHODS or METHODS[method] is None:
        known = ", ".join(m for m, f in METHODS.items() if f is not None)
        raise typer.BadParameter(f"unknown or unfittable method {method!r}: choose from {known}", param_hint="--method")
    s = _setup(pairs, qa_layout, encoder, sample_groups, seed)
    m = make_projection(method, seed=seed)
    fit_projection(m, s.Q, s.A, s.groups)
    m.save(
        out_path,
        meta={
            "encoder": {"name": encoder, "fingerprint": s.fingerprint},
            "pairs": str(pairs.resolve()),
            "pairs_sha256": s.data_sha256,
            "qa_layout": s.layout,
            "method": method,
            "n_pairs": int(len(s.Q)),
            "sample_groups": sample_groups,
            "seed": seed,
        },
    )
    out.print(f"wrote {out_path}: {method}, {n_parameters(m):,} parameters, {out_path.stat().st_size / 1e6:.2f} MB")


@app.command("eval")
def eval_command(
    pairs: Path = PAIRS,
    qa_layout: str = QA_LAYOUT,
    encoder: str = typer.Option("minilm", help="Encoder of questions and answers."),
    methods: str = typer.Option(
        "identity,procrustes,contrastive", help="Comma-separated methods (identity always added)."
    ),
    sample_groups: int = SAMPLE_GROUPS,
    seed: int = typer.Option(0),
) -> None:
    """Grouped 5-fold evaluation: maps fitted on four folds, scored on the fifth's questions."""
    from rich.table import Table

    from keff.projection import METHODS, kfold_projection, summarise

    names = ["identity", *[m.strip() for m in methods.split(",") if m.strip() and m.strip() != "identity"]]
    unknown = [m for m in names if m not in METHODS]
    if unknown:
        raise typer.BadParameter(f"unknown {unknown}: choose from {', '.join(METHODS)}", param_hint="--methods")
    s = _setup(pairs, qa_layout, encoder, sample_groups, seed)
    outcomes = kfold_projection(s, methods=names, student=False, seed=seed, log=err.print)
    table = Table(
        title=f"{pairs.name} / {encoder}: held-out questions of 5 grouped folds" + (f" ({s.note})" if s.note else "")
    )
    table.add_column("method")
    for mt in s.metrics:
        table.add_column(mt, justify="right")
    table.add_column("Hit@1 vs identity (95% CI)", justify="right")
    for row in summarise(outcomes, s.metrics, seed):
        m = row["metrics"]
        d = m["hit@1"]
        cells = [f"{m[mt]['mean']:.4f}" for mt in s.metrics]
        table.add_row(row["method"], *cells, f"{d['diff']:+.4f} [{d['diff_ci'][0]:+.4f}, {d['diff_ci'][1]:+.4f}]")
    out.print(table)
