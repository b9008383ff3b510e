"""Search backends of a persistent index, chosen explicitly: exact numpy (the default), or FAISS.

- ``exact``: brute-force inner product over the live rows (:class:`keff.index.ExactIndex`,
  numpy); exact, no extra dependency, fine to a few hundred thousand documents.
- ``flat``: FAISS ``IndexFlatIP``; exact too, faster BLAS-heavy batches.
- ``hnsw``: FAISS HNSW graph (``M`` links per node, ``ef_search`` candidates per query);
  approximate, for large collections; grows by adding, so ``keff index add`` is cheap.
- ``ivf``: FAISS inverted lists (``nlist`` centroids trained on the vectors, ``nprobe`` lists
  searched); approximate; trained once at build, later additions go to the trained lists.
- ``milvus``: a Milvus collection (Milvus Lite file in the index folder by default, a server by
  URI) holding a searchable copy of the vectors; exact (FLAT); see :mod:`keff.docindex.milvus`.

Approximate structures are saved beside the vectors (``ann/<key>.gNNNNNN.faiss``) with their
SHA-256 in the manifest. Removed documents stay in the structures and are filtered out of every
result. Recall@10 of the approximate backends against exact search is measured in BENCHMARKS.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from keff.atomic import atomic_path
from keff.docindex.manifest import FileEntry, file_entry, verify
from keff.errors import FormatError, KeffError, require
from keff.index import ExactIndex
from keff.index.numpy_backend import topk_rows
from keff.threads import search_threads

KINDS = ("exact", "flat", "hnsw", "ivf", "milvus")
DEFAULTS: dict[str, dict[str, int]] = {
    "exact": {},
    "flat": {},
    "hnsw": {"M": 32, "ef_construction": 80, "ef_search": 128},
    "ivf": {"nlist": 0, "nprobe": 32},  # nlist 0: chosen at build from the number of vectors
}


def backend_spec(kind: str, params: dict[str, Any] | None = None, root: Path | None = None) -> dict[str, Any]:
    """The manifest's ``backend`` field for ``kind`` with ``params`` over the defaults (``root``,
    the index folder, names a new Milvus collection)."""
    if kind not in KINDS:
        raise KeffError(f"unknown index backend {kind!r} (choose from {', '.join(KINDS)})")
    if kind == "milvus":
        from keff.docindex.milvus import milvus_spec

        return milvus_spec(params, root)
    params = dict(params or {})
    unknown = sorted(set(params) - set(DEFAULTS[kind]))
    if unknown:
        raise KeffError(
            f"backend {kind!r} takes no parameter {unknown} (it takes {', '.join(DEFAULTS[kind]) or 'none'})"
        )
    for name, value in params.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise KeffError(f"backend parameter {name} must be an integer >= 0; got {value!r}")
    return {"kind": kind, **DEFAULTS[kind], **params}


def _faiss():
    return require("faiss", "faiss")


def _new_ann(spec: dict[str, Any], vectors: np.ndarray):
    faiss = _faiss()
    d = vectors.shape[1]
    if spec["kind"] == "flat":
        index = faiss.IndexFlatIP(d)
    elif spec["kind"] == "hnsw":
        index = faiss.IndexHNSWFlat(d, int(spec["M"]), faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = int(spec["ef_construction"])
    else:
        # 4 sqrt(n) lists by default, with at least 39 training points per list (FAISS's minimum)
        nlist = int(spec["nlist"]) or max(1, min(int(4 * np.sqrt(len(vectors))), len(vectors) // 39))
        nlist = min(nlist, len(vectors))
        spec["nlist"] = nlist
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
    return index


def build_ann(root: Path, key: str, stem: str, spec: dict[str, Any], vectors: np.ndarray, previous=None) -> dict | None:
    """Build (or extend ``previous`` with the new rows ``vectors``) and save the approximate
    structure of one encoder; returns its file entry (None for ``exact`` and ``milvus``)."""
    if spec["kind"] in ("exact", "milvus"):
        return None
    faiss = _faiss()
    index = previous if previous is not None else _new_ann(spec, vectors)
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    path = root / "ann" / f"{key}.{stem}.faiss"
    with atomic_path(path) as tmp:
        faiss.write_index(index, str(tmp))
    return file_entry(root, path).to_dict()


def load_ann(root: Path, entry: dict, where: str, n_rows: int, dim: int, *, check: bool = True):
    """A saved FAISS structure, after its SHA-256, size and width checks."""
    faiss = _faiss()
    file = FileEntry(str(entry.get("path")), str(entry.get("sha256")))
    path = verify(root, file, where) if check else root / file.path
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as exc:
        raise FormatError(f"{path}: not a readable FAISS index ({str(exc).splitlines()[0]})") from None
    if index.ntotal != n_rows or index.d != dim:
        raise FormatError(f"{path}: holds {index.ntotal} vectors of {index.d} dims, expected {n_rows} of {dim}")
    return index


class Searcher:
    """Top-k search over one encoder's vectors with removed rows filtered out.

    Parameters
    ----------
    vectors : ndarray, shape (n_rows, d)
        Every row's vector (removed rows included).
    alive : ndarray of bool, shape (n_rows,)
    spec : dict
        The manifest's backend field.
    ann : FAISS index, optional
        The loaded approximate structure (``flat``, ``hnsw``, ``ivf``).
    """

    def __init__(self, vectors: np.ndarray, alive: np.ndarray, spec: dict[str, Any], ann=None) -> None:
        self.vectors = vectors
        self.alive = alive
        self.spec = spec
        self.ann = ann
        self.live_rows = np.flatnonzero(alive)
        self._exact = None
        if spec["kind"] == "exact" and self.live_rows.size:
            # no copy of the vectors while nothing is removed; ExactIndex bounds its query blocks
            live = vectors if self.live_rows.size == alive.size else vectors[self.live_rows]
            self._exact = ExactIndex(live)
        if ann is not None:
            self._set_search_params()

    def _set_search_params(self) -> None:
        faiss = _faiss()
        if self.spec["kind"] == "hnsw":
            self.ann.hnsw.efSearch = int(self.spec["ef_search"])
        elif self.spec["kind"] == "ivf":
            faiss.extract_index_ivf(self.ann).nprobe = int(self.spec["nprobe"])

    def tune(self, **params: int) -> None:
        """Change this reader's search-time parameters (``ef_search`` of ``hnsw``, ``nprobe`` of
        ``ivf``) without a rebuild, e.g. to trade recall for speed; the manifest is untouched."""
        allowed = {"hnsw": {"ef_search"}, "ivf": {"nprobe"}}.get(self.spec["kind"], set())
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise KeffError(f"backend {self.spec['kind']!r} has no search-time parameter {unknown} "
                            f"(it has {', '.join(sorted(allowed)) or 'none'})")  # fmt: skip
        rest = {name: value for name, value in self.spec.items() if name != "kind"}
        self.spec = backend_spec(self.spec["kind"], {**rest, **params})
        if self.ann is not None:
            self._set_search_params()

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and rows (n, k') of the best live rows per query, k' = min(k, live rows)."""
        k = min(int(k), int(self.live_rows.size))
        n = queries.shape[0]
        if k == 0:
            return np.zeros((n, 0), dtype=np.float32), np.zeros((n, 0), dtype=np.int64)
        if self._exact is not None:
            scores, idx = self._exact.search(queries, k)
            return scores, self.live_rows[idx]
        n_removed = int(self.alive.size - self.live_rows.size)
        q = np.ascontiguousarray(queries, dtype=np.float32)
        with search_threads(n, openmp=True):
            scores, rows = self.ann.search(q, k + n_removed)
        keep = (rows >= 0) & self.alive[np.clip(rows, 0, None)]
        scores = np.where(keep, scores, -np.inf).astype(np.float32)
        top, pos = topk_rows(scores, k)
        return top, np.take_along_axis(rows, pos, axis=1)
