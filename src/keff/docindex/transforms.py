"""Learned transforms an index applies at query time: attached SEF artifacts, checked and ordered.

Three kinds of SEF file attach to an index (:meth:`keff.docindex.Index.attach`,
``keff index attach``):

- **query map** (kind ``"map"``: a projection or contrastive map from ``keff project fit`` or
  ``keff index fit-map``, or an alignment map whose source and target are the same encoder):
  applied to one index encoder's query vectors, then L2-normalised, before that encoder's
  document vectors are searched. The map's recorded encoder (``provenance.encoder``, or
  ``provenance.source`` for an alignment map) must have the fingerprint of that index encoder,
  and it must map that encoder's width to itself. Several maps on one encoder are composed in
  the order they were attached.
- **fusion weights** (kind ``"fusion-weights"``, :class:`FusionWeights`, from
  ``keff index fit-fusion``): one convex weight per index encoder (recorded with its
  fingerprint); search ranks by the weighted sum of the encoders' cosines. An encoder of weight
  0 is not even run on the queries.
- **specialists** (kind ``"specialist"``, :class:`keff.fusion.Specialist`): one per index
  encoder, fingerprints matching; each query's weights come from the specialists' sigma^2 of it
  (:func:`keff.fusion.fusion_weights` with ``"kalman"``: precision weighting), computed from the
  encoders' own query vectors (before any query map: that is what the specialists were fitted
  on). They weight nothing until every index encoder has one.

An index has at most one weighting (fusion weights or a set of specialists); without one, the
encoders' cosines count equally. Attaching copies the file into ``transforms/<sha256>.sef`` and
records it in the manifest (``name``, ``kind``, ``path``, ``sha256``, the encoder keys it
applies to, the file it came from) in the same atomic commit as every index update. Opening the
index verifies each file's SHA-256 against the manifest, loads it with the safe SEF loaders (an
artifact is untrusted: no code runs, no model it names is loaded; the index's own encoders,
already fingerprint-checked, are the only ones used) and checks it against the index's encoders
again; any mismatch is refused, never served.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from keff.adapters import AsymAdapter  # importing keff.adapters registers the query adapter's map kind
from keff.arrays import l2_normalize
from keff.atomic import atomic_write_bytes, sha256_bytes, sha256_file
from keff.docindex.manifest import FileEntry, Manifest, check_relative, verify
from keff.errors import DataError, FingerprintMismatch, FormatError, KeffError
from keff.fusion.methods import fusion_weights
from keff.fusion.specialist import Specialist
from keff.fusion.vector import WEIGHT_SUM_TOL
from keff.maps.base import Map, map_from_description
from keff.sef import load_sef, save_sef, shown

MAP = "query-map"
FUSION = "fusion-weights"
SPECIALIST = "specialist"
ASYM = "asym-adapter"
#: Transform kinds as the manifest records them.
KINDS = (MAP, FUSION, SPECIALIST, ASYM)
#: The SEF ``kind`` of each transform kind.
SEF_KINDS = {"map": MAP, FUSION: FUSION, "specialist": SPECIALIST, ASYM: ASYM}
FOLDER = "transforms"
_NAME = re.compile(r"^[\w][\w.+-]{0,99}$")
_MAX_ENCODERS = 64


# -- fusion weights: the SEF artifact -----------------------------------------------------------
@dataclass
class FusionWeights:
    """One convex weight per encoder, fitted on training queries (kind ``"fusion-weights"``).

    Attributes
    ----------
    encoders : list of dict
        ``{"name", "fingerprint", "key"}`` of each encoder, in the order of ``weights``.
    weights : ndarray, shape (S,)
        Finite, >= 0, summing to 1.
    info : dict
        How they were fitted (objective and its value, training data hashes, queries, grid).
    """

    encoders: list[dict[str, str]]
    weights: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.weights = _check_weights(self.weights, len(self.encoders))

    def save(self, path: str | Path) -> Path:
        """Write the weights to one SEF file."""
        meta = {"kind": FUSION, "encoders": self.encoders, "info": self.info}
        return save_sef(path, {"weights": np.asarray(self.weights, dtype=np.float64)}, meta)

    @classmethod
    def load(cls, path: str | Path) -> FusionWeights:
        """Read weights saved by :meth:`save` (verified SEF; every field checked)."""
        arrays, meta = load_sef(path, kind=FUSION)
        return cls.from_sef(arrays, meta, path)

    @classmethod
    def from_sef(cls, arrays: dict[str, np.ndarray], meta: dict[str, Any], path: str | Path) -> FusionWeights:
        """Rebuild from verified SEF content, checking every field (FormatError naming ``path``)."""
        encoders, info = meta.get("encoders"), meta.get("info", {})
        if not isinstance(encoders, list) or not 1 <= len(encoders) <= _MAX_ENCODERS:
            raise FormatError(f"{path}: fusion weights must list 1 to {_MAX_ENCODERS} encoders")
        clean = []
        for i, enc in enumerate(encoders):
            if not isinstance(enc, dict) or not all(isinstance(enc.get(f), str) and enc.get(f)
                                                    for f in ("name", "fingerprint")):  # fmt: skip
                raise FormatError(f"{path}: encoder {i} of the fusion weights lacks a name or fingerprint")
            clean.append({f: str(enc[f]) for f in ("name", "fingerprint", "key") if isinstance(enc.get(f), str)})
        if len({e["fingerprint"] for e in clean}) != len(clean):
            raise FormatError(f"{path}: the fusion weights list one encoder fingerprint twice")
        if set(arrays) != {"weights"}:
            raise FormatError(f"{path}: fusion weights hold exactly one array 'weights'; found {shown(sorted(arrays))}")
        if not isinstance(info, dict):
            raise FormatError(f"{path}: fusion weights info must be a JSON object")
        try:
            return cls(clean, arrays["weights"], info)
        except KeffError as exc:
            raise FormatError(f"{path}: {exc}") from None

    def by_key(self, encoders: dict[str, dict]) -> dict[str, float]:
        """Index encoder key -> weight, matching encoders by fingerprint.

        Raises
        ------
        FingerprintMismatch
            An index encoder has no weight, or a weight's encoder is not in the index.
        """
        mine = {e["fingerprint"]: (e, float(w)) for e, w in zip(self.encoders, self.weights)}
        theirs = {str(spec.get("fingerprint")): key for key, spec in encoders.items()}
        lacking = [key for fp, key in theirs.items() if fp not in mine]
        extra = [e for fp, (e, _) in mine.items() if fp not in theirs]
        if lacking or extra:
            raise FingerprintMismatch(
                "the fusion weights were fitted for encoders "
                + ", ".join(f"{e['name']} ({e['fingerprint'][:12]})" for e in self.encoders)
                + "; the index has "
                + ", ".join(f"{key} ({str(spec.get('fingerprint'))[:12]})" for key, spec in encoders.items())
                + ": fit them on this index (keff index fit-fusion)"
            )
        return {key: mine[fp][1] for fp, key in theirs.items()}


def _check_weights(weights: Any, n: int) -> np.ndarray:
    w = np.asarray(weights)
    if w.shape != (n,) or w.dtype.kind != "f":
        raise KeffError(f"need {n} floating-point weights, one per encoder; got {w.dtype} {w.shape}")
    w = w.astype(np.float64)
    if not (np.isfinite(w).all() and (w >= 0).all() and abs(w.sum() - 1.0) <= WEIGHT_SUM_TOL):
        raise KeffError(f"weights must be finite, >= 0 and sum to 1; got {w.tolist()}")
    return w


# -- checking an artifact against the index's encoders --------------------------------------------
def _who(encoders: dict[str, dict]) -> str:
    return ", ".join(f"{key} ({spec.get('name')}, fingerprint {str(spec.get('fingerprint'))[:12]})"
                     for key, spec in encoders.items())  # fmt: skip


def _encoder_for(fingerprint: str, name: str, what: str, encoders: dict[str, dict], key: str | None) -> str:
    """The index encoder key of an artifact fitted on encoder (``name``, ``fingerprint``)."""
    if key is not None:
        if key not in encoders:
            raise KeffError(f"the index has no encoder {key!r} (it has {', '.join(encoders)})")
        have = str(encoders[key].get("fingerprint"))
        if have != fingerprint:
            raise FingerprintMismatch(
                f"{what} was fitted on encoder {shown(name)} (fingerprint {fingerprint[:12]}), but index encoder "
                f"{key} is {encoders[key].get('name')!r} (fingerprint {have[:12]}): it does not fit"
            )
        return key
    for k, spec in encoders.items():
        if str(spec.get("fingerprint")) == fingerprint:
            return k
    raise FingerprintMismatch(
        f"{what} was fitted on encoder {shown(name)} (fingerprint {fingerprint[:12]}), which is none of the "
        f"index's encoders: {_who(encoders)}"
    )


def map_encoder(meta: dict[str, Any], what: str) -> tuple[str, str]:
    """(name, fingerprint) of the encoder whose query vectors a map takes, from its provenance.

    A projection map records ``provenance.encoder``; an alignment map ``provenance.source`` (and
    ``provenance.target``, which must be the same encoder: a map into another encoder's space
    does not fit an index of this one's vectors).
    """
    prov = meta.get("provenance")
    prov = prov if isinstance(prov, dict) else {}
    record = prov.get("encoder") if isinstance(prov.get("encoder"), dict) else prov.get("source")
    if not isinstance(record, dict) or not isinstance(record.get("fingerprint"), str) or not record["fingerprint"]:
        raise FingerprintMismatch(
            f"{what} does not record the encoder it was fitted on (provenance.encoder or provenance.source with a "
            "fingerprint), so keff cannot check that it fits an index encoder; refit it with keff project fit or "
            "keff index fit-map"
        )
    target = prov.get("target")
    if record is prov.get("source") and isinstance(target, dict) and target.get("fingerprint") != record["fingerprint"]:
        raise KeffError(
            f"{what} maps {shown(record.get('name'))} vectors into the space of {shown(target.get('name'))}: a query "
            "map must stay in its encoder's space (queries and documents of one index encoder)"
        )
    return str(record.get("name")), record["fingerprint"]


def _check_map(m: Map, meta: dict, what: str, encoders: dict[str, dict], key: str | None) -> str:
    name, fingerprint = map_encoder(meta, what)
    key = _encoder_for(fingerprint, name, what, encoders, key)
    dim = int(encoders[key]["dim"])
    if (m.source_dim_, m.target_dim_) != (dim, dim):
        raise KeffError(
            f"{what} maps {m.source_dim_}-d to {m.target_dim_}-d vectors, but index encoder {key} is {dim}-d: "
            "a query map must take and return that encoder's width"
        )
    return key


def _check_specialist(spec: Specialist, what: str, encoders: dict[str, dict], key: str | None) -> str:
    key = _encoder_for(spec.fingerprint, spec.encoder, what, encoders, key)
    dim = int(encoders[key]["dim"])
    own = spec.uncertainty.n_features_in_ if spec.map is None else spec.map.source_dim_
    if own != dim:
        raise KeffError(f"{what} takes {own}-d vectors of its encoder, but index encoder {key} is {dim}-d")
    return key


@dataclass
class Attached:
    """One loaded, checked transform.

    Attributes
    ----------
    name, kind : str
        As the manifest records them.
    keys : list of str
        Index encoder keys it applies to.
    obj : Map, FusionWeights or Specialist
    summary : str
        One line for listings.
    weights : dict
        Encoder key -> weight (fusion weights only).
    provenance : dict
        What a map records about its fitting (``meta["provenance"]``; maps only).
    """

    name: str
    kind: str
    keys: list[str]
    obj: Any
    summary: str
    weights: dict[str, float] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)


def load_artifact(
    path: Path, encoders: dict[str, dict], *, key: str | None = None, kind: str | None = None, name: str = ""
) -> Attached:
    """Load a SEF transform (safe loaders only) and check it against the index's ``encoders``.

    Parameters
    ----------
    path : Path
        The SEF file.
    encoders : dict
        The manifest's encoders (key -> ``{"name", "fingerprint", "dim", ...}``).
    key : str, optional
        The index encoder a map or specialist applies to (default: the one with its fingerprint).
    kind : str, optional
        The expected transform kind (one of :data:`KINDS`); default: whatever the file holds.
    name : str
        Its name in the index, for messages.

    Raises
    ------
    FormatError
        A damaged file, or a SEF kind that is not a transform.
    FingerprintMismatch, KeffError
        An artifact fitted on another encoder, of the wrong width, or covering other encoders.
    """
    arrays, meta = load_sef(path)
    found = SEF_KINDS.get(meta.get("kind"))  # type: ignore[arg-type]
    if found is None:
        raise FormatError(
            f"{path}: holds a {shown(meta.get('kind'))}, not a transform an index can apply (a map, fusion weights, "
            "a specialist or an asymmetric adapter)"
        )
    if kind is not None and found != kind:
        raise FormatError(f"{path}: holds a {found}, but the index recorded a {kind}")
    what = f"{found} {name!r}" if name else f"{found} {path.name}"
    if found == MAP:
        try:
            m = map_from_description(meta, arrays)
        except FormatError as exc:
            raise FormatError(f"{path}: {exc}") from None
        k = _check_map(m, meta, what, encoders, key)
        prov = meta.get("provenance") if isinstance(meta.get("provenance"), dict) else {}
        return Attached(name, found, [k], m, f"{type(m).__name__} on {k}", provenance=prov)
    if found == ASYM:
        adapter = AsymAdapter.load(path)[0]
        prov = meta.get("provenance") if isinstance(meta.get("provenance"), dict) else {}
        enc_name, fingerprint = map_encoder(meta, what)
        k = _encoder_for(fingerprint, enc_name, what, encoders, key)
        if adapter.n_features_in_ != int(encoders[k]["dim"]):
            raise KeffError(f"{what} takes {adapter.n_features_in_}-d vectors, but index encoder {k} is "
                            f"{encoders[k]['dim']}-d")  # fmt: skip
        return Attached(name, found, [k], adapter, f"asymmetric adapter ({adapter.head}) on {k}", provenance=prov)
    if found == SPECIALIST:
        spec = Specialist.load(path)
        k = _check_specialist(spec, what, encoders, key)
        kind_of = spec.uncertainty.describe()["type"]
        return Attached(name, found, [k], spec, f"specialist {shown(spec.name, 40)} ({kind_of}) on {k}")
    fw = FusionWeights.from_sef(arrays, meta, path)
    if key is not None:
        raise KeffError("fusion weights cover every index encoder; do not name one (--encoder)")
    weights = fw.by_key(encoders)
    summary = "weights " + ", ".join(f"{k} {w:.2f}" for k, w in weights.items())
    return Attached(name, found, list(weights), fw, summary, weights)


# -- the attached transforms of one index ---------------------------------------------------------
class Transforms:
    """The transforms an index applies, in manifest order (see the module docstring).

    Attributes
    ----------
    items : list of Attached
    notes : list of str
        What is attached but inactive, and why.
    """

    def __init__(self, items: Sequence[Attached], keys: Sequence[str]) -> None:
        self.items = list(items)
        self.encoder_keys = list(keys)
        #: (encoder key, query function) of every query map and adapter query head, in order.
        self.maps = [
            (t.keys[0], t.obj.transform_queries if t.kind == ASYM else t.obj.transform)
            for t in self.items
            if t.kind in (MAP, ASYM)
        ]
        #: Encoder key -> document head of an attached asymmetric adapter.
        self.doc_heads = {t.keys[0]: t.obj.transform_docs for t in self.items if t.kind == ASYM}
        fusion = [t for t in self.items if t.kind == FUSION]
        self.fusion: dict[str, float] | None = None
        self.notes: list[str] = []
        specialists = {t.keys[0]: t.obj for t in self.items if t.kind == SPECIALIST}
        if fusion:
            self.fusion = dict(fusion[-1].weights)
        self.specialists: dict[str, Specialist] = {}
        if specialists:
            missing = [k for k in self.encoder_keys if k not in specialists]
            if missing:
                self.notes.append(
                    f"specialists weigh nothing until every encoder has one (missing: {', '.join(missing)})"
                )
            else:
                self.specialists = specialists

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Attached]:
        return iter(self.items)

    @property
    def weighting(self) -> str:
        """How the encoders' cosines are combined: ``equal``, ``fusion-weights`` or ``specialists (kalman)``."""
        if self.fusion is not None:
            return FUSION
        return "specialists (kalman)" if self.specialists else "equal"

    def keys(self, keys: Sequence[str] | None = None) -> list[str]:
        """The encoders a search runs (of ``keys``, default all): those of weight 0 are skipped."""
        keys = list(self.encoder_keys if keys is None else keys)
        if self.fusion is None:
            return keys
        kept = [k for k in keys if self.fusion.get(k, 0.0) > 0]
        return kept or keys

    def apply_maps(self, queries: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The query maps applied, in order, each output L2-normalised."""
        out = dict(queries)
        for key, fn in self.maps:
            if key in out:
                out[key] = l2_normalize(fn(out[key]))
        return out

    def apply(self, queries: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        """Query vectors as searched and the encoders' weights.

        Parameters
        ----------
        queries : dict of str to ndarray
            Encoder key -> (n, dim) query vectors as the encoder made them.

        Returns
        -------
        queries : dict
            The same keys, query maps applied.
        weights : ndarray or None
            (S,) fusion weights or (S, n) specialist weights in the order of ``queries``; None
            for equal weights.
        """
        keys = list(queries)
        mapped = self.apply_maps(queries)
        if len(keys) < 2:
            return mapped, None
        if self.fusion is not None and all(k in self.fusion for k in keys):
            w = np.array([self.fusion[k] for k in keys], dtype=np.float64)
            if w.sum() <= 0:
                raise KeffError(f"the fusion weights give every encoder searched ({', '.join(keys)}) weight 0")
            return mapped, (w / w.sum()).astype(np.float32)
        if self.specialists and all(k in self.specialists for k in keys):
            var = np.stack([self.specialists[k].variance(self.specialists[k].to_frame(queries[k])) for k in keys])
            return mapped, fusion_weights(var, "kalman").astype(np.float32)
        return mapped, None


def _check_entry(root: Path, entry: Any, i: int, encoders: dict[str, dict]) -> dict:
    where = f"{root}: transform {i} of the manifest"
    if not isinstance(entry, dict):
        raise FormatError(f"{where} is not an object")
    name, kind, keys = entry.get("name"), entry.get("kind"), entry.get("encoders")
    if not isinstance(name, str) or not _NAME.match(name):
        raise FormatError(f"{where} has a bad name {shown(name)}")
    if kind not in KINDS:
        raise FormatError(f"{where} ({name}) has an unknown kind {shown(kind)}")
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        raise FormatError(f"{where} ({name}) lists no encoder keys")
    missing = [k for k in keys if k not in encoders]
    if missing:
        raise KeffError(
            f"{root}: transform {name!r} applies to encoder {missing[0]!r}, which the index no longer has; detach "
            f"it with: keff index detach {root} {name}"
        )
    if not isinstance(entry.get("path"), str) or not isinstance(entry.get("sha256"), str):
        raise FormatError(f"{where} ({name}) has no file entry")
    return entry


def load_transforms(root: Path, manifest: Manifest, *, check: bool = True) -> Transforms:
    """Every transform the manifest lists, verified, loaded and checked (see the module docstring).

    Raises
    ------
    FormatError
        A damaged or modified file (SHA-256), or a malformed entry.
    FingerprintMismatch, KeffError
        A transform that no longer fits the index's encoders (the message says how to detach it).
    """
    items = []
    for i, raw in enumerate(manifest.transforms):
        entry = _check_entry(root, raw, i, manifest.encoders)
        where = f"transform {entry['name']!r}"
        file = FileEntry(entry["path"], entry["sha256"])
        key = entry["encoders"][0] if entry["kind"] != FUSION else None
        try:
            path = verify(root, file, where) if check else check_relative(root, file.path, where)
            item = load_artifact(path, manifest.encoders, key=key, kind=entry["kind"], name=entry["name"])
        except KeffError as exc:
            raise type(exc)(f"{exc}; to serve the index without it: keff index detach {root} {entry['name']}") from None
        if entry["kind"] == FUSION and sorted(item.keys) != sorted(entry["encoders"]):
            raise FormatError(f"{root}: {where} lists encoders {entry['encoders']} but its file covers {item.keys}")
        items.append(item)
    return Transforms(items, list(manifest.encoders))


# -- attaching and detaching (the index commits the manifest) --------------------------------------
def _conflict(manifest: Manifest, item: Attached, name: str) -> str | None:
    """Why ``item`` cannot join the manifest's transforms (None if it can)."""
    others = [t for t in manifest.transforms if t.get("name") != name]
    if item.kind == ASYM:
        same = [t for t in others if t.get("kind") == ASYM and t.get("encoders") == item.keys]
        if same:
            return f"encoder {item.keys[0]} already has asymmetric adapter {same[0]['name']!r}"
    weighting = [t for t in others if t.get("kind") in (FUSION, SPECIALIST)]
    if item.kind == FUSION and weighting:
        return f"the index already weights its encoders with {weighting[0]['kind']} {weighting[0]['name']!r}"
    if item.kind == SPECIALIST:
        if any(t.get("kind") == FUSION for t in weighting):
            fusion = next(t for t in weighting if t.get("kind") == FUSION)
            return f"the index already weights its encoders with fusion weights {fusion['name']!r}"
        same = [t for t in weighting if t.get("kind") == SPECIALIST and t.get("encoders") == item.keys]
        if same:
            return f"encoder {item.keys[0]} already has specialist {same[0]['name']!r}"
    return None


def stage_transform(
    root: Path,
    manifest: Manifest,
    source: str | Path,
    *,
    name: str | None = None,
    encoder: str | None = None,
    replace: bool = False,
) -> dict:
    """Copy a SEF transform into ``root/transforms/`` and add its entry to ``manifest`` (not yet
    committed: the caller holds the writer lock and commits). Returns the entry.

    Raises
    ------
    DataError
        No such file, or a bad name.
    KeffError
        A name already attached (without ``replace``), a second weighting, or an artifact that
        does not fit the index (see :func:`load_artifact`).
    """
    src = Path(source).expanduser()
    if not src.is_file():
        raise DataError("no such file (give a .sef transform)", path=src)
    name = src.stem if name is None else name
    if not isinstance(name, str) or not _NAME.match(name):
        raise DataError(
            f"bad transform name {shown(name)}: use up to 100 letters, digits, '_', '.', '+' or '-' (--name)", path=src
        )
    data = src.read_bytes()
    digest = sha256_bytes(data)
    rel = f"{FOLDER}/{digest}.sef"
    dest = root / FOLDER / f"{digest}.sef"
    if not dest.is_file() or sha256_file(dest) != digest:
        atomic_write_bytes(dest, data)
    try:
        item = load_artifact(dest, manifest.encoders, key=encoder, name=name)  # what is checked is what is kept
        if any(t.get("name") == name for t in manifest.transforms) and not replace:
            raise KeffError(
                f"the index already has a transform named {name!r}: choose another name (--name), detach it first, "
                "or replace it (--overwrite)"
            )
        if item.kind == ASYM and manifest.backend.get("kind") != "exact":
            raise KeffError(
                f"cannot attach asymmetric adapter {name!r}: its document head transforms the stored document "
                f"vectors, but this index searches a {manifest.backend.get('kind')} structure built on the plain "
                "vectors; rebuild the index with --backend exact, or fit a query adapter (keff adapt fit --kind query)"
            )
        why = _conflict(manifest, item, name)
        if why:
            raise KeffError(f"cannot attach {item.kind} {name!r}: {why}; detach it first (keff index detach)")
    except BaseException:
        if not any(t.get("path") == rel for t in manifest.transforms):
            dest.unlink(missing_ok=True)
        raise
    entry = {
        "name": name,
        "kind": item.kind,
        "path": rel,
        "sha256": digest,
        "encoders": item.keys,
        "file": src.name,
        "summary": item.summary,
        "attached": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    for i, t in enumerate(manifest.transforms):
        if t.get("name") == name:
            manifest.transforms[i] = entry
            break
    else:
        manifest.transforms.append(entry)
    return entry


def unstage_transform(manifest: Manifest, name: str) -> dict:
    """Remove the transform ``name`` from ``manifest`` (not yet committed); returns its entry."""
    for i, t in enumerate(manifest.transforms):
        if isinstance(t, dict) and t.get("name") == name:
            return manifest.transforms.pop(i)
    names = [str(t.get("name")) for t in manifest.transforms if isinstance(t, dict)]
    raise KeffError(f"the index has no transform named {name!r} (it has {', '.join(names) or 'none'})")
