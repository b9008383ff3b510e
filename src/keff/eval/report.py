"""Evaluation results: the :class:`Result` record, its JSON file, run metadata, markdown tables."""

from __future__ import annotations

import importlib.metadata
import json
import platform
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from keff.atomic import atomic_write_text
from keff.errors import FormatError, KeffError
from keff.eval.significance import PairedComparison

RESULT_FORMAT = "keff.result"
RESULT_FORMAT_VERSION = 1

# Heavy libraries whose versions are recorded only when the run already imported them.
_OPTIONAL_MODULES = ("torch", "sentence_transformers", "onnxruntime", "faiss", "transformers")
_CORE_DISTRIBUTIONS = ("numpy", "scipy", "ir_measures", "pytrec_eval-terrier")


@dataclass
class Result:
    """One system evaluated on one dataset.

    Attributes
    ----------
    system : str
        System name, e.g. ``"minilm"``.
    dataset : str
        Dataset and split, e.g. ``"scifact/test"``.
    metrics : dict of str to float
        Aggregate metric values.
    per_query : dict of str to dict of str to float
        metric -> query id -> value (the input of paired significance tests).
    meta : dict
        Free-form JSON-able provenance: versions, encoder fingerprints, data hashes, seed,
        command, latency (see :func:`run_metadata`).
    """

    system: str
    dataset: str
    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The JSON document: ``{"format", "format_version", "system", "dataset", "metrics",
        "per_query", "meta"}`` with plain Python floats."""
        return {
            "format": RESULT_FORMAT,
            "format_version": RESULT_FORMAT_VERSION,
            "system": self.system,
            "dataset": self.dataset,
            "metrics": {m: float(v) for m, v in self.metrics.items()},
            "per_query": {m: {q: float(v) for q, v in vals.items()} for m, vals in self.per_query.items()},
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, doc: Mapping, *, source: str = "result") -> Result:
        """Rebuild a :class:`Result` from :meth:`to_dict` output.

        Raises
        ------
        FormatError
            Naming ``source`` and the field at fault.
        """
        if not isinstance(doc, Mapping):
            raise FormatError(f"{source}: expected a JSON object, got {type(doc).__name__}")
        if doc.get("format") != RESULT_FORMAT:
            raise FormatError(f"{source}: not a keff result (format {doc.get('format')!r}, expected {RESULT_FORMAT!r})")
        if doc.get("format_version") != RESULT_FORMAT_VERSION:
            raise FormatError(
                f"{source}: unsupported format_version {doc.get('format_version')!r} "
                f"(this keff reads {RESULT_FORMAT_VERSION})"
            )
        for key in ("system", "dataset"):
            if not isinstance(doc.get(key), str):
                raise FormatError(f"{source}: field {key!r} must be a string")
        metrics = _number_map(doc.get("metrics"), f"{source}: metrics")
        per_query_doc = doc.get("per_query")
        if not isinstance(per_query_doc, Mapping):
            raise FormatError(f"{source}: field 'per_query' must be an object")
        per_query = {m: _number_map(v, f"{source}: per_query[{m!r}]") for m, v in per_query_doc.items()}
        if not isinstance(doc.get("meta"), Mapping):
            raise FormatError(f"{source}: field 'meta' must be an object")
        return cls(doc["system"], doc["dataset"], metrics, per_query, dict(doc["meta"]))


def _number_map(value: object, where: str) -> dict[str, float]:
    """``value`` as ``{str: float}``, or :class:`FormatError` naming ``where``."""
    if not isinstance(value, Mapping):
        raise FormatError(f"{where} must be an object of numbers")
    out: dict[str, float] = {}
    for key, v in value.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise FormatError(f"{where}[{key!r}] must be a number; got {v!r}")
        out[key] = float(v)
    return out


def run_metadata(
    *,
    seed: int | None,
    command: list[str] | None = None,
    encoders: dict | None = None,
    data_hashes: dict | None = None,
    **extra,
) -> dict:
    """Provenance for a result's ``meta``: versions, platform, time, command, seed, inputs.

    Versions of torch, sentence-transformers, onnxruntime, FAISS and transformers are recorded
    only if the process already imported them; this function never imports them.

    Parameters
    ----------
    seed : int or None
        The run's seed.
    command : list of str, optional
        The command line; defaults to ``sys.argv``.
    encoders : dict, optional
        Encoder name -> fingerprint (or a dict describing it).
    data_hashes : dict, optional
        Input file -> SHA-256.
    **extra
        More JSON-able fields; a name that clashes with a standard field is an error.
    """
    from keff import __version__

    versions = {name: importlib.metadata.version(name) for name in _CORE_DISTRIBUTIONS}
    for name in _OPTIONAL_MODULES:
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = str(getattr(module, "__version__", "unknown"))
    meta = {
        "keff_version": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "timestamp_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": list(sys.argv if command is None else command),
        "seed": seed,
        "encoders": dict(encoders or {}),
        "data_hashes": dict(data_hashes or {}),
    }
    clash = sorted(set(extra) & set(meta))
    if clash:
        raise KeffError(f"extra metadata fields clash with standard ones: {', '.join(clash)}")
    meta.update(extra)
    return meta


def _json_default(obj: object) -> object:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def write_result(result: Result, path: str | Path) -> Path:
    """Write ``result`` as JSON (sorted keys, indent 2) atomically and return the path.

    Raises
    ------
    KeffError
        If a value is NaN/inf or not JSON-serialisable (nothing is written).
    """
    try:
        text = json.dumps(result.to_dict(), sort_keys=True, indent=2, allow_nan=False, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise KeffError(f"cannot write result {result.system!r} on {result.dataset!r} to {path}: {exc}") from exc
    return atomic_write_text(path, text + "\n")


def load_result(path: str | Path) -> Result:
    """Read a result written by :func:`write_result`.

    Raises
    ------
    KeffError
        If the file is missing; :class:`FormatError` (a KeffError) if it is not valid JSON or not
        a keff result of a known version. Messages name the file.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KeffError(f"{path}: cannot read result file ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path}: not a keff result (not UTF-8 text: {exc.reason} at byte {exc.start})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FormatError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from exc
    except RecursionError:
        raise FormatError(f"{path}: not a keff result (JSON nested too deeply)") from None
    return Result.from_dict(doc, source=str(path))


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def markdown_table(
    results: Sequence[Result],
    metrics: Sequence[str] | None = None,
    *,
    digits: int = 4,
    extra_columns: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """A markdown table with one row per result: system, dataset, metrics, extra columns.

    Parameters
    ----------
    results : sequence of Result
    metrics : sequence of str, optional
        Metric columns; default: every metric of the results, in first-seen order. A metric a
        result lacks shows as ``-``.
    digits : int
        Decimals of metric values.
    extra_columns : mapping of str to sequence of str, optional
        Column name -> one value per result (e.g. latency), appended after the metrics.
    """
    if not results:
        raise KeffError("no results to tabulate")
    if metrics is None:
        metrics = list(dict.fromkeys(m for r in results for m in r.metrics))
    extra = dict(extra_columns or {})
    for name, values in extra.items():
        if len(values) != len(results):
            raise KeffError(f"extra column {name!r} has {len(values)} values for {len(results)} results")
    header = ["system", "dataset", *metrics, *extra]
    rows = []
    for i, r in enumerate(results):
        cells = [f"{r.metrics[m]:.{digits}f}" if m in r.metrics else "-" for m in metrics]
        rows.append([r.system, r.dataset, *cells, *(str(v[i]) for v in extra.values())])
    return _table([_cell(h) for h in header], rows)


def comparison_markdown(comparisons: Sequence[PairedComparison], *, digits: int = 4) -> str:
    """A markdown table of paired comparisons: means, difference with CI, and p-values."""
    if not comparisons:
        raise KeffError("no comparisons to tabulate")

    def num(x: float) -> str:
        return f"{x:.{digits}f}"

    def pval(p: float | None) -> str:
        return "-" if p is None else ("<0.0001" if p < 1e-4 else f"{p:.4f}")

    header = [
        "metric",
        "system",
        "baseline",
        "n",
        "system mean",
        "baseline mean",
        "diff",
        "CI",
        "p (rand.)",
        "p (Wilcoxon)",
        "p (Holm)",
    ]
    rows = [
        [
            c.metric,
            c.system,
            c.baseline,
            str(c.n),
            num(c.mean_system),
            num(c.mean_baseline),
            f"{c.diff:+.{digits}f}",
            f"{c.confidence:.0%} [{c.ci_low:+.{digits}f}, {c.ci_high:+.{digits}f}]",
            pval(c.p_randomization),
            pval(c.p_wilcoxon),
            pval(c.p_holm),
        ]
        for c in comparisons
    ]
    return _table(header, rows)
