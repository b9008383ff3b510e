"""``keff project``: fit and evaluate query-to-answer projections on Q/A pairs."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from keff.cli.console import err, out

app = typer.Typer(
    help="Project queries toward answers: fit maps on Q/A pairs, evaluate on held-out groups.", no_args_is_help=True
)


def _pairs_file(pairs: Path) -> tuple[Path, str]:
    from keff.errors import DataError

    preset = pairs.stem.replace("_qa", "")
    if not pairs.is_file() or preset not in ("skills", "medquad"):
        raise DataError("expected skills_qa.jsonl or medquad.jsonl (the shared Q/A sets)", path=pairs)
    return pairs, preset


@app.command("fit")
def fit_command(
    pairs: Path = typer.Option(..., help="Q/A pairs: qa/skills_qa.jsonl or qa/medquad.jsonl."),
    encoder: str = typer.Option("minilm", help="Encoder of questions and answers."),
    method: str = typer.Option(
        "contrastive", help="procrustes, affine, lowrank, routed-centroid, routed-question, contrastive."
    ),
    sample_groups: int = typer.Option(None, help="Fit on a seeded sample of this many groups."),
    seed: int = typer.Option(0),
    out_path: Path = typer.Option(..., "--out", help="Where to write the map (SEF)."),
) -> None:
    """Fit a projection on every pair of the set and save it (evaluate first with `keff project eval`)."""
    from keff.projection import fit_projection, make_projection, n_parameters, qa_setup

    path, preset = _pairs_file(pairs)
    s = qa_setup(path.parent.parent, preset, encoder, sample_groups, seed, log=err.print)
    m = make_projection(method, seed=seed)
    if m is None:
        raise typer.BadParameter("identity has nothing to fit")
    fit_projection(m, s.Q, s.A, s.groups)
    m.save(
        out_path,
        meta={
            "encoder": {"name": encoder, "fingerprint": s.fingerprint},
            "pairs": str(path),
            "method": method,
            "n_pairs": int(len(s.Q)),
            "seed": seed,
        },
    )
    out.print(f"wrote {out_path}: {method}, {n_parameters(m):,} parameters, {out_path.stat().st_size / 1e6:.2f} MB")


@app.command("eval")
def eval_command(
    pairs: Path = typer.Option(..., help="Q/A pairs: qa/skills_qa.jsonl or qa/medquad.jsonl."),
    encoder: str = typer.Option("minilm", help="Encoder of questions and answers."),
    methods: str = typer.Option(
        "identity,procrustes,contrastive", help="Comma-separated methods (identity always added)."
    ),
    sample_groups: int = typer.Option(None, help="Evaluate a seeded sample of this many groups."),
    seed: int = typer.Option(0),
) -> None:
    """Grouped 5-fold evaluation: maps fitted on four folds, scored on the fifth's questions."""
    from keff.projection import kfold_projection, qa_setup, summarise

    path, preset = _pairs_file(pairs)
    s = qa_setup(path.parent.parent, preset, encoder, sample_groups, seed, log=err.print)
    names = ["identity", *[m for m in methods.split(",") if m and m != "identity"]]
    outcomes = kfold_projection(s, methods=names, student=False, seed=seed, log=err.print)
    table = Table(
        title=f"{preset} / {encoder}: held-out questions of 5 grouped folds" + (f" ({s.note})" if s.note else "")
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
