"""``keff adapt``: train adapters over a frozen encoder on your pairs, and evaluate them honestly."""

from pathlib import Path

import typer

from keff.cli.console import err, out
from keff.cli.outputs import OVERWRITE, check_output
from keff.cli.typer_app import new_app

app = new_app(
    help="Adapters over a frozen encoder: small heads trained with InfoNCE on your pairs, kept only if they help.",
    no_args_is_help=True,
)

DATA = typer.Option(
    ...,
    "--data",
    help="Q/A pairs (.jsonl, read from exactly this path) or a BEIR folder with qrels/train.tsv (train pairs) "
    "and qrels/test.tsv (evaluation).",
)
QA_LAYOUT = typer.Option("auto", "--qa-layout", help="Layout of a Q/A file (see `keff project fit --help`).")
ENCODER = typer.Option("minilm", help="The frozen encoder (registry name).")
HEAD = typer.Option("linear", help="Head: linear (identity-initialised), lowrank (residual), mlp (residual MLP).")
HARD_NEGATIVES = typer.Option(
    16, min=0, help="Hard negatives per question mined from the frozen vectors (0: in-batch only)."
)
VALIDATION = typer.Option(
    "auto",
    help="Hold out whole relevance groups for early stopping and the do-no-harm rule, or whole domains "
    "(--domain-field): the check that a new source is not hurt. auto: domains when --domain-field is given "
    "(on MedQuAD left-one-source-out it kept every source at or above the frozen encoder), else groups.",
)
DOMAIN_FIELD = typer.Option(None, help="Q/A field naming each pair's domain (e.g. MedQuAD's 'source').")
EPOCHS = typer.Option(30, min=1, help="Most epochs (early stopping on validation MRR, patience 5).")
SEED = typer.Option(0, help="Seed of the split, the mining order and torch.")


def _check_choice(value: str, choices: tuple[str, ...], option: str) -> None:
    if value not in choices:
        raise typer.BadParameter(f"{value!r}: choose from {', '.join(choices)}", param_hint=option)


def _pairs(data: Path, qa_layout: str, encoder: str, seed: int):
    """(setup, training rows, whether ``data`` is a BEIR folder) of ``data``."""
    from keff.data import parse_qa_layout
    from keff.errors import DataError
    from keff.projection import beir_setup, qa_setup

    if data.is_dir():
        setup = beir_setup(data, encoder, log=err.print)
        return setup, setup.folds[0][0], True
    if not data.is_file():
        raise DataError("not found: give a Q/A .jsonl file or a BEIR folder", path=data)
    setup = qa_setup(data, parse_qa_layout(qa_layout), encoder, None, seed, log=err.print)
    import numpy as np

    return setup, np.arange(len(setup.Q)), False


def _domains(data: Path, domain_field: str | None, is_beir: bool, n: int):
    import numpy as np

    from keff.data import qa_field
    from keff.errors import DataError

    if domain_field is None:
        return None
    if is_beir:
        raise typer.BadParameter("a BEIR folder has no per-pair domain field", param_hint="--domain-field")
    values = np.array(qa_field(data, domain_field))
    if len(values) != n:
        raise DataError(f"{len(values)} values of {domain_field!r} for {n} pairs", path=data)
    return values


