"""Milvus as the search backend of a persistent index (``backend="milvus"``), through pymilvus.

keff's own checksummed vector segments stay the index's source of truth (opening still verifies
them); Milvus holds a searchable copy of them:

- **one collection per index**, named at build (``keff_<folder>_<12 hex>``) and recorded in the
  manifest's ``backend`` field with the URI;
- **one FLOAT_VECTOR field per encoder** (FLAT index, metric IP on keff's L2-normalised vectors,
  which is keff's cosine), the **primary key is keff's row number** (INT64 ``row``) and the
  document id is a VARCHAR field (``doc_id``), so other Milvus clients can read the collection.

Where Milvus runs is the URI alone, with no code change: the default is a **Milvus Lite** file
inside the index folder (``milvus.db``, recorded relative to it; package ``milvus-lite``, in
process, one process at a time), an absolute ``*.db`` path is a Lite file elsewhere, and
``http(s)://host:19530`` is a **Milvus server or cluster**. Credentials are never written to
the manifest: a URI with a user or password is refused, and a token is read at connection time
from the environment variable the manifest names (``token_env``, default ``KEFF_MILVUS_TOKEN``).

**In step with the manifest.** The collection carries a stamp (collection property
``keff_state``: rows ever added, the SHA-256 of the removed-rows file, the encoder -> field map,
the generation it was synced at). Every commit syncs the collection right after it, under the
index's write lock: ``build`` fills a new collection (in its staging folder, before the folder
is moved into place), ``add`` upserts the new rows, ``remove`` deletes the removed rows (the
manifest's alive mask stays the filter of record: results are still filtered by it), other
commits (attach, detach, upgrade steps) only restamp it. A sync that finds a collection it
cannot extend (missing, other fields, e.g. after an upgrade switched encoders, or more rows than
the manifest) rebuilds it from the verified segments. Opening checks the stamp and
the collection's row count against the manifest and refuses a collection out of step (say, a
writer died between its commit and its sync, or someone changed the collection) with one line
naming the fix: ``keff index rebuild-backend IDX`` (:func:`rebuild`), which drops and refills the
collection from the verified segments. Opening never writes, so readers cannot race a writer.

**Search.** One encoder: a Milvus search of its field (top ``k`` + removed rows, filtered by
the alive mask). Several encoders: Milvus's multi-vector hybrid search, one ``AnnSearchRequest``
per field with ``depth`` candidates each and ``WeightedRanker(*weights, norm_score=False)`` with
keff's weights (fusion weights or specialists; equal by default). With ``norm_score=False`` the
ranker adds ``w_j * cosine_j`` exactly as keff does; pymilvus's default ``norm_score=True`` would
first map each IP score through ``0.5 + arctan(s)/pi``, a monotone but non-linear squash that
changes the fused order. The one difference left is the candidate depth: a document outside one
field's top ``depth`` counts 0 for that field in Milvus, while keff's exact backend scores every
row and its approximate backends re-score the union of the candidates exactly (a document then
needs to be among one encoder's candidates, not all). ``depth`` 0 (the default) is keff's own
per-encoder depth, ``max(4k, 100)``. Once every field's candidates reach the deepest rank any
single encoder gives a document of keff's fused top k, the hybrid search returns keff's top k;
on SciFact with minilm + mpnet that rank has median 27 and maximum 460, and the default depth
gives keff's top 10 for 282 of 300 test queries (BENCHMARKS.md). Milvus Lite builds every
returned hit in Python (about 0.25 ms each here), so deep candidate lists cost time there.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np

from keff.docindex.documents import DocumentStore
from keff.docindex.manifest import MANIFEST, Manifest, check_relative, read_manifest
from keff.docindex.vectors import load_vectors
from keff.errors import DataError, FormatError, KeffError, require
from keff.progress import progress_bar

KIND = "milvus"
#: Default Milvus Lite file, relative to the index folder.
DEFAULT_URI = "milvus.db"
#: Default environment variable holding the token of a Milvus server.
DEFAULT_TOKEN_ENV = "KEFF_MILVUS_TOKEN"
#: Collection property holding the sync stamp.
STATE = "keff_state"
ROW, DOC_ID = "row", "doc_id"
#: Milvus's default cap on top-k and on each hybrid request's limit (``quotaAndLimits.limits.topK``).
MAX_TOPK = 16384
#: Longest document id a VARCHAR field holds (bytes, UTF-8).
MAX_ID_BYTES = 65535
#: Queries per search request, and bytes of vectors per insert request (well under gRPC's 64 MB).
QUERY_BATCH = 256
#: Hits one search request may return in all (queries x limit x fields): Milvus Lite builds every hit
#: in Python, so this bounds a request's memory and time (and keeps gRPC calls short).
HIT_BUDGET = 50_000
#: Keepalive ping interval towards an in-process Milvus Lite server (its gRPC minimum).
LITE_KEEPALIVE_MS = 300_000
INSERT_BYTES = 8 << 20
PARAMS = ("uri", "collection", "token_env", "depth")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_SECRET = ("token", "password", "user", "secret", "api_key")


# -- the manifest's backend field -------------------------------------------------------------
def milvus_spec(params: dict[str, Any] | None, root: Path | None = None) -> dict[str, Any]:
    """The manifest's ``backend`` field of a Milvus index: ``{"kind", "uri", "collection",
    "token_env", "depth"}`` from ``params`` over the defaults, checked.

    Parameters
    ----------
    params : dict, optional
        ``uri`` (default ``milvus.db`` in the index folder), ``collection`` (default derived from
        ``root``'s name plus 12 random hex digits), ``token_env`` (name of the environment variable
        with the token; default ``KEFF_MILVUS_TOKEN``), ``depth`` (candidates per encoder of a
        fused search; 0 = keff's ``max(4k, 100)``).
    root : Path, optional
        The index folder (names the default collection).
    """
    params = dict(params or {})
    secret = sorted(name for name in params if name.lower() in _SECRET)
    if secret:
        raise KeffError(f"backend 'milvus' never takes {secret} as a parameter (it would be written to the "
                        f"manifest): put the token in the environment variable {DEFAULT_TOKEN_ENV} "
                        "(or name another with token_env)")  # fmt: skip
    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        raise KeffError(f"backend 'milvus' takes no parameter {unknown} (it takes {', '.join(PARAMS)})")
    uri = params.get("uri") or DEFAULT_URI
    if not isinstance(uri, str):
        raise KeffError(f"milvus uri must be a string; got {uri!r}")
    check_uri(uri)
    collection = params.get("collection") or default_collection(root)
    if not isinstance(collection, str) or not _NAME.match(collection):
        raise KeffError(f"milvus collection name {collection!r} must be letters, digits and underscores, "
                        "not starting with a digit, at most 255 characters")  # fmt: skip
    token_env = params.get("token_env") or DEFAULT_TOKEN_ENV
    if not isinstance(token_env, str) or not _ENV.match(token_env):
        raise KeffError(f"milvus token_env must name an environment variable; got {token_env!r}")
    depth = params.get("depth", 0)
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise KeffError(f"backend parameter depth must be an integer >= 0; got {depth!r}")
    return {"kind": KIND, "uri": uri, "collection": collection, "token_env": token_env, "depth": depth}


def default_collection(root: Path | None) -> str:
    """``keff_<folder name made safe>_<12 random hex digits>``: unique per build, so an index
    rebuilt over an old one never shares its collection with readers of the old one."""
    stem = re.sub(r"[^A-Za-z0-9_]+", "_", root.name if root is not None else "index").strip("_")[:40] or "index"
    return f"keff_{stem}_{uuid.uuid4().hex[:12]}"


def is_lite(uri: str) -> bool:
    """Whether ``uri`` names a Milvus Lite file (``*.db``) rather than a server."""
    return uri.endswith(".db")


def check_uri(uri: str) -> None:
    """Refuse a URI keff cannot use or must not record (credentials in it)."""
    if is_lite(uri):
        if not Path(uri).is_absolute():
            check_relative(Path("."), uri, "milvus uri")
        return
    parsed = urlparse(uri)
    if parsed.scheme not in ("http", "https", "tcp") or not parsed.hostname:
        raise KeffError(f"milvus uri {uri!r} must be a Milvus Lite file (*.db) or http(s)://host:port of a server")
    if parsed.username or parsed.password:
        raise KeffError(f"milvus uri must not hold credentials (they would be written to the manifest): set the "
                        f"token in the environment variable {DEFAULT_TOKEN_ENV} instead")  # fmt: skip


def field_names(encoders: dict[str, dict]) -> dict[str, str]:
    """Encoder key -> vector field name (``v<i>_<key made safe>``, unique by the position)."""
    return {key: f"v{i}_{re.sub(r'[^A-Za-z0-9_]+', '_', key)}"[:255] for i, key in enumerate(encoders)}


def stamp(manifest: Manifest) -> dict[str, Any]:
    """What a collection in step with ``manifest`` records (see the module docstring)."""
    removed = manifest.documents.get("removed")
    return {
        "n_rows": int(manifest.documents["n_rows"]),
        "removed": removed.get("sha256") if isinstance(removed, dict) else None,
        "fields": field_names(manifest.encoders),
        "generation": int(manifest.generation),
    }


# -- connections ------------------------------------------------------------------------------
_CLIENTS: dict[tuple[str, str], Any] = {}


def _pymilvus():
    return require("pymilvus", "milvus")


def resolve_uri(root: Path, spec: dict[str, Any]) -> str:
    """The URI to connect to: a relative Lite file is taken inside the index folder ``root``."""
    uri = str(spec.get("uri") or DEFAULT_URI)
    check_uri(uri)
    if is_lite(uri) and not Path(uri).is_absolute():
        return os.path.abspath(root / uri)
    return uri


def where(root: Path, spec: dict[str, Any]) -> str:
    """``collection 'NAME' at URI`` for messages (never a token)."""
    return f"Milvus collection {spec.get('collection')!r} at {resolve_uri(root, spec)}"


def client(root: Path, spec: dict[str, Any]):
    """A connected ``MilvusClient`` for the index's backend, shared per URI in this process."""
    uri = resolve_uri(root, spec)
    token_env = str(spec.get("token_env") or DEFAULT_TOKEN_ENV)
    cache_key = (uri, token_env)
    if cache_key in _CLIENTS:
        return _CLIENTS[cache_key]
    pymilvus = _pymilvus()
    log = logging.getLogger("pymilvus")
    if log.level == logging.NOTSET:  # keff turns every failed call into one line; no RPC tracebacks
        log.setLevel(logging.CRITICAL)
    options = {}
    if is_lite(uri):
        require("milvus_lite", "milvus")
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
        token = ""
        # Lite's in-process gRPC server allows a keepalive ping every 5 minutes (gRPC's default);
        # pymilvus pings every 10 s, and a long search then ends in "too_many_pings" GOAWAY noise
        options["grpc_options"] = {"grpc.keepalive_time_ms": LITE_KEEPALIVE_MS}
    else:
        token = os.environ.get(token_env, "")
    try:
        conn = pymilvus.MilvusClient(uri=uri, token=token, **options)
    except Exception as exc:  # pymilvus raises its own exceptions and gRPC's
        hint = (" (Milvus Lite serves one process at a time: is another process using this index? Use a Milvus "
                "server URI for several processes)") if is_lite(uri) else ""  # fmt: skip
        raise KeffError(f"cannot connect to Milvus at {uri}: {_short(exc)}{hint}") from None
    _CLIENTS[cache_key] = conn
    return conn


def release(path: Path) -> None:
    """Stop this process's Milvus Lite server of the Lite file at ``path`` (releasing its lock and
    flushing it), so the folder holding it can be moved or removed."""
    uri = os.path.abspath(path)
    for cache_key in [k for k in _CLIENTS if k[0] == uri]:
        conn = _CLIENTS.pop(cache_key)
        try:
            conn.close()
        except Exception:  # noqa: BLE001 - closing a dead connection is not an error here
            pass
    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError:
        return
    server_manager_instance.release_server(uri)


def _short(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(text).strip().splitlines()[0][:300]


def _call(what: str, fn, *args, **kwargs):
    """Run one pymilvus call; a failure becomes one KeffError line naming ``what``."""
    try:
        return fn(*args, **kwargs)
    except KeffError:
        raise
    except Exception as exc:  # noqa: BLE001 - pymilvus and gRPC errors become one clear line
        raise KeffError(f"{what}: Milvus failed: {_short(exc)}") from None


def collection_state(conn, collection: str) -> dict[str, Any] | None:
    """The collection's sync stamp, or None when the collection does not exist."""
    if not _call(f"collection {collection}", conn.has_collection, collection):
        return None
    props = _call(f"collection {collection}", conn.describe_collection, collection).get("properties") or {}
    try:
        state = json.loads(props.get(STATE, ""))
    except ValueError:
        return {}
    return state if isinstance(state, dict) else {}


def count_rows(conn, collection: str) -> int:
    """Rows the collection holds now (``count(*)``, strongly consistent)."""
    res = _call(f"collection {collection}", conn.query, collection, filter="", output_fields=["count(*)"],
                consistency_level="Strong")  # fmt: skip
    return int(res[0]["count(*)"])


# -- writing: sync and rebuild ----------------------------------------------------------------
def sync(root: Path, manifest: Manifest, *, full: bool = False) -> dict[str, Any]:
    """Bring the index's collection in step with ``manifest`` (called by every writer after its
    commit, under the index's write lock); returns what was done.

    Extends the collection when its stamp is an earlier state of this index (upserts rows added
    since, deletes rows removed since); otherwise, or with ``full``, drops and refills it from the
    verified vector segments.
    """
    spec = manifest.backend
    collection = str(spec["collection"])
    want = stamp(manifest)
    try:
        conn = client(root, spec)
        have = None if full else collection_state(conn, collection)
        rebuild_it = (
            have is None
            or have.get("fields") != want["fields"]
            or not isinstance(have.get("n_rows"), int)
            or have["n_rows"] > want["n_rows"]
        )
        if rebuild_it:
            _create(conn, collection, manifest)
            start = 0
        else:
            start = int(have["n_rows"])
        docs = DocumentStore(root, manifest.documents)
        try:
            written = _write_rows(root, conn, collection, manifest, docs, start, upsert=not rebuild_it)
            deleted = 0
            if not rebuild_it and have.get("removed") != want["removed"] and docs.removed.size:
                deleted = _delete_rows(conn, collection, docs.removed)
        finally:
            docs.close()
        _call(f"collection {collection}", conn.alter_collection_properties, collection,
              properties={STATE: json.dumps(want, sort_keys=True)})  # fmt: skip
    except KeffError as exc:
        raise KeffError(f"{where(root, spec)} could not be brought in step with {root} ({exc}); run: keff index "
                        f"rebuild-backend {root}") from None  # fmt: skip
    return {"rebuilt": rebuild_it, "written": written, "deleted": deleted, "collection": collection}


def rebuild(root: Path, manifest: Manifest) -> dict[str, Any]:
    """Drop and refill the index's collection from its verified vector segments."""
    return sync(root, manifest, full=True)


def _create(conn, collection: str, manifest: Manifest) -> None:
    pymilvus = _pymilvus()
    what = f"collection {collection}"
    if _call(what, conn.has_collection, collection):
        _call(what, conn.drop_collection, collection)
    schema = _call(what, conn.create_schema, auto_id=False, enable_dynamic_field=False)
    schema.add_field(ROW, pymilvus.DataType.INT64, is_primary=True)
    schema.add_field(DOC_ID, pymilvus.DataType.VARCHAR, max_length=MAX_ID_BYTES)
    index_params = conn.prepare_index_params()
    for key, name in field_names(manifest.encoders).items():
        schema.add_field(name, pymilvus.DataType.FLOAT_VECTOR, dim=int(manifest.encoders[key]["dim"]))
        index_params.add_index(name, index_type="FLAT", metric_type="IP")
    _call(what, conn.create_collection, collection, schema=schema, index_params=index_params,
          consistency_level="Strong")  # fmt: skip
    _call(what, conn.load_collection, collection)


def _segments_from(manifest: Manifest, start: int):
    """(first row, rows, index of the segment) of each document segment holding rows >= start."""
    for i, seg in enumerate(manifest.documents.get("segments", [])):
        first, rows = int(seg.get("first_row", 0)), int(seg.get("rows", 0))
        if first + rows > start:
            yield first, rows, i


def _write_rows(root, conn, collection, manifest, docs: DocumentStore, start: int, *, upsert: bool) -> int:
    """Insert (or upsert, idempotent after a crash) the live rows >= ``start``; returns how many."""
    width = sum(int(spec["dim"]) for spec in manifest.encoders.values())
    batch = max(1, min(10_000, INSERT_BYTES // (4 * width)))
    write = conn.upsert if upsert else conn.insert
    total = int(docs.alive[start:].sum())
    written = 0
    with progress_bar(f"copying vectors to Milvus collection {collection}", total, unit="rows",
                      enabled=None if total >= 50_000 else False) as bar:  # fmt: skip
        for segment in _segments_from(manifest, start):
            for data in _row_batches(root, manifest, docs, segment, start, batch):
                _call(f"collection {collection}", write, collection, data)
                written += len(data)
                bar.advance(len(data))
    return written


def _row_batches(root, manifest, docs: DocumentStore, segment: tuple[int, int, int], start: int, batch: int):
    """Rows (dicts of every field) of the live rows >= ``start`` of one document segment, in batches."""
    first, rows, i = segment
    fields = field_names(manifest.encoders)
    vecs = {}
    for key, spec in manifest.encoders.items():
        one = {"segments": [spec["segments"][i]], "dim": spec["dim"]}
        vecs[key] = load_vectors(root, key, one, [rows])  # verified: the source of truth
    live = [r for r in range(max(first, start), first + rows) if docs.alive[r]]
    for b in range(0, len(live), batch):
        data = []
        for r in live[b : b + batch]:
            doc_id = docs.ids[r]
            if len(doc_id.encode("utf-8")) > MAX_ID_BYTES:
                raise DataError(f"document id longer than Milvus's {MAX_ID_BYTES}-byte VARCHAR", item_id=doc_id)
            data.append({ROW: r, DOC_ID: doc_id, **{name: vecs[key][r - first] for key, name in fields.items()}})
        yield data


def _delete_rows(conn, collection: str, rows: np.ndarray) -> int:
    """Delete ``rows`` by primary key (idempotent: rows already gone are no error)."""
    rows = np.unique(np.asarray(rows, dtype=np.int64))
    for b in range(0, rows.size, 10_000):
        _call(f"collection {collection}", conn.delete, collection, ids=rows[b : b + 10_000].tolist())
    return int(rows.size)


# -- reading: the open-time check and search --------------------------------------------------
class MilvusCollection:
    """The searchable copy of one index in Milvus, checked in step with its manifest on opening.

    Parameters
    ----------
    root : Path
        The index folder.
    manifest : Manifest
        Its committed state.
    documents : DocumentStore
        Its documents (ids and the alive mask).

    Raises
    ------
    KeffError
        The collection is missing or out of step with the manifest (the message names
        ``keff index rebuild-backend``), or Milvus cannot be reached.
    """

    def __init__(self, root: Path, manifest: Manifest, documents: DocumentStore) -> None:
        self.root = root
        self.spec = manifest.backend
        self.collection = str(self.spec.get("collection"))
        self.depth = int(self.spec.get("depth", 0) or 0)
        self.fields = field_names(manifest.encoders)
        self.documents = documents
        self.conn = client(root, self.spec)
        self._check(manifest)

    def _check(self, manifest: Manifest) -> None:
        name = where(self.root, self.spec)
        have = collection_state(self.conn, self.collection)
        want = stamp(manifest)
        problem = None
        if have is None:
            problem = "it does not exist"
        elif have.get("fields") != want["fields"]:
            problem = f"its vector fields {have.get('fields')} are not the index's encoders {want['fields']}"
        elif (have.get("n_rows"), have.get("removed")) != (want["n_rows"], want["removed"]):
            problem = (f"it was synced at generation {have.get('generation')} ({have.get('n_rows')} rows), the "
                       f"manifest is at generation {want['generation']} ({want['n_rows']} rows"
                       f"{', other removals' if have.get('removed') != want['removed'] else ''})")  # fmt: skip
        else:
            _call(name, self.conn.load_collection, self.collection)
            n = count_rows(self.conn, self.collection)
            if n != self.documents.n_live:
                problem = f"it holds {n} rows, the index {self.documents.n_live} live documents"
            else:
                problem = self._check_ids()
        if problem:
            raise KeffError(f"{name} is out of step with the index {self.root}: {problem}; rebuild it from the "
                            f"index's verified vectors with: keff index rebuild-backend {self.root}")  # fmt: skip

    def _check_ids(self) -> str | None:
        """The first and last live rows hold the document ids of the index (catches a collection
        of another index with the same shape)."""
        live = np.flatnonzero(self.documents.alive)
        if not live.size:
            return None
        probe = sorted({int(live[0]), int(live[-1])})
        got = _call(where(self.root, self.spec), self.conn.query, self.collection, filter=f"{ROW} in {probe}",
                    output_fields=[DOC_ID], consistency_level="Strong")  # fmt: skip
        held = {int(r[ROW]): r[DOC_ID] for r in got}
        for r in probe:
            if held.get(r) != self.documents.ids[r]:
                return f"row {r} holds document {held.get(r)!r}, the index {self.documents.ids[r]!r}"
        return None

    def field(self, key: str) -> MilvusField:
        """The search structure of one encoder (what :class:`keff.docindex.backends.Searcher` calls)."""
        return MilvusField(self, self.fields[key])

    def search(self, field: str, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` (scores, rows) of one vector field, padded with -inf / -1 (at most :data:`MAX_TOPK`)."""
        k = max(1, min(int(k), MAX_TOPK))
        out_s, out_r = [], []
        step = _batch(k)
        for b in range(0, queries.shape[0], step):
            q = np.ascontiguousarray(queries[b : b + step], dtype=np.float32)
            res = _call(where(self.root, self.spec), self.conn.search, self.collection, data=list(q),
                        anns_field=field, limit=k, search_params={"metric_type": "IP"}, output_fields=[],
                        consistency_level="Strong")  # fmt: skip
            s, r = _padded(res, k)
            out_s.append(s)
            out_r.append(r)
        return _stack(out_s, out_r, k)

    def hybrid_search(
        self, keys: Sequence[str], queries: Sequence[np.ndarray], weights: np.ndarray, k: int,
        *, depth: int | None = None, norm_score: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """Fused top-``k`` through Milvus's multi-vector hybrid search (see the module docstring).

        Parameters
        ----------
        keys : sequence of str
            Encoder keys, one ``AnnSearchRequest`` each.
        queries : sequence of ndarray
            (n, dim) query vectors of each key.
        weights : ndarray, shape (S, n)
            Each query's encoder weights (queries with the same weights share one request).
        k : int
            Results per query (live documents only: rows the alive mask rules out are dropped).
        depth : int, optional
            Candidates per field (default: the backend's ``depth``, 0 = ``max(4k, 100)``).
        norm_score : bool
            Passed to ``WeightedRanker``; False (keff's) adds the raw cosines.

        Returns
        -------
        scores, rows : ndarray, shape (n, k')
            k' = min(k, live documents); padded with -inf / -1 if Milvus returned fewer.
        """
        pymilvus = _pymilvus()
        alive = self.documents.alive
        n_live = int(alive.sum())
        n_removed = int(alive.size - n_live)
        k = min(int(k), n_live)
        n = queries[0].shape[0]
        if k == 0:
            return np.zeros((n, 0), dtype=np.float32), np.zeros((n, 0), dtype=np.int64)
        limit = min(k + n_removed, MAX_TOPK)
        depth = int(depth if depth is not None else self.depth) or max(4 * k, 100)
        depth = max(min(depth, MAX_TOPK), limit)
        w = np.asarray(weights, dtype=np.float64)
        groups, which = np.unique(w.T, axis=0, return_inverse=True)
        which = np.asarray(which).reshape(-1)
        scores = np.full((n, k), -np.inf, dtype=np.float32)
        rows = np.full((n, k), -1, dtype=np.int64)
        for g, group in enumerate(groups):
            idx = np.flatnonzero(which == g)
            ranker = pymilvus.WeightedRanker(*[float(x) for x in group], norm_score=norm_score)
            step = _batch(depth * len(keys))
            for b in range(0, idx.size, step):
                part = idx[b : b + step]
                reqs = [
                    pymilvus.AnnSearchRequest(
                        data=list(np.ascontiguousarray(q[part], dtype=np.float32)), anns_field=self.fields[key],
                        param={"metric_type": "IP"}, limit=depth,
                    )
                    for key, q in zip(keys, queries)
                ]  # fmt: skip
                res = _call(where(self.root, self.spec), self.conn.hybrid_search, self.collection, reqs, ranker,
                            limit=limit, output_fields=[])  # fmt: skip
                s, r = _padded(res, limit)
                keep = (r >= 0) & alive[np.clip(r, 0, None)]
                for j, qi in enumerate(part):
                    got = np.flatnonzero(keep[j])[:k]
                    scores[qi, : got.size] = s[j, got]
                    rows[qi, : got.size] = r[j, got]
        return scores, rows


class MilvusField:
    """One encoder's vector field, searched like a FAISS index (``search(queries, k)`` returns
    scores and rows padded with -inf / -1), so :class:`keff.docindex.backends.Searcher` filters
    its results by the alive mask as it does FAISS's."""

    def __init__(self, store: MilvusCollection, name: str) -> None:
        self.store = store
        self.name = name

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.store.search(self.name, queries, k)


def _batch(hits_per_query: int) -> int:
    """Queries per request so a request returns at most :data:`HIT_BUDGET` hits (at least one)."""
    return max(1, min(QUERY_BATCH, HIT_BUDGET // max(int(hits_per_query), 1)))


def _padded(res, k: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(res)
    scores = np.full((n, k), -np.inf, dtype=np.float32)
    rows = np.full((n, k), -1, dtype=np.int64)
    for i, hits in enumerate(res):
        for j, hit in enumerate(list(hits)[:k]):
            rows[i, j] = int(hit[ROW])
            scores[i, j] = float(hit["distance"])
    return scores, rows


def _stack(out_s: list[np.ndarray], out_r: list[np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    if not out_s:
        return np.zeros((0, k), dtype=np.float32), np.zeros((0, k), dtype=np.int64)
    return np.concatenate(out_s), np.concatenate(out_r)


# -- hooks of the index's writers (keff.docindex.index) -----------------------------------------
def after_commit(root: Path, manifest: Manifest) -> None:
    """Sync the collection after a writer's commit (no-op for other backends)."""
    if manifest.backend.get("kind") == KIND:
        sync(root, manifest)


def after_staged_build(staging: Path, manifest: Manifest) -> None:
    """Fill the collection of a build staged in ``staging``, then release a Lite file inside it so
    the folder can be moved into place (no-op for other backends)."""
    if manifest.backend.get("kind") != KIND:
        return
    try:
        sync(staging, manifest, full=True)
    finally:
        _release_inside(staging, manifest.backend)


def before_replace(root: Path) -> dict[str, Any] | None:
    """Before a build replaces the index at ``root``: release this process's Lite server of a Lite
    file inside it (it is about to move away); returns the old backend field when it was Milvus."""
    try:
        old = read_manifest(root).backend if (root / MANIFEST).is_file() else None
    except KeffError:
        return None
    if not isinstance(old, dict) or old.get("kind") != KIND:
        return None
    try:
        _release_inside(root, old)
    except KeffError:
        return None
    return old


def _release_inside(root: Path, spec: dict[str, Any]) -> None:
    """Release this process's Lite server of the backend's Lite file if it lives inside ``root``
    (a Lite file elsewhere may serve other indexes of this process: it is left running)."""
    uri = resolve_uri(root, spec)
    if is_lite(uri) and Path(uri).is_relative_to(os.path.abspath(root)):
        release(Path(uri))


def drop_replaced(root: Path, old: dict[str, Any] | None, new: dict[str, Any]) -> None:
    """After a build replaced an index: drop the old index's collection when it lives outside the
    old folder (a server, or an absolute Lite path); a failure only warns (the build is done)."""
    if old is None or old.get("collection") == new.get("collection"):
        return
    uri = str(old.get("uri") or DEFAULT_URI)
    if is_lite(uri) and not Path(uri).is_absolute():
        return  # it was inside the old folder, removed with it
    try:
        conn = client(root, old)
        if conn.has_collection(str(old["collection"])):
            conn.drop_collection(str(old["collection"]))
    except Exception as exc:  # noqa: BLE001 - cleanup of the replaced index must not fail the build
        warnings.warn(f"{where(root, old)} of the replaced index was not dropped: {_short(exc)}", stacklevel=2)


def check_rebuildable(root: Path, manifest: Manifest) -> None:
    """Refuse :func:`rebuild` on an index whose backend is not Milvus."""
    if manifest.backend.get("kind") != KIND:
        raise FormatError(f"{root}: the index's backend is {manifest.backend.get('kind')!r}, not milvus: "
                          "nothing to rebuild")  # fmt: skip


__all__ = [
    "DEFAULT_TOKEN_ENV",
    "DEFAULT_URI",
    "KIND",
    "MilvusCollection",
    "MilvusField",
    "check_uri",
    "milvus_spec",
    "rebuild",
    "release",
    "stamp",
    "sync",
]
