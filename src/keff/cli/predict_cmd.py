"""``keff predict``: predict the vector of the next unit (paragraph, sentence) and retrieve it."""

from pathlib import Path

import typer

from keff.cli.console import err, out
from keff.cli.outputs import OVERWRITE, check_output
from keff.cli.typer_app import new_app

app = new_app(
    help="Next-unit prediction: fit a predictor on ordered documents, evaluate it on held-out documents, "
    "and retrieve what comes next from an index.",
    no_args_is_help=True,
)

DATA = typer.Option(
    ...,
    "--data",
    help="Ordered documents: a WikiText .raw file (paragraphs), a BEIR folder or a JSONL file of "
    '{"id", "text"} documents (sentences).',
)
ENCODER = typer.Option("minilm", help="Encoder of the units (registry name).")
K = typer.Option(3, "--k", min=1, help="Context length: how many previous units a prediction sees.")
SEED = typer.Option(0, help="Seed of the split and of training.")


def _units(data: Path, encoder: str):
    from keff.data.sequences import load_sequences
    from keff.encoders import get_encoder

    seq = load_sequences(data)
    texts, _, _ = seq.flat()
    err.print(
        f"encoding {len(texts):,} {seq.unit}s of {len(seq.doc_ids):,} documents with {encoder} (cached vectors reused)"
    )
    enc = get_encoder(encoder)
    return seq, enc.encode(texts, kind="doc"), enc