@app.command("fit")
def fit_command(
    data: Path = DATA,
    qa_layout: str = QA_LAYOUT,
    encoder: str = ENCODER,
    kind: str = typer.Option(
        "query",
        help="query (query head only: attach it to an index like any query map) or asym (query and document heads).",
    ),  # fmt: skip
    head: str = HEAD,
    hard_negatives: int = HARD_NEGATIVES,
    validation: str = VALIDATION,
    domain_field: str = DOMAIN_FIELD,
    epochs: int = EPOCHS,
    seed: int = SEED,
    out_path: Path = typer.Option(..., "--out", help="Where to write the adapter (SEF)."),
    log_path: Path = typer.Option(
        None, "--log", help="Guardrail log, one JSON line per epoch (default: next to --out, .guardrails.jsonl)."
    ),
    keep: bool = typer.Option(
        False, "--keep", help="Save the adapter even when it does not beat the identity on validation."
    ),
    overwrite: bool = OVERWRITE,
) -> None:
    """Train an adapter on every training pair and save it only if it beats the frozen encoder on validation."""
    from keff.adapters import HEAD_KINDS, VALIDATIONS
    from keff.adapters.evaluate import KINDS

    _check_choice(kind, tuple(KINDS), "--kind")
    _check_choice(head, HEAD_KINDS, "--head")
    _check_choice(validation, ("auto", *VALIDATIONS), "--validation")
    validation = ("domains" if domain_field else "groups") if validation == "auto" else validation
    if validation == "domains" and domain_field is None:
        raise typer.BadParameter("--validation domains needs --domain-field", param_hint="--validation")
    log_path = log_path or out_path.with_name(out_path.name + ".guardrails.jsonl")
    check_output(out_path, overwrite=overwrite)
    check_output(log_path, overwrite=overwrite, option="--log")
    setup, rows, is_beir = _pairs(data, qa_layout, encoder, seed)
    domains = _domains(data, domain_field, is_beir, len(setup.Q))
    if log_path.exists():
        log_path.unlink()  # --overwrite: the monitor appends
    if is_beir:
        _data_checks(setup, setup.folds[0][0], setup.folds[0][1], "test", log_path)
    adapter = KINDS[kind](head=head, hard_negatives=hard_negatives, validation=validation, epochs=epochs,
                          do_no_harm=not keep, seed=seed)  # fmt: skip
    err.print(f"training a {kind} adapter ({head} head) on {len(rows):,} pairs of {data.name} with {encoder}")
    fit_rows, val_rows = adapter.split(len(rows), setup.groups[rows], None if domains is None else domains[rows])
    _data_checks(setup, rows[fit_rows], rows[val_rows], "validation", log_path)
    adapter.fit(setup.Q[rows], setup.A[rows], setup.groups[rows], None if domains is None else domains[rows],
                log_path=log_path)  # fmt: skip
    _report_fit(adapter, log_path)
    if not adapter.improved_ and not keep:
        err.print(f"[bold red]error:[/] {adapter.decision()}")
        err.print("not saved: the frozen encoder is at least as good here (pass --keep to save the adapter anyway)")
        raise typer.Exit(1)
    meta = {
        "encoder": {"name": encoder, "fingerprint": setup.fingerprint},
        "data": str(data.resolve()),
        "data_sha256": setup.data_sha256,
        "qa_layout": setup.layout,
        "kind": kind,
        "n_pairs": int(len(rows)),
        "decision": adapter.decision(),
        "guardrail_log": str(log_path.resolve()),
        "seed": seed,
    }
    adapter.save(out_path, meta=meta)
    _roundtrip(adapter, out_path, setup.Q[rows[:256]], log_path)
    verdict = "improves on" if adapter.improved_ else "kept (--keep) though it does not beat"
    out.print(f"wrote {out_path}: {kind} adapter ({head}), {adapter.n_parameters():,} parameters; {verdict} the "
              f"frozen encoder on validation")  # fmt: skip


def _data_checks(setup, train_rows, other_rows, other: str, log_path: Path) -> None:
    """Leakage (same group, same text) and question-length parity between the training pairs and
    the ``other`` questions, logged before training (epoch -1); a problem is printed, not fatal."""
    import numpy as np

    from keff.train.guardrails import GuardrailMonitor, leakage, split_parity

    texts = setup.query_texts
    a, b = [texts[i] for i in train_rows], [texts[i] for i in other_rows]
    groups = np.asarray(setup.groups)
    checks = [
        leakage(a, b, a_groups=groups[train_rows], b_groups=groups[other_rows]),
        split_parity([len(t.split()) for t in a], [len(t.split()) for t in b], what="question_words"),
    ]
    GuardrailMonitor(stop_on_fail=False, log_path=log_path).record(-1, checks)
    for c in checks:
        colour = "green" if c.status == "ok" else "yellow"
        err.print(f"[{colour}]{c.status}[/] train vs {other}: {c.name}: {c.message}")


def _report_fit(adapter, log_path: Path) -> None:
    """The decision line and every guardrail that warned or failed, with the log's path."""
    err.print(adapter.decision())
    flagged = [(e["epoch"], c) for e in adapter.guardrail_log_ for c in e["checks"] if c["status"] != "ok"]
    for epoch, c in flagged:
        err.print(f"[yellow]guardrail {c['status']}[/] epoch {epoch}: {c['name']}: {c['message']}")
    identity = adapter.guardrail_log_[-1]["checks"]
    moved = next((c["message"] for c in identity if c["name"] == "identity_distance"), "")
    err.print(
        f"guardrails: {len(adapter.guardrail_log_)} epochs checked, {len(flagged)} flagged; {moved}; log {log_path}"
    )


def _roundtrip(adapter, path: Path, probe, log_path: Path) -> None:
    """Reload the saved file and check it reproduces the live adapter's outputs exactly."""
    from keff.adapters import AsymAdapter
    from keff.errors import KeffError
    from keff.maps import load_map
    from keff.train.guardrails import GuardrailMonitor, checkpoint_roundtrip

    if isinstance(adapter, AsymAdapter):

        def live(x):
            return adapter.transform_queries(x), adapter.transform_docs(x)

        def reload():
            loaded = AsymAdapter.load(path)[0]
            return lambda x: (loaded.transform_queries(x), loaded.transform_docs(x))
    else:
        live, reload = adapter.transform, lambda: load_map(path)[0].transform
    check = checkpoint_roundtrip(live, reload, probe)
    GuardrailMonitor(stop_on_fail=False, log_path=log_path).record(-1, [check])
    if check.status != "ok":
        path.unlink(missing_ok=True)
        raise KeffError(f"{path}: {check.message}; the file was removed")


