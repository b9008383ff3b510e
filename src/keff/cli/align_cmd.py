"""``keff align``: fit, apply and diagnose maps between two encoders' spaces."""

from pathlib import Path

import typer

from keff.cli.console import err, out
from keff.cli.outputs import OVERWRITE, check_output
from keff.cli.typer_app import new_app

app = new_app(help="Align embedding spaces: fit a map on anchor texts, apply it, diagnose drift.", no_args_is_help=True)

QA_LAYOUT = typer.Option(
    "auto",
    "--qa-layout",
    help="Layout of a Q/A .jsonl: skills, medquad, auto (by its fields), a JSON config or fields.",
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
    n_anchors: int = typer.Option(None, min=1, help="Draw this many anchors at random (seeded); default all."),
    kind: str = typer.Option(
        "affine",
        "--map",
        help="Map kind: affine (default: the best map of old vectors into a new model's space in "
        "benchmarks/upgrade_gap.py), procrustes, lowrank, mlp, contrastive, ... (keff.maps.MAPS).",
    ),
    rank: int = typer.Option(64, min=1, help="Rank of the low-rank map."),
    holdout: float = typer.Option(0.1, min=0.0, max=0.9, help="Share of anchors held out to measure the fit."),
    seed: int = typer.Option(0, help="Seed for anchor draws, the holdout split and training."),
    qa_layout: str = QA_LAYOUT,
    out_path: Path = typer.Option(..., "--out", help="Where to write the map (SEF file)."),
    overwrite: bool = OVERWRITE,
) -> None:
    """Fit a map from SOURCE's space into TARGET's space on anchor texts and save it as SEF."""
    from keff.alignment import fit_alignment, provenance, read_anchor_texts
    from keff.arrays import load_vectors
    from keff.encoders import get_encoder
    from keff.errors import DataError
    from keff.maps import MAPS, map_params

    check_output(out_path, overwrite=overwrite)
    fittable = [k for k in MAPS if k != "chain"]
    if kind not in fittable:
        raise typer.BadParameter(f"unknown map {kind!r}: choose from {', '.join(fittable)}", param_hint="--map")
    src, tgt = get_encoder(source), get_encoder(target)
    if anchors is not None:
        texts, what = read_anchor_texts(anchors, n=n_anchors, seed=seed, qa_layout=qa_layout)
        err.print(f"encoding {len(texts)} anchors ({what}) with {source} and {target}")
        X, Y = src.encode(texts, kind="doc"), tgt.encode(texts, kind="doc")
    elif source_vectors is not None and target_vectors is not None:
        texts, what = None, f"vectors {source_vectors.name} / {target_vectors.name}"
        X, Y = load_vectors(source_vectors), load_vectors(target_vectors)
        if len(X) != len(Y):
            raise DataError(
                f"{len(X)} rows, but {target_vectors} has {len(Y)}: source and target rows must be the same anchors",
                path=source_vectors,
            )
        if n_anchors is not None:
            raise typer.BadParameter("--n-anchors draws texts; with vector files, pass the rows you want")
    else:
        raise typer.BadParameter("give --anchors, or both --source-vectors and --target-vectors")
    given = {"rank": rank, "seed": seed}
    params = {name: value for name, value in given.items() if name in map_params(kind)}
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
        out.print(
            f"  (top-1: share of mapped anchors whose nearest target among only these {report.n} held-out anchors "
            "is their own; with so few candidates it is near 1.000 for any fair map: judge by cosine and retrieval)"
        )
    out.print(f"wrote {out_path} ({m!r}, {X.shape[1]}-d -> {Y.shape[1]}-d, fitted on {n_fit} anchors)")


def _source_encoder(map_path: Path, meta: dict, explicit: str | None):
    """The encoder the map's source vectors came from: named by the user, or a trusted name in
    the map, with its fingerprint checked."""
    from keff.encoders.registry import encoder_for_artifact

    source = meta.get("provenance", {}).get("source") or {}
    if not source.get("name") and explicit is None:
        raise typer.BadParameter(f"{map_path} does not name its source encoder; pass --encoder or --vectors")
    return encoder_for_artifact(
        str(source.get("name") or explicit),
        str(source.get("fingerprint") or ""),
        what=f"map {map_path}",
        explicit=explicit,
    )