@app.command("eval")
def eval_command(
    data: Path = DATA,
    encoder: str = ENCODER,
    k: int = K,
    models: str = typer.Option(
        "transition", help="Comma-separated trained models: transition, gru, attention, mixture (or none)."
    ),
    seed: int = SEED,
    out_path: Path = typer.Option(None, "--out", help="Also write the results as JSON."),
    overwrite: bool = OVERWRITE,
) -> None:
    """Every baseline and the chosen models on held-out documents (20%), with paired tests and order gates."""
    import json

    from rich.table import Table

    from keff.predict.evaluate import COSINE_WEIGHTS, HEAD, evaluate_sequences
    from keff.predict.models import KINDS

    check_output(out_path, overwrite=overwrite)
    names = [m.strip() for m in models.split(",") if m.strip() and m.strip() != "none"]
    for name in names:
        if name not in KINDS:
            raise typer.BadParameter(f"{name!r}: choose from {', '.join(KINDS)} or none", param_hint="--models")
    seq, V, _ = _units(data, encoder)
    # the ranking models' cosine weight is chosen on the validation documents
    chosen = {f"{n} (infonce)": {"kind": n, "loss": "infonce", "cosine_weight": COSINE_WEIGHTS} for n in names}
    res = evaluate_sequences(seq, V, k=k, models=chosen, seed=seed, log=err.print)
    table = Table(title=f"{data.name} / {encoder}: next {seq.unit} of {res['windows']['test']:,} held-out windows, "
                  f"pool {res['pool_units']:,} units (context removed)")  # fmt: skip
    shown = ("cosine", "hit@1", "hit@5", "mrr", "doc_mrr", "margin_prev")
    for col in ("model", *shown, f"{HEAD} vs {res['best_baseline']}"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name, row in res["rows"].items():
        d = row[HEAD]
        versus = f"{d['diff']:+.4f} [{d['diff_ci'][0]:+.4f}, {d['diff_ci'][1]:+.4f}] p {d['p']:.2g}"
        table.add_row(name, *[f"{row[m]['mean']:.4f}" for m in shown], versus)
    out.print(table)
    for name, g in res["gates"].items():
        drop = "-" if g["shuffled_relative_drop"] is None else f"{g['shuffled_relative_drop']:.0%}"
        order = "yes" if g["order_ok"] else "no"
        out.print(f"{name}: +1 unit scored highest of +1/+2/-1/-2: {order}; shuffled context lowers {HEAD} by "
                  f"{drop}; p95 {g['latency_us']['p95_us']:.0f} us per prediction")  # fmt: skip
    if out_path is not None:
        from keff.atomic import atomic_write_text

        atomic_write_text(out_path, json.dumps({"data": str(data), "encoder": encoder, **res}, indent=1, default=float))
        out.print(f"wrote {out_path}")


@app.command("fit")
def fit_command(
    data: Path = DATA,
    encoder: str = ENCODER,
    k: int = K,
    model: str = typer.Option(
        "transition",
        help="transition, gru, attention, mixture (trained) or a baseline: ridge, knn-transition, "
        "recency-mean, context-mean, copy-last.",
    ),  # fmt: skip
    loss: str = typer.Option("infonce", help="Trained models: infonce, listwise or cosine."),
    cosine_weight: float = typer.Option(
        1.0,
        "--cosine-weight",
        min=0.0,
        help="Trained models: weight of the cosine term added to a ranking loss "
        "(higher keeps predictions closer to the next unit; keff predict eval chooses it on validation).",
    ),
    seed: int = SEED,
    out_path: Path = typer.Option(..., "--out", help="Where to write the predictor (SEF)."),
    overwrite: bool = OVERWRITE,
) -> None:
    """Fit a predictor on every document (trained models hold out 15% of them for early stopping)."""
    import numpy as np

    from keff.predict import PREDICTORS, SequencePredictor, make_windows
    from keff.predict.models import KINDS

    check_output(out_path, overwrite=overwrite)
    if model not in KINDS and model not in PREDICTORS:
        raise typer.BadParameter(f"{model!r}: choose from {', '.join([*KINDS, *PREDICTORS])}", param_hint="--model")
    seq, V, enc = _units(data, encoder)
    texts, doc, pos = seq.flat()
    w = make_windows(V, np.array(doc), np.array(pos), k, np.arange(len(seq.doc_ids)))
    if model in KINDS:
        m = SequencePredictor(kind=model, loss=loss, cosine_weight=cosine_weight, seed=seed)
        m.fit(w.contexts, w.targets, w.doc, w.position)
        err.print(f"best epoch {m.best_epoch_} of {len(m.history_) - 1}, {m.train_seconds_:.1f} s")
    else:
        m = PREDICTORS[model]().fit(w.contexts, w.targets)
    m.save(out_path, meta={"encoder": {"name": encoder, "fingerprint": enc.fingerprint}, "data": str(data.resolve()),
                           "k": k, "windows": len(w), "seed": seed})  # fmt: skip
    out.print(f"wrote {out_path}: {type(m).__name__} ({model}) on {len(w):,} windows of {len(seq.doc_ids):,} documents")


@app.command("next")
def next_command(
    predictor: Path = typer.Option(..., "--predictor", help="A predictor from keff predict fit (SEF)."),
    index: Path = typer.Option(..., "--index", help="Index folder to retrieve the next unit from."),
    texts: list[str] = typer.Argument(..., help="The units read so far, oldest first (at least the context length)."),
    k: int = typer.Option(5, "-k", min=1, help="Results."),
    as_json: bool = typer.Option(False, "--json", help="Print the hits as JSON."),
) -> None:
    """Predict the next unit's vector from the last units given and show the nearest documents of an index."""
    import json

    from rich.table import Table

    from keff.docindex import Index
    from keff.errors import FingerprintMismatch, KeffError
    from keff.predict import load_predictor

    m, meta = load_predictor(predictor)
    ix = Index.open(index)
    fingerprint = (meta.get("provenance", {}).get("encoder") or {}).get("fingerprint")
    key = next((key for key, spec in ix.manifest.encoders.items() if spec.get("fingerprint") == fingerprint), None)
    if key is None:
        raise FingerprintMismatch(f"{predictor} was fitted on vectors of another encoder than any of index {index}'s")
    if len(texts) < m.context_length_:
        raise KeffError(f"give at least {m.context_length_} texts (the predictor's context length); got {len(texts)}")
    vecs = ix.encoder(key).encode(list(texts[-m.context_length_ :]), kind="doc")
    nxt = m.predict(vecs[None])
    scores, rows = ix.search_vectors({key: nxt / max(float((nxt**2).sum()) ** 0.5, 1e-12)}, k)
    hits = ix.hits(scores, rows)[0]
    if as_json:
        out.print_json(json.dumps({"hits": [h.to_dict() for h in hits]}))
        return
    table = Table(title="predicted next unit: nearest documents")
    for col in ("rank", "score", "id", "text"):
        table.add_column(col)
    for rank, h in enumerate(hits, start=1):
        table.add_row(str(rank), f"{h.score:.4f}", h.id, h.text[:100])
    out.print(table)