@app.command("eval")
def eval_command(
    data: Path = DATA,
    qa_layout: str = QA_LAYOUT,
    encoder: str = ENCODER,
    kinds: str = typer.Option("query,asym", help="Comma-separated adapter kinds (query, asym)."),
    head: str = HEAD,
    hard_negatives: int = HARD_NEGATIVES,
    protocol: str = typer.Option(
        "auto",
        help="kfold (grouped 5-fold), split (a BEIR folder's train -> test), domains (leave one domain out, "
        "needs --domain-field); auto: split for a BEIR folder, else kfold.",
    ),
    validation: str = VALIDATION,
    domain_field: str = DOMAIN_FIELD,
    epochs: int = EPOCHS,
    seed: int = SEED,
) -> None:
    """Adapters against the frozen encoder on held-out questions, with 95% CIs and paired tests."""
    from keff.adapters import HEAD_KINDS, VALIDATIONS
    from keff.adapters.evaluate import KINDS, domain_folds, evaluate_adapters
    from keff.projection import summarise

    names = [k.strip() for k in kinds.split(",") if k.strip()]
    for k in names:
        _check_choice(k, tuple(KINDS), "--kinds")
    _check_choice(head, HEAD_KINDS, "--head")
    _check_choice(validation, ("auto", *VALIDATIONS), "--validation")
    validation = ("domains" if domain_field else "groups") if validation == "auto" else validation
    _check_choice(protocol, ("auto", "kfold", "split", "domains"), "--protocol")
    needs_domains = protocol == "domains" or validation == "domains"
    if needs_domains and domain_field is None:
        raise typer.BadParameter("--protocol/--validation domains needs --domain-field", param_hint="--domain-field")
    setup, _, is_beir = _pairs(data, qa_layout, encoder, seed)
    if protocol == "auto":
        protocol = "split" if is_beir else "kfold"
    if protocol == "split" and not is_beir:
        raise typer.BadParameter("a Q/A file has no train/test split: use kfold or domains", param_hint="--protocol")
    if protocol != "split" and is_beir:
        raise typer.BadParameter("a BEIR folder is evaluated on its own split", param_hint="--protocol")
    domains = _domains(data, domain_field, is_beir, len(setup.Q))
    folds = domain_folds(domains)[1] if protocol == "domains" else setup.folds
    params = {"head": head, "hard_negatives": hard_negatives, "validation": validation, "epochs": epochs}
    methods = {"identity": None, **{f"{k} adapter (as trained)": (KINDS[k], params) for k in names}}
    defaults = {f"{k} adapter (do-no-harm)": f"{k} adapter (as trained)" for k in names}
    outcomes = evaluate_adapters(setup, folds, methods, defaults, domains=domains, seed=seed, log=err.print)
    _table(summarise(outcomes, setup.metrics, seed), setup, data, encoder, protocol, len(folds))
    for name, ids in setup.slices.items():
        _table(summarise(outcomes, setup.metrics, seed, query_ids=ids), setup, data, encoder, protocol, len(folds),
               slice_name=name)  # fmt: skip


def _table(rows, setup, data: Path, encoder: str, protocol: str, n_folds: int, slice_name: str | None = None) -> None:
    from rich.table import Table

    head = setup.metrics[0]
    what = {"kfold": f"{n_folds} grouped folds", "split": "the test split", "domains": f"{n_folds} held-out domains"}
    title = f"{data.name} / {encoder}: held-out questions of {what[protocol]}"
    if slice_name:
        title += f", slice: {slice_name} (n={rows[0]['n_queries']})"
    table = Table(title=title)
    table.add_column("method")
    for mt in setup.metrics:
        table.add_column(mt, justify="right")
    table.add_column(f"{head} vs frozen (95% CI)", justify="right")
    table.add_column("p", justify="right")
    table.add_column("accepted folds", justify="right")
    for row in rows:
        m = row["metrics"]
        d = m[head]
        accepted = row.get("accepted_by_do_no_harm")
        table.add_row(
            row["method"],
            *[f"{m[mt]['mean']:.4f}" for mt in setup.metrics],
            f"{d['diff']:+.4f} [{d['diff_ci'][0]:+.4f}, {d['diff_ci'][1]:+.4f}]",
            f"{d['p']:.2g}",
            "" if accepted is None else f"{accepted:.0%}",
        )
    out.print(table)
