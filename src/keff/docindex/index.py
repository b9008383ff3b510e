"""A persistent index of a user's documents: build, open, add, remove, search.

An index folder holds a manifest (the commit point, :mod:`keff.docindex.manifest`), document
segments (:mod:`keff.docindex.documents`), one vector store per encoder
(:mod:`keff.docindex.vectors`), the search backend's structures (:mod:`keff.docindex.backends`)
and attached SEF transforms. Every update writes new files, then commits the manifest in one
atomic rename, so a crash at any point leaves the previous state usable; one writer at a time
holds the folder's lock. Encoding goes through keff's embedding cache, chunk by chunk, so an
interrupted build or add re-run encodes only what was not encoded before.

Opening checks the manifest, every file's SHA-256, dtypes and shapes, and each encoder's
fingerprint against the one that made the vectors; a mismatch is refused, never served.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from keff.arrays import as_matrix, l2_normalize
from keff.docindex.backends import KINDS, Searcher, backend_spec, build_ann, load_ann
from keff.docindex.documents import Document, DocumentStore, check_documents, write_removed, write_segment
from keff.docindex.engines import Engine, InProcessEngine, get_engine
from keff.docindex.manifest import MANIFEST, Manifest, check_relative, read_manifest, write_manifest
from keff.docindex.milvus import MilvusCollection, after_commit, after_staged_build, before_replace, drop_replaced
from keff.docindex.transforms import Transforms, load_transforms, stage_transform, unstage_transform
from keff.docindex.vectors import encoder_key, load_vectors, write_vectors
from keff.encoders import get_encoder
from keff.encoders.registry import encoder_for_artifact
from keff.errors import DataError, FormatError, KeffError
from keff.index.numpy_backend import topk_rows

LOCK = ".lock"


@dataclass
class Hit:
    """One search result."""

    id: str
    score: float
    text: str
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "score": self.score, "text": self.text, "meta": self.meta}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _record(action: str, **details: Any) -> dict[str, Any]:
    from keff import __version__

    return {"action": action, "time": _now(), "command": list(sys.argv), "keff_version": __version__, **details}


@contextlib.contextmanager
def writer_lock(root: Path) -> Iterator[None]:
    """Hold the index's write lock (one writer at a time); refuse at once if another holds it."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK, "a+b") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise KeffError(f"{root}: another keff process is writing this index; try again when it is done") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def referenced_files(manifest: Manifest) -> set[str]:
    """Every relative path the manifest names (recursively through its fields)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("path"), str) and isinstance(node.get("sha256"), str):
                found.add(node["path"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(manifest.to_dict())
    return found


def collect_garbage(root: Path, manifest: Manifest) -> int:
    """Remove data files the committed manifest does not name (left by updates that crashed or
    were superseded); returns how many were removed."""
    keep = referenced_files(manifest)
    removed = 0
    for sub in ("docs", "vectors", "ann", "transforms", "upgrade"):
        folder = root / sub
        if not folder.is_dir():
            continue
        for path in folder.rglob("*"):
            if path.is_file() and path.relative_to(root).as_posix() not in keep:
                path.unlink(missing_ok=True)
                removed += 1
    return removed


class Index:
    """A persistent index (see the module docstring); get one with :meth:`build` or :meth:`open`.

    Attributes
    ----------
    root : Path
        The index folder.
    manifest : Manifest
        The committed state this object serves.
    documents : DocumentStore
        Ids, texts and metadata of every row.
    vectors : dict of str to ndarray
        Encoder key -> (n_rows, dim) vectors.
    """

    def __init__(self, root: Path, manifest: Manifest, *, check: bool = True, encoders: dict | None = None) -> None:
        self.root = root
        self.manifest = manifest
        self.documents = DocumentStore(root, manifest.documents, check=check)
        rows = [int(seg.get("rows", 0)) for seg in manifest.documents.get("segments", [])]
        self.vectors: dict[str, np.ndarray] = {}
        self._searchers: dict[str, Searcher] = {}
        self._encoders: dict[str, Any] = {}
        self._explicit = dict(encoders or {})
        #: The index's Milvus collection (backend ``milvus``, :mod:`keff.docindex.milvus`), or None.
        self.milvus = None
        if manifest.backend.get("kind") == "milvus":
            self.milvus = MilvusCollection(root, manifest, self.documents)
        #: The attached transforms, applied by :meth:`search` (:mod:`keff.docindex.transforms`).
        self.transforms: Transforms = load_transforms(root, manifest, check=check)
        for key, spec in manifest.encoders.items():
            if not isinstance(spec, dict):
                raise FormatError(f"{root / MANIFEST}: encoder {key!r} is not an object")
            self.vectors[key] = load_vectors(root, key, spec, rows, check=check)
            if key in self.transforms.doc_heads:
                self.vectors[key] = self._adapted(key, spec)
            ann = None
            if self.milvus is not None:
                ann = self.milvus.field(key)
            elif spec.get("ann") is not None:
                ann = load_ann(root, spec["ann"], f"search structure of {key}", self.documents.n_rows,
                               int(spec["dim"]), check=check)  # fmt: skip
            self._searchers[key] = Searcher(self.vectors[key], self.documents.alive, manifest.backend, ann)
        #: The upgrade in progress (:mod:`keff.docindex.upgrade`), or None.
        self.upgrade = None
        if manifest.extra.get("upgrade") is not None:
            from keff.docindex.upgrade import Serving  # upgrade.py builds on this module

            self.upgrade = Serving(self, manifest.extra["upgrade"], check=check)

    def _adapted(self, key: str, spec: dict) -> np.ndarray:
        """The stored vectors of ``key`` through its asymmetric adapter's document head, normalised
        (once per opening; :attr:`vectors` then holds what is searched)."""
        if self.manifest.backend.get("kind") != "exact" or spec.get("ann") is not None:
            raise KeffError(
                f"index {self.root}: an asymmetric adapter on {key} needs the exact backend (this one is "
                f"{self.manifest.backend.get('kind')}); detach it (keff index detach) or rebuild with --backend exact"
            )
        return l2_normalize(self.transforms.doc_heads[key](self.vectors[key])).astype(np.float32)

    # -- opening and building -------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, *, check: bool = True, encoders: dict[str, str] | None = None) -> Index:
        """Open the index at ``path``, checking everything (see the module docstring).

        Parameters
        ----------
        check : bool
            Verify every file's SHA-256 (default). False only checks shapes (faster, for trusted
            folders).
        encoders : dict, optional
            Encoder name in the manifest -> encoder to load instead (a name you trust, e.g. a
            model folder outside keff's cache); its fingerprint must still match.
        """
        root = Path(path).expanduser()
        if not root.is_dir():
            raise DataError("no index here (not a folder)", path=root)
        index = cls(root, read_manifest(root), check=check, encoders=encoders)
        for key in index.encoder_keys + ([index.upgrade.target_key] if index.upgrade else []):
            index.encoder(key)  # refuses an encoder whose fingerprint changed
        return index

    @classmethod
    def build(
        cls,
        path: str | Path,
        documents: Iterable[Document],
        encoders: Sequence[str],
        *,
        backend: str = "exact",
        backend_params: dict[str, int] | None = None,
        overwrite: bool = False,
        vectors: dict[str, np.ndarray] | None = None,
        engine: str | Engine | None = None,
        engine_options: dict[str, Any] | None = None,
    ) -> Index:
        """Build a new index of ``documents`` embedded by each of ``encoders``.

        The index is assembled in a temporary folder beside ``path`` and moved into place when
        complete: an interrupted build leaves no index (and no damage to an existing one);
        re-running it reuses every vector already in keff's embedding cache.

        Parameters
        ----------
        documents : iterable of Document
            Unique ids.
        encoders : sequence of str
            Encoder names (:func:`keff.encoders.get_encoder`); the first is the primary one.
        backend : {"exact", "flat", "hnsw", "ivf"}
            Search backend (see :mod:`keff.docindex.backends`); ``exact`` is the default.
        backend_params : dict, optional
            Backend parameters (e.g. ``{"M": 32, "ef_search": 128}`` for ``hnsw``).
        overwrite : bool
            Replace an existing index at ``path``.
        vectors : dict, optional
            Encoder name -> (n, dim) vectors you computed with exactly that encoder, used instead
            of encoding (not checked here; seed keff's cache to have them checked).
        engine : {"inprocess", "ray"} or Engine, optional
            Where the model runs (:mod:`keff.docindex.engines`); default in this process. The ray
            engine gives byte-identical vectors.
        engine_options : dict, optional
            Options of the engine (ray: ``actors``, ``batches_per_call``, ``address``).
        """
        root = Path(path).expanduser()
        runner = get_engine(engine, **(engine_options or {}))
        if root.exists() and not overwrite:
            if (root / MANIFEST).exists():
                raise DataError(
                    "an index already exists here; pass overwrite=True (--overwrite) to replace it", path=root
                )
            if not root.is_dir() or any(p.name != LOCK for p in root.iterdir()):
                raise DataError("exists and is not an empty folder; choose another path", path=root)
        if not encoders:
            raise KeffError("name at least one encoder")
        if len(set(encoders)) != len(encoders):
            raise KeffError(f"encoders repeat a name: {list(encoders)}")
        docs = check_documents(documents)
        if not docs:
            raise DataError("no documents to index")
        spec = backend_spec(backend, backend_params, root=root)
        root.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_builds(root)
        staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.building-", dir=root.parent))
        try:
            manifest = Manifest(backend=spec)
            for name in encoders:
                enc = get_encoder(name)
                key = encoder_key(name, enc.fingerprint)
                manifest.encoders[key] = {"name": name, "fingerprint": enc.fingerprint, "dim": int(enc.dim),
                                          "segments": [], "ann": None}  # fmt: skip
            with writer_lock(staging):
                _append(staging, manifest, docs, vectors=vectors, engine=runner)
                record = _record("build", documents=len(docs), backend=spec["kind"], encoders=list(encoders))
                manifest.history.append({**record, "engine": runner.describe()})
                write_manifest(staging, manifest)
                after_staged_build(staging, manifest)  # fills a Milvus collection (milvus backend only)
            replaced = before_replace(root)
            _swap_in(staging, root)
            drop_replaced(root, replaced, spec)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return cls.open(root)

    # -- the encoders -----------------------------------------------------------------------
    @property
    def encoder_keys(self) -> list[str]:
        """Keys of the index's encoders, the primary one first."""
        return list(self.manifest.encoders)

    def encoder(self, key: str):
        """The encoder of ``key``, loaded once, its fingerprint checked against the vectors'."""
        if key not in self._encoders and self.upgrade is not None and key == self.upgrade.target_key:
            self._encoders[key] = self.upgrade.load_encoder(self._explicit)
        if key not in self._encoders:
            spec = self.manifest.encoders[key]
            name = str(spec.get("name"))
            self._encoders[key] = encoder_for_artifact(
                name, str(spec.get("fingerprint", "")), what=f"index {self.root}", explicit=self._explicit.get(name)
            )
        return self._encoders[key]

    # -- reading -----------------------------------------------------------------------------
    @property
    def n_docs(self) -> int:
        """Number of live documents."""
        return self.documents.n_live

    def __len__(self) -> int:
        return self.n_docs

    def encode_queries(self, texts: Sequence[str], keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Query vectors of ``texts`` by each encoder (default: all of the index's; during an upgrade,
        the new encoder instead of the old one, see :mod:`keff.docindex.upgrade`)."""
        if not keys:
            keys = self.upgrade.query_keys(self.encoder_keys) if self.upgrade is not None else self.encoder_keys
        return {key: self.encoder(key).encode(list(texts), kind="query") for key in keys}

    def search_vectors(
        self, queries: dict[str, np.ndarray], k: int = 10, *, weights: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` rows for query vectors of one or more encoders.

        Parameters
        ----------
        queries : dict of str to ndarray
            Encoder key -> (n, dim) query vectors (the same n queries for every key).
        k : int
            Results per query.
        weights : ndarray, optional
            (S,) or (S, n) weights of the encoders' cosines (S = len(queries)); default equal.

        Returns
        -------
        scores : ndarray, shape (n, k')
        rows : ndarray of int64, shape (n, k')
            k' = min(k, live documents); rows index :attr:`documents`.
        """
        if self.upgrade is not None and self.upgrade.handles(queries):
            return self.upgrade.search(queries, k, weights=weights)  # new-encoder queries during an upgrade
        keys = list(queries)
        unknown = [k_ for k_ in keys if k_ not in self._searchers]
        if unknown:
            raise KeffError(f"index {self.root} has no encoder {unknown} (it has {', '.join(self.encoder_keys)})")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise KeffError(f"k must be a positive integer; got {k!r}")
        mats = [as_matrix(queries[key], f"queries of {key}", floating=True) for key in keys]
        if len(keys) == 1:
            return self._searchers[keys[0]].search(mats[0], k)
        n = mats[0].shape[0]
        w = np.full((len(keys), n), 1.0 / len(keys), dtype=np.float32) if weights is None else np.asarray(weights)
        if w.ndim == 1:
            w = np.repeat(w[:, None], n, axis=1)
        if w.shape != (len(keys), n):
            raise KeffError(f"weights must have shape ({len(keys)},) or ({len(keys)}, {n}); got {w.shape}")
        return self._fused_search(keys, mats, w.astype(np.float32), k)

    def _fused_search(self, keys: list[str], mats: list[np.ndarray], w: np.ndarray, k: int):
        """Weighted sum of the encoders' cosines: exact over every live row with the exact backend,
        else exact re-scoring of the union of each encoder's approximate candidates."""
        live = self.documents.alive
        if self.milvus is not None:  # Milvus's multi-vector hybrid search with keff's weights
            return self.milvus.hybrid_search(keys, mats, w, k)
        if self.manifest.backend["kind"] == "exact":
            rows = np.flatnonzero(live)
            everything = rows.size == live.size  # no copy of the vectors while nothing is removed
            scores = sum(
                wi[:, None] * (q @ (self.vectors[key] if everything else self.vectors[key][rows]).T)
                for key, q, wi in zip(keys, mats, w)
            )
            top, pos = topk_rows(np.asarray(scores, dtype=np.float32), min(k, rows.size))
            return top, rows[pos]
        depth = max(4 * k, 100)
        cands = np.concatenate([self._searchers[key].search(q, depth)[1] for key, q in zip(keys, mats)], axis=1)
        out_s, out_r = [], []
        for i in range(cands.shape[0]):
            rows = np.unique(cands[i])
            s = sum(w[j, i] * (self.vectors[key][rows] @ mats[j][i]) for j, key in enumerate(keys))
            top, pos = topk_rows(np.asarray(s, dtype=np.float32)[None, :], min(k, rows.size))
            out_s.append(top[0])
            out_r.append(rows[pos[0]])
        return np.stack(out_s), np.stack(out_r)

    def hits(self, scores: np.ndarray, rows: np.ndarray) -> list[list[Hit]]:
        """Search results as hits with ids, texts and metadata."""
        out = []
        for srow, rrow in zip(scores, rows):
            keep = np.isfinite(srow)
            docs = self.documents.get(rrow[keep])
            out.append([Hit(d.id, float(s), d.text, d.meta) for d, s in zip(docs, srow[keep])])
        return out

    def search(self, texts: Sequence[str], k: int = 10) -> list[list[Hit]]:
        """Top-``k`` documents for each query text: ids, scores, texts, metadata.

        Every encoder of the index encodes the queries; with several, their cosines are averaged
        (or combined with attached fusion weights).
        """
        if isinstance(texts, str):
            raise KeffError("texts must be a list of query strings, not one string")
        if not texts:
            return []
        queries, weights = self.prepare_queries(texts)
        return self.hits(*self.search_vectors(queries, k, weights=weights))

    def prepare_queries(self, texts: Sequence[str]) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        """Query vectors and encoder weights as :meth:`search` uses them: ``texts`` encoded (by every
        encoder that has weight), the attached transforms applied (see :mod:`keff.docindex.transforms`);
        pass both to :meth:`search_vectors`."""
        keys = self.transforms.keys(self.encoder_keys)
        return self.transforms.apply(self.encode_queries(texts, None if keys == self.encoder_keys else keys))

    def info(self) -> dict[str, Any]:
        """What the index holds: documents, encoders, backend, transforms, last changes."""
        return {
            "path": str(self.root),
            "generation": self.manifest.generation,
            "documents": self.n_docs,
            "rows": self.documents.n_rows,
            "removed": int(self.documents.removed.size),
            "backend": self.manifest.backend,
            "encoders": [
                {"key": key, "name": spec["name"], "fingerprint": spec["fingerprint"], "dim": spec["dim"]}
                for key, spec in self.manifest.encoders.items()
            ],
            "transforms": self.manifest.transforms,
            "weighting": self.transforms.weighting,
            "notes": self.transforms.notes,
            "upgrade": None if self.upgrade is None else self.upgrade.info(),
            "history": self.manifest.history[-5:],
        }

    def close(self) -> None:
        self.documents.close()

    def __repr__(self) -> str:
        return f"Index({str(self.root)!r}, documents={self.n_docs}, encoders={self.encoder_keys})"

    # -- writing -----------------------------------------------------------------------------
    def add(
        self,
        documents: Iterable[Document],
        *,
        replace: bool = False,
        engine: str | Engine | None = None,
        engine_options: dict[str, Any] | None = None,
    ) -> int:
        """Add documents (encoded by every encoder) and commit; returns how many were added.

        An id the index already holds is an error unless ``replace`` (then the old document is
        removed in the same commit). ``engine`` and ``engine_options`` as in :meth:`build`.
        """
        runner = get_engine(engine, **(engine_options or {}))
        docs = check_documents(documents)
        if not docs:
            return 0
        with writer_lock(self.root):
            manifest = read_manifest(self.root)
            current = DocumentStore(self.root, manifest.documents, check=False)
            clash = [d.id for d in docs if d.id in current.row_of]
            if clash and not replace:
                raise DataError(
                    f"{len(clash)} ids are already in the index (first {clash[0]!r}); remove them first or pass "
                    "replace=True (--replace)"
                )
            current.close()
            new = manifest.copy()
            _append(self.root, new, docs, previous=self, engine=runner)
            if clash:
                _mark_removed(self.root, new, [current.row_of[i] for i in clash])
            new.history.append(_record("add", documents=len(docs), replaced=len(clash), engine=runner.describe()))
            _commit(self.root, new)
        self._reload()
        return len(docs)

    def remove(self, ids: Iterable[str]) -> int:
        """Remove documents by id and commit; an unknown id is an error (nothing is removed)."""
        ids = list(ids)
        with writer_lock(self.root):
            manifest = read_manifest(self.root)
            current = DocumentStore(self.root, manifest.documents, check=False)
            missing = [i for i in ids if i not in current.row_of]
            if missing:
                current.close()
                raise DataError(f"{len(missing)} ids are not in the index (first {missing[0]!r}); nothing removed")
            rows = [current.row_of[i] for i in ids]
            current.close()
            new = manifest.copy()
            new.generation += 1
            _mark_removed(self.root, new, rows)
            new.history.append(_record("remove", documents=len(rows)))
            _commit(self.root, new, bump=False)
        self._reload()
        return len(rows)

    def attach(
        self, path: str | Path, *, name: str | None = None, encoder: str | None = None, replace: bool = False
    ) -> dict[str, Any]:
        """Attach a SEF transform (a query map, fusion weights or a specialist; see
        :mod:`keff.docindex.transforms`) and commit; returns its manifest entry.

        Parameters
        ----------
        path : str or Path
            The SEF file; it is copied into the index (``transforms/<sha256>.sef``).
        name : str, optional
            Its name in the index (default: the file's stem).
        encoder : str, optional
            Index encoder key a map or specialist applies to (default: the one with its fingerprint).
        replace : bool
            Replace an attached transform of the same name (in its place in the order).
        """
        with writer_lock(self.root):
            new = read_manifest(self.root).copy()
            entry = stage_transform(self.root, new, path, name=name, encoder=encoder, replace=replace)
            new.history.append(_record("attach", transform=entry["name"], kind=entry["kind"], file=entry["file"]))
            _commit(self.root, new, bump=True)
        self._reload()
        return entry

    def detach(self, name: str) -> dict[str, Any]:
        """Detach the transform ``name`` and commit; returns its former manifest entry."""
        entry = detach_transform(self.root, name)
        self._reload()
        return entry

    def _reload(self) -> None:
        fresh = Index(self.root, read_manifest(self.root), encoders=self._explicit)
        fresh._encoders = self._encoders
        self.close()
        self.__dict__.update(fresh.__dict__)


def detach_transform(path: str | Path, name: str) -> dict[str, Any]:
    """Detach the transform ``name`` from the index at ``path`` and commit, without opening the index
    (so a transform that stops it from opening can be removed); returns its former entry."""
    root = Path(path).expanduser()
    if not (root / MANIFEST).is_file():
        raise DataError("no index here (no manifest)", path=root)
    with writer_lock(root):
        new = read_manifest(root).copy()
        entry = unstage_transform(new, name)
        new.history.append(_record("detach", transform=name, kind=entry.get("kind")))
        _commit(root, new, bump=True)
    return entry


def _stem(generation: int) -> str:
    return f"g{generation:06d}"


def _append(root: Path, manifest: Manifest, docs: list[Document], *, previous: Index | None = None,
            vectors: dict[str, np.ndarray] | None = None, engine: Engine | None = None) -> None:  # fmt: skip
    """Write a segment of ``docs`` and every encoder's vectors of it into ``root``; updates
    ``manifest`` (not yet committed). ``engine`` runs the encoders (default: in this process)."""
    engine = engine if engine is not None else InProcessEngine()
    manifest.generation += 1
    stem = _stem(manifest.generation)
    texts = [d.text for d in docs]
    start = int(manifest.documents["n_rows"])
    for key, spec in manifest.encoders.items():
        given = (vectors or {}).get(spec["name"])
        if given is not None:
            vecs = as_matrix(given, f"vectors of {spec['name']}", floating=True)
            if vecs.shape != (len(docs), spec["dim"]):
                raise DataError(
                    f"vectors of {spec['name']} have shape {vecs.shape}, expected {(len(docs), spec['dim'])}"
                )
        else:
            enc = previous.encoder(key) if previous is not None else get_encoder(spec["name"])
            vecs = engine.encode(enc, texts)
        spec["segments"].append(write_vectors(root, key, stem, vecs))
        old_ann = None
        if previous is not None and previous._searchers[key].ann is not None and previous.milvus is None:
            old_ann = _clone(previous._searchers[key].ann)  # grown in a copy: readers keep theirs
        entry = build_ann(root, key, stem, manifest.backend, vecs, previous=old_ann)
        spec["ann"] = entry
    seg = write_segment(root, stem, docs)
    seg["rows"] = len(docs)
    seg["first_row"] = start
    manifest.documents["segments"].append(seg)
    manifest.documents["n_rows"] = start + len(docs)


def _clone(ann):
    import faiss

    return faiss.clone_index(ann)


def _mark_removed(root: Path, manifest: Manifest, rows: Sequence[int]) -> None:
    removed = manifest.documents.get("removed")
    old = np.zeros(0, dtype=np.int64)
    if removed is not None:
        old = np.load(check_relative(root, removed["path"], "removed rows"), allow_pickle=False)
    manifest.documents["removed"] = write_removed(root, _stem(manifest.generation), np.concatenate([old, rows]))


def _commit(root: Path, manifest: Manifest, *, bump: bool = False) -> None:
    if bump:
        manifest.generation += 1
    write_manifest(root, manifest)
    collect_garbage(root, manifest)
    after_commit(root, manifest)  # brings a Milvus collection in step (milvus backend only)


def _remove_stale_builds(root: Path) -> None:
    """Remove the staging folders of earlier builds of ``root`` that were killed (a live build
    holds its staging folder's lock, so it is left alone)."""
    for folder in root.parent.glob(f".{root.name}.building-*"):
        try:
            with writer_lock(folder):
                shutil.rmtree(folder, ignore_errors=True)
        except KeffError:
            continue


def _swap_in(staging: Path, root: Path) -> None:
    """Move a finished index folder into place (replacing an existing one in one rename)."""
    if root.exists():
        aside = Path(tempfile.mkdtemp(prefix=f".{root.name}.old-", dir=root.parent))
        os.replace(root, aside / "index")
        try:
            os.replace(staging, root)
        except OSError:
            os.replace(aside / "index", root)
            raise
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(staging, root)


__all__ = ["KINDS", "Hit", "Index"]
