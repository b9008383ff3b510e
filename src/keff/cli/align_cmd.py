"""``keff align``: fit, apply and diagnose maps between two encoders' spaces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from rich.table import Table

from keff.cli.console import err, out
from keff.precomputed import load_matrix

app = typer.Typer(
    help="Align embedding spaces: fit a map on anchor texts, apply it, diagnose drift.", no_args_is_help=True
)


@app.command("fit")
def fit_command(
    source: str = typer.Option(..., help="Encoder whose vectors are mapped (registry name, folder or hub name)."),
    target: str = typer.Option(..., help="Encoder whose space they are mapped into."),
    anchors: Path = typer.Option(
        None, help="Anchor texts: a .txt file (one per line), a BEIR folder (its corpus) or a Q/A .jsonl (its answers)."
    ),
    source_vectors: Path = typer.Option(None, help="Instead of texts: source-model anchor vectors (.npy)."),
    target_vectors: Path = typer.Option(None, help="Instead of texts: target-model anchor vectors (.npy), same rows."),
    n_anchors: int = typer.Option(None, help="Draw this many anchors at random (seeded); default all."),
    kind: str = typer.Option("procrustes", "--map", help="procrustes, affine, lowrank or mlp."),
    rank: int = typer.Option(64, help="Rank of the low-rank map."),
    holdout: float = typer.Option(0.1, help="Share of anchors held out to measure the fit."),
    seed: int = typer.Option(0, help="Seed for anchor draws, the holdout split and training."),
    out_path: Path = typer.Option(..., "--out", help="Where to write the map (SEF file)."),
) -> None:
    """Fit a map from SOURCE's space into TARGET's space on anchor texts and save it as SEF."""
    from keff.alignment import fit_alignment, provenance, read_anchor_texts
    from keff.encoders import get_encoder

    src, tgt = get_encoder(source), get_encoder(target)
    if anchors is not None:
        texts, what = read_anchor_texts(anchors, n=n_anchors, seed=seed)
        err.print(f"encoding {len(texts)} anchors ({what}) with {source} and {target}")
        X, Y = src.encode(texts, kind="doc"), tgt.encode(texts, kind="doc")
    elif source_vectors is not None and target_vectors is not None:
        texts, what = None, f"vectors {source_vectors.name} / {target_vectors.name}"
        X, Y = load_matrix(source_vectors), load_matrix(target_vectors)
    else:
        raise typer.BadParameter("give --anchors, or both --source-vectors and --target-vectors")
    params = {"rank": rank} if kind == "lowrank" else {"seed": seed} if kind == "mlp" else {}
    m, report = fit_alignment(X, Y, kind, holdout=holdout, seed=seed, **params)
    n_fit = len(X) - (0 if report is None else report.n)
    meta = provenance(
        source=src, target=tgt, anchors=texts, anchor_description=what, n_fit=n_fit, report=report, seed=seed
    )
    m.save(out_path, meta=meta)
    if report is not None:
        before = "n/a (different dimensions)" if report.cosine_before is None else f"{report.cosine_before:.4f}"
        out.print(
            f"held-out anchors ({report.n}): mean cosine {before} -> {report.cosine_after:.4f}; "
            f"nearest-neighbour agreement@{report.k} {report.nn_agreement_at_k:.3f}; top-1 {report.top1_accuracy:.3f}"
        )
    out.print(f"wrote {out_path} ({m!r}, {X.shape[1]}-d -> {Y.shape[1]}-d, fitted on {n_fit} anchors)")


@app.command("apply")
def apply_command(
    map_path: Path = typer.Option(..., "--map", help="A map saved by `keff align fit`."),
    vectors: Path = typer.Option(None, help="Source-space vectors to map (.npy)."),
    texts: Path = typer.Option(None, help="Or texts (one per line) to encode with the map's source encoder."),
    kind: str = typer.Option("doc", help="Encode texts as query or doc."),
    out_path: Path = typer.Option(..., "--out", help="Mapped vectors (.npy), L2-normalised."),
) -> None:
    """Map vectors (or texts encoded by the map's source encoder) into the target space."""
    from keff.atomic import atomic_path
    from keff.encoders import get_encoder
    from keff.encoders.base import l2_normalize
    from keff.errors import FingerprintMismatch
    from keff.maps import load_map

    m, meta = load_map(map_path)
    if texts is not None:
        source = meta.get("provenance", {}).get("source") or {}
        if not source.get("name"):
            raise typer.BadParameter(f"{map_path} does not name its source encoder; pass --vectors instead")
        enc = get_encoder(source["name"])
        if enc.fingerprint != source.get("fingerprint"):
            raise FingerprintMismatch(
                f"{map_path} was fitted on {source['name']} vectors with fingerprint "
                f"{str(source.get('fingerprint'))[:12]}, but {source['name']} here has "
                f"{enc.fingerprint[:12]}: refit the map or pass --vectors"
            )
        lines = [t.strip() for t in texts.read_text(encoding="utf-8").splitlines() if t.strip()]
        X = enc.encode(lines, kind=kind)
    elif vectors is not None:
        X = load_matrix(vectors)
    else:
        raise typer.BadParameter("give --vectors or --texts")
    Y = l2_normalize(m.transform(X))
    with atomic_path(out_path, suffix=".npy") as tmp:
        np.save(tmp, Y)
    out.print(f"wrote {out_path}: {Y.shape[0]} vectors, {X.shape[1]}-d -> {Y.shape[1]}-d")


@app.command("diagnose")
def diagnose_command(
    source: str = typer.Option(..., help="First encoder."),
    target: str = typer.Option(..., help="Second encoder."),
    texts: Path = typer.Option(..., help="Texts to compare: .txt, BEIR folder or Q/A .jsonl."),
    map_path: Path = typer.Option(None, "--map", help="A fitted map SOURCE->TARGET; default: fit Procrustes on half."),
    n: int = typer.Option(400, help="Texts to draw (seeded)."),
    seed: int = typer.Option(0),
    show: int = typer.Option(5, help="Worst texts to print."),
) -> None:
    """Per-text cosine between two encoders' vectors of the same texts, before and after alignment."""
    from keff.alignment import read_anchor_texts
    from keff.encoders import get_encoder
    from keff.maps import Procrustes, load_map
    from keff.maps.report import per_text_cosine

    src, tgt = get_encoder(source), get_encoder(target)
    lines, what = read_anchor_texts(texts, n=n, seed=seed)
    X, Y = src.encode(lines, kind="doc"), tgt.encode(lines, kind="doc")
    if map_path is not None:
        m, _ = load_map(map_path)
        rows, how = np.arange(len(lines)), f"map {map_path.name}"
    else:
        half = np.random.default_rng(seed).permutation(len(lines))
        fit_rows, rows = half[: len(lines) // 2], np.sort(half[len(lines) // 2 :])
        m = Procrustes().fit(X[fit_rows], Y[fit_rows])
        how = f"Procrustes fitted on the other {len(fit_rows)} texts"
    after = per_text_cosine(m.transform(X[rows]), Y[rows])
    before = per_text_cosine(X[rows], Y[rows]) if X.shape[1] == Y.shape[1] else None
    table = Table(title=f"{source} vs {target} on {len(rows)} texts ({what}); after = {how}")
    for col in ("", "mean", "min", "p10", "median", "share < 0"):
        table.add_column(col, justify="right")
    for label, v in (("before", before), ("after", after)):
        if v is None:
            table.add_row(label, "n/a: different dimensions", "", "", "", "")
        else:
            table.add_row(label, *(f"{x:.4f}" for x in (v.mean(), v.min(), np.percentile(v, 10), np.median(v))),
                          f"{(v < 0).mean():.1%}")  # fmt: skip
    out.print(table)
    worst = np.argsort(after)[:show]
    for i in worst:
        b = "" if before is None else f"before {before[i]:+.3f}, "
        out.print(f"  {b}after {after[i]:+.3f}: {lines[rows[i]][:90]!r}")