@app.command("apply")
def apply_command(
    map_path: Path = typer.Option(..., "--map", help="A map saved by `keff align fit`."),
    vectors: Path = typer.Option(None, help="Source-space vectors to map (.npy)."),
    texts: Path = typer.Option(None, help="Or texts (one per line) to encode with the map's source encoder."),
    encoder: str = typer.Option(
        None, help="Encoder for --texts (default: the map's source encoder, if it is a keff registry name)."
    ),
    kind: str = typer.Option("doc", help="Encode texts as query or doc."),
    normalize_input: bool = typer.Option(
        True, help="L2-normalise input rows that are not unit length (the maps are fitted on unit vectors)."
    ),
    out_path: Path = typer.Option(..., "--out", help="Mapped vectors (.npy), L2-normalised."),
    overwrite: bool = OVERWRITE,
) -> None:
    """Map vectors (or texts encoded by the map's source encoder) into the target space."""
    import numpy as np

    from keff.arrays import l2_normalize, load_vectors, unit_norm_rows
    from keff.atomic import atomic_path
    from keff.encoders.base import check_kind
    from keff.errors import DataError
    from keff.maps import load_map

    check_output(out_path, overwrite=overwrite)
    check_kind(kind)
    if (texts is None) == (vectors is None):
        raise typer.BadParameter("give --vectors or --texts (one of them)")
    m, meta = load_map(map_path)
    if texts is not None:
        enc = _source_encoder(map_path, meta, encoder)
        from keff.data._io import read_lines

        _, numbered = read_lines(texts, what="text file")
        if not numbered:
            raise DataError("no texts (every line is blank)", path=texts)
        X = enc.encode([line.strip() for _, line in numbered], kind=kind)
    else:
        X = load_vectors(vectors)
    if X.shape[1] != m.source_dim_:
        raise DataError(f"{X.shape[1]}-d rows, but the map {map_path} takes {m.source_dim_}-d", path=vectors or texts)
    off = ~unit_norm_rows(X)
    if off.any():
        if normalize_input:
            X = l2_normalize(X)
            err.print(
                f"[yellow]note:[/] normalised {int(off.sum())} of {len(X)} input rows to unit length: the map was "
                "fitted on unit vectors (--no-normalize-input maps them as given)"
            )
        else:
            err.print(
                f"[yellow]warning:[/] {int(off.sum())} of {len(X)} input rows are not unit length; mapped as given"
            )
    Y = l2_normalize(m.transform(X))
    with atomic_path(out_path, suffix=".npy") as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, Y)
    out.print(f"wrote {out_path}: {Y.shape[0]} vectors, {X.shape[1]}-d -> {Y.shape[1]}-d")


def _check_map_encoders(map_path: Path, meta: dict, src, tgt) -> None:
    """Refuse a map fitted between other encoders than the ones being diagnosed."""
    from keff.errors import FingerprintMismatch

    prov = meta.get("provenance", {})
    for side, enc in (("source", src), ("target", tgt)):
        fitted = (prov.get(side) or {}).get("fingerprint")
        if fitted is None:
            raise FingerprintMismatch(f"{map_path} does not record its {side} encoder: cannot check it is {enc.name}")
        if fitted != enc.fingerprint:
            raise FingerprintMismatch(
                f"{map_path} was fitted with {side} {(prov.get(side) or {}).get('name')!r} "
                f"(fingerprint {str(fitted)[:12]}), not with {enc.name} ({enc.fingerprint[:12]})"
            )


@app.command("diagnose")
def diagnose_command(
    source: str = typer.Option(..., help="First encoder."),
    target: str = typer.Option(..., help="Second encoder."),
    texts: Path = typer.Option(..., help="Texts to compare: .txt, BEIR folder or Q/A .jsonl."),
    map_path: Path = typer.Option(None, "--map", help="A fitted map SOURCE->TARGET; default: fit Procrustes on half."),
    n: int = typer.Option(400, min=4, help="Texts to draw (seeded)."),
    seed: int = typer.Option(0),
    show: int = typer.Option(5, min=0, help="Worst texts to print."),
    qa_layout: str = QA_LAYOUT,
) -> None:
    """Per-text cosine between two encoders' vectors of the same texts, before and after alignment."""
    import numpy as np
    from rich.table import Table

    from keff.alignment import read_anchor_texts
    from keff.encoders import get_encoder
    from keff.maps import Procrustes, load_map
    from keff.maps.report import per_text_cosine

    src, tgt = get_encoder(source), get_encoder(target)
    m = meta = None
    if map_path is not None:
        m, meta = load_map(map_path)
        _check_map_encoders(map_path, meta, src, tgt)
    lines, what = read_anchor_texts(texts, n=n, seed=seed, qa_layout=qa_layout, at_most=True)
    X, Y = src.encode(lines, kind="doc"), tgt.encode(lines, kind="doc")
    if m is not None:
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
