"""Model upgrade without downtime: serve a new encoder's queries at once, re-embed in the background, switch.

An index holds one encoder's vectors (the *old* model). :func:`upgrade` makes it answer queries
of a *new* encoder right away, before any document is re-embedded:

1. ``anchors`` of the index's own live documents (a seeded sample) are embedded by the new
   encoder; maps are fitted on them both ways: new->old (to map queries into the old space) and
   old->new (to map the stored document vectors into the new space).
2. Every serving mode is validated against keeping the old model, on queries the maps were not
   fitted on, each searched against the whole index:

   - ``mapped-queries``: new-encoder queries mapped into the old space, against the old vectors;
   - ``mapped-docs``: new-encoder queries against the old vectors mapped into the new space;
   - ``hybrid``: the old model's cosine and the ``mapped-docs`` cosine averaged (equal weights,
     not tuned; the query is encoded by both models).

   Without labelled queries the validation queries are *pseudo-queries* made from held-out
   anchors (``holdout`` of them, never fitted on): each held-out document's first sentence (at
   most :data:`PSEUDO_QUERY_WORDS` words) is a query whose only relevant document is that
   document, searched against the whole index, where that document is represented (for every
   system alike) by the vectors of its text *without* the query sentence (an inverse-cloze
   task). Left in, the sentence makes the task trivial for the old model: on SciFact it finds a
   document from its first sentence (the title) at nDCG@10 0.993, so nothing could validate
   above it. With ``queries`` (a BEIR folder) the judged queries of a training split are used
   instead (every anchor is then fitted on); test queries never are (``split="test"`` is refused
   and training queries whose text equals a test query's are dropped).
3. **The rule**: a mode is accepted only if its nDCG@10 is at or above the old model's on those
   queries; the accepted mode with the best nDCG@10 (then MRR@10) serves. When none is accepted
   the upgrade is refused (:class:`UpgradeRefused`, with the measured figures) and nothing is
   written.

The accepted state is committed through the index's manifest (``extra["upgrade"]``): the
target encoder (name, fingerprint, dim, key), the serving mode, both maps as SEF files with their
SHA-256 (``upgrade/``), the anchors and the validation figures. From then on
:meth:`keff.docindex.Index.search` encodes queries with the new encoder (and the old one for
``hybrid``) and answers through :class:`Serving`; queries given only as old-encoder vectors are
still answered by the old model.

:func:`reembed` then encodes the documents with the new encoder, ``chunk`` rows per commit (one
``vectors/<new key>/reembed-*.npy`` file each), through keff's embedding cache, so a killed run
resumes after the last committed chunk and encodes nothing twice. Meanwhile re-embedded documents are served with
their true new vectors and the rest with mapped ones (``mapped-queries``: the true new vectors of
re-embedded rows against the unmapped query, the old vectors of the rest against the mapped
query). When every row is re-embedded it **switches over** in one commit: the new encoder replaces
the old one, its vectors written per document segment exactly as a fresh build with the new
encoder writes them; the upgrade state and the old vectors are dropped.

Search during an upgrade is exact (every live row scored), whatever the index's backend; the
switch-over builds the new encoder's search structure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from keff.alignment import provenance, texts_sha256
from keff.arrays import as_matrix, l2_normalize
from keff.data import load_beir
from keff.docindex.backends import build_ann
from keff.docindex.index import Index, _commit, _record, _stem, writer_lock
from keff.docindex.manifest import FileEntry, check_relative, file_entry, read_manifest, verify
from keff.docindex.vectors import encoder_key, load_vectors, write_vectors
from keff.encoders import get_encoder
from keff.encoders.registry import encoder_for_artifact
from keff.errors import DataError, FormatError, KeffError
from keff.eval.metrics import evaluate_run, run_from_topk
from keff.index.numpy_backend import topk_rows
from keff.maps import Map, alignment_report, load_map, make_map, map_params
from keff.progress import progress_bar

#: Key of the upgrade state in the manifest's ``extra``.
STATE = "upgrade"
#: Folder (inside the index) of the upgrade's maps.
FOLDER = "upgrade"
#: Serving modes, in the order they are preferred on a tie.
MODES: dict[str, str] = {
    "mapped-docs": "new-encoder queries against the old vectors mapped into the new space",
    "mapped-queries": "new-encoder queries mapped into the old space, against the old vectors",
    "hybrid": "old-model cosine and mapped-docs cosine averaged (query encoded by both models)",
}
#: Metrics of the validation; the first decides.
METRICS = ("ndcg@10", "mrr@10")
#: Words kept of a held-out document's first sentence to make its pseudo-query.
PSEUDO_QUERY_WORDS = 32
#: Default rows re-embedded per commit.
CHUNK = 1024
#: Rows encoded between two progress updates.
PROGRESS_STEP = 128
#: Scores computed per block of queries: at most this many (query, row) cells at once.
_BLOCK_CELLS = 1 << 24
NO_TEST = "validation never uses test queries: give a training split (--split train)"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class UpgradeRefused(KeffError):
    """No serving mode validated at or above the old model; nothing was changed.

    Attributes
    ----------
    validation : Validation
        The measured figures.
    """

    def __init__(self, message: str, validation: Validation) -> None:
        super().__init__(message)
        self.validation = validation


@dataclass
class Validation:
    """How the serving modes compared with keeping the old model.

    Attributes
    ----------
    queries : str
        What the validation queries were.
    n_queries : int
    figures : dict
        ``"old"`` and each mode -> ``{"ndcg@10": ..., "mrr@10": ...}``.
    accepted : list of str
        Modes at or above the old model's nDCG@10.
    chosen : str or None
        The accepted mode that serves (None: refused).
    """

    queries: str
    n_queries: int
    figures: dict[str, dict[str, float]]
    accepted: list[str] = field(default_factory=list)
    chosen: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        """One line: every system's nDCG@10 / MRR@10."""
        return "; ".join(
            f"{name} nDCG@10 {f['ndcg@10']:.4f}, MRR@10 {f['mrr@10']:.4f}" for name, f in self.figures.items()
        )


def decide(figures: dict[str, dict[str, float]], modes: Sequence[str] = tuple(MODES)) -> tuple[list[str], str | None]:
    """The validation rule: modes whose nDCG@10 is at or above ``figures["old"]``'s are accepted;
    the best accepted one by nDCG@10, then MRR@10, then :data:`MODES` order, is chosen."""
    floor = figures["old"][METRICS[0]]
    accepted = [m for m in modes if figures[m][METRICS[0]] >= floor]
    order = list(MODES)
    best = max(accepted, key=lambda m: (figures[m][METRICS[0]], figures[m][METRICS[1]], -order.index(m)), default=None)
    return accepted, best


@dataclass
class ValidationQueries:
    """Queries the maps were not fitted on, with the documents relevant to each."""

    ids: list[str]
    texts: list[str]
    qrels: dict[str, dict[str, int]]
    description: str
    #: Pseudo-queries only: the rows of their documents, and those documents' texts without the query
    #: sentence (the vectors the validation searches for them).
    rows: np.ndarray | None = None
    rest: list[str] | None = None


def pseudo_query(text: str, max_words: int = PSEUDO_QUERY_WORDS) -> tuple[str, str]:
    """A document's pseudo-query and the rest of it: its first sentence (up to ``. ! ?`` and a
    space; at most ``max_words`` words of it) and the text after that sentence."""
    parts = _SENTENCE_END.split(text.strip(), maxsplit=1)
    return " ".join(parts[0].split()[:max_words]), (parts[1].strip() if len(parts) > 1 else "")


def pseudo_queries(index: Index, rows: Sequence[int]) -> ValidationQueries:
    """Pseudo-queries of document ``rows`` (see :func:`pseudo_query`; the relevant document of each is
    its own, searched without the query sentence); documents of one sentence make none."""
    ids, texts, qrels, rest, kept = [], [], {}, [], []
    for row, doc in zip(rows, index.documents.get(rows)):
        query, remainder = pseudo_query(doc.text)
        if query and remainder:
            qid = f"pseudo:{doc.id}"
            ids.append(qid)
            texts.append(query)
            qrels[qid] = {doc.id: 1}
            rest.append(remainder)
            kept.append(int(row))
    if not ids:
        raise DataError("no held-out anchor has two sentences to make a pseudo-query from (query and rest)")
    return ValidationQueries(
        ids, texts, qrels,
        f"{len(ids)} pseudo-queries (first sentence of a held-out anchor, searched for the rest of that anchor)",
        rows=np.asarray(kept, dtype=np.int64), rest=rest,
    )  # fmt: skip


def labelled_queries(index: Index, folder: str | Path, split: str) -> ValidationQueries:
    """The judged queries of ``split`` of a BEIR folder whose relevant documents the index holds.

    Test queries are never used: ``split="test"`` is refused, and queries whose text equals a
    test query's are dropped.
    """
    if split.strip().lower() == "test":
        raise KeffError(NO_TEST)
    ds = load_beir(folder)
    if split not in ds.qrels:
        raise DataError(f"no qrels/{split}.tsv (splits here: {', '.join(sorted(ds.qrels)) or 'none'})", path=folder)
    test_texts = set(ds.split_queries("test")[1]) if "test" in ds.qrels else set()
    ids, texts, qrels, dropped_test, dropped_absent = [], [], {}, 0, 0
    for qid, text in zip(*ds.split_queries(split)):
        rels = {d: r for d, r in ds.qrels[split][qid].items() if r > 0 and d in index.documents.row_of}
        if text in test_texts:
            dropped_test += 1
        elif not rels:
            dropped_absent += 1
        else:
            ids.append(qid)
            texts.append(text)
            qrels[qid] = rels
    if not ids:
        raise DataError(f"no {split} query has a relevant document in the index", path=folder)
    notes = [f"{len(ids)} judged {split} queries of {Path(folder).name}"]
    if dropped_test:
        notes.append(f"{dropped_test} identical to a test query dropped")
    if dropped_absent:
        notes.append(f"{dropped_absent} without a relevant document in the index dropped")
    return ValidationQueries(ids, texts, qrels, "; ".join(notes))


# -- serving ----------------------------------------------------------------------------------
def _entry(root: Path, doc: Any, where: str, check: bool) -> Path:
    if not isinstance(doc, dict):
        raise FormatError(f"{root}: {where} is not a file entry")
    entry = FileEntry(str(doc.get("path")), str(doc.get("sha256")))
    return verify(root, entry, where) if check else check_relative(root, entry.path, where)


def _int(doc: dict, name: str, where: str) -> int:
    value = doc.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FormatError(f"{where}: {name} must be an integer >= 0; got {value!r}")
    return value


class Serving:
    """How an index under upgrade answers new-encoder queries (see the module docstring).

    Parameters
    ----------
    index : Index
        The index (its vectors, documents and encoders).
    state : dict
        The manifest's ``extra["upgrade"]``.
    check : bool
        Verify the SHA-256 of the map and chunk files.
    maps : dict, optional
        ``{"new->old": Map, "old->new": Map}`` to use instead of loading the state's files (the
        validation scores candidate modes before anything is written).
    vectors : dict, optional
        Encoder key -> document vectors to score instead of the index's (the validation's
        pseudo-query documents without their query sentence).
    """

    def __init__(
        self,
        index: Index,
        state: dict,
        *,
        check: bool = True,
        maps: dict[str, Map] | None = None,
        vectors: dict[str, np.ndarray] | None = None,
    ) -> None:
        where = f"{index.root}: upgrade state"
        if not isinstance(state, dict) or not isinstance(state.get("target"), dict):
            raise FormatError(f"{where} is not an object with a target")
        self.index = index
        self.state = state
        self.vectors = index.vectors if vectors is None else vectors
        self.source_key = str(state.get("source"))
        self.target = state["target"]
        self.target_key = str(self.target.get("key"))
        self.mode = str(state.get("mode"))
        if self.source_key not in index.manifest.encoders:
            raise FormatError(f"{where} upgrades encoder {self.source_key!r}, which the index does not have")
        if self.mode not in MODES:
            raise FormatError(f"{where} has an unknown mode {self.mode!r}")
        self.dim = _int(self.target, "dim", where)
        if maps is None:
            maps = {}
            for direction in ("new->old", "old->new"):
                path = _entry(
                    index.root, state.get("maps", {}).get(direction), f"{direction} map of the upgrade", check
                )
                maps[direction] = load_map(path)[0]
        self.maps = maps
        old_dim = int(index.manifest.encoders[self.source_key]["dim"])
        dims = {"new->old": (self.dim, old_dim), "old->new": (old_dim, self.dim)}
        if any((maps[d].source_dim_, maps[d].target_dim_) != dims[d] for d in dims):
            raise FormatError(f"{where}: the maps' dimensions do not match the encoders ({old_dim}-d, {self.dim}-d)")
        chunks = state.get("reembed", {}).get("chunks", [])
        self.done = 0
        for i, chunk in enumerate(chunks):
            if not isinstance(chunk, dict) or _int(chunk, "first_row", where) != self.done:
                raise FormatError(f"{where}: re-embedded chunk {i} does not start at row {self.done}")
            self.done += _int(chunk, "rows", where)
        spec = {"segments": chunks, "dim": self.dim}
        reembedded = [load_vectors(index.root, self.target_key, spec, [c["rows"] for c in chunks], check=check)]
        old = self.vectors[self.source_key]
        if self.done > old.shape[0]:
            raise FormatError(f"{where}: {self.done} rows re-embedded but the index has {old.shape[0]}")
        #: Every row in the new space: true vectors of re-embedded rows, mapped ones for the rest.
        self.new_side = np.concatenate(
            [*reembedded, l2_normalize(maps["old->new"].transform(old[self.done :]))]
            if self.done < old.shape[0]
            else reembedded
        ).astype(np.float32, copy=False)

    # -- what the index asks ----------------------------------------------------------------
    def query_keys(self, keys: Sequence[str]) -> list[str]:
        """The encoder keys that encode a text query, given the index's: the new encoder replaces
        the old one (``hybrid`` keeps both)."""
        out = []
        for key in keys:
            if key == self.source_key:
                out += [self.source_key, self.target_key] if self.mode == "hybrid" else [self.target_key]
            else:
                out.append(key)
        return out

    def handles(self, queries: dict[str, np.ndarray]) -> bool:
        """Whether these query vectors are answered here (they include the new encoder's)."""
        return self.target_key in queries

    def load_encoder(self, explicit: dict[str, str]):
        """The new encoder, its fingerprint checked against the one the maps were fitted with."""
        name = str(self.target.get("name"))
        return encoder_for_artifact(
            name,
            str(self.target.get("fingerprint", "")),
            what=f"upgrade target of index {self.index.root}",
            explicit=explicit.get(name),
        )

    def info(self) -> dict[str, Any]:
        return {
            "target": {k: self.target.get(k) for k in ("name", "key", "dim", "fingerprint")},
            "from": self.source_key,
            "mode": self.mode,
            "map": self.state.get("map"),
            "anchors": self.state.get("anchors", {}).get("n"),
            "validation": self.state.get("validation"),
            "reembedded": self.done,
            "rows": int(self.index.documents.n_rows),
        }

    # -- scoring --------------------------------------------------------------------------------
    def upgraded_scores(self, queries: dict[str, np.ndarray], rows: np.ndarray, mode: str | None = None) -> np.ndarray:
        """Scores (n, len(rows)) of the upgraded encoder's slot for the new-encoder queries."""
        mode = mode or self.mode
        q_new = as_matrix(queries[self.target_key], "new-encoder queries", floating=True)
        if q_new.shape[1] != self.dim:
            raise KeffError(f"queries of {self.target_key} are {q_new.shape[1]}-d, expected {self.dim}-d")
        old = self.vectors[self.source_key]
        if mode in ("old", "hybrid") and self.source_key not in queries:
            raise KeffError(
                f"the {mode} mode also needs the old encoder's query vectors ({self.source_key}); "
                "encode the queries with Index.encode_queries"
            )
        if mode == "old":  # the validation's reference: keeping the old model
            return as_matrix(queries[self.source_key], "old-encoder queries", floating=True) @ old[rows].T
        if mode == "mapped-queries":
            mapped = l2_normalize(self.maps["new->old"].transform(q_new))
            scores = mapped @ old[rows].T
            done = rows < self.done
            if done.any():
                scores[:, done] = q_new @ self.new_side[rows[done]].T
            return scores
        scores = q_new @ self.new_side[rows].T
        if mode == "hybrid":
            q_old = as_matrix(queries[self.source_key], "old-encoder queries", floating=True)
            scores = 0.5 * scores + 0.5 * (q_old @ old[rows].T)
        return scores

    def search(
        self,
        queries: dict[str, np.ndarray],
        k: int = 10,
        *,
        weights: np.ndarray | None = None,
        mode: str | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` live rows, exact: the upgraded slot scored by ``mode`` (default the state's),
        the index's other encoders in ``queries`` by cosine, slots weighted (default equal).

        ``weights`` is (S,) or (S, n) over the slots in the index's encoder order (the upgraded
        slot where the old encoder was).
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise KeffError(f"k must be a positive integer; got {k!r}")
        index = self.index
        own = {self.source_key, self.target_key}
        unknown = [key for key in queries if key not in own and key not in index.manifest.encoders]
        if unknown:
            raise KeffError(f"index {index.root} has no encoder {unknown} (it has {', '.join(index.encoder_keys)})")
        slots = [key for key in index.encoder_keys if key == self.source_key or key in queries]
        n = as_matrix(queries[self.target_key], "new-encoder queries").shape[0]
        w = np.full((len(slots), n), 1.0 / len(slots), dtype=np.float32) if weights is None else np.asarray(weights)
        if w.ndim == 1:
            w = np.repeat(w[:, None], n, axis=1)
        if w.shape != (len(slots), n):
            raise KeffError(f"weights must have shape ({len(slots)},) or ({len(slots)}, {n}); got {w.shape}")
        rows = np.flatnonzero(index.documents.alive)
        k = min(int(k), rows.size)
        if k == 0:
            return np.zeros((n, 0), dtype=np.float32), np.zeros((n, 0), dtype=np.int64)
        block = max(1, _BLOCK_CELLS // max(rows.size, 1))
        out_s, out_r = [], []
        for start in range(0, n, block):
            part = {key: np.asarray(q)[start : start + block] for key, q in queries.items()}
            total = np.zeros((min(block, n - start), rows.size), dtype=np.float32)
            for j, key in enumerate(slots):
                if key == self.source_key:
                    s = self.upgraded_scores(part, rows, mode)
                else:
                    s = as_matrix(part[key], f"queries of {key}", floating=True) @ self.vectors[key][rows].T
                total += w[j, start : start + block, None] * s
            top, pos = topk_rows(total, k)
            out_s.append(top)
            out_r.append(rows[pos])
        return np.concatenate(out_s), np.concatenate(out_r)


# -- upgrading --------------------------------------------------------------------------------
@dataclass
class UpgradeReport:
    """What :func:`upgrade` committed."""

    target: str
    target_key: str
    mode: str
    validation: Validation
    map: str
    anchors: int
    n_fit: int
    #: Names of attached transforms fitted on the old encoder: detached at the switch-over.
    detach_at_switch: list[str] = field(default_factory=list)


def _open(index: Index | str | Path) -> Index:
    return index if isinstance(index, Index) else Index.open(index)


def _state(index: Index) -> dict | None:
    state = index.manifest.extra.get(STATE)
    return state if isinstance(state, dict) else None


def _in_progress(state: dict) -> str:
    done = sum(int(c.get("rows", 0)) for c in state.get("reembed", {}).get("chunks", []))
    return (
        f"an upgrade to {state.get('target', {}).get('name')!r} is in progress ({done:,} rows re-embedded): finish it "
        "with 'keff index reembed' or cancel it with 'keff index upgrade --cancel'"
    )


def _evaluate(index: Index, vq: ValidationQueries, scores: np.ndarray, rows: np.ndarray) -> dict[str, float]:
    run = run_from_topk(vq.ids, index.documents.ids, scores, rows)
    aggregate, _ = evaluate_run(run, vq.qrels, METRICS)
    return {m: float(aggregate[m]) for m in METRICS}


def _save_map(root: Path, stem: str, direction: str, fitted: Map, meta: dict) -> dict:
    path = root / FOLDER / f"{stem}.{direction.replace('->', '-to-')}.sef"
    path.parent.mkdir(parents=True, exist_ok=True)
    fitted.save(path, meta=meta)
    return file_entry(root, path).to_dict()


def upgrade(
    index: Index | str | Path,
    to: str,
    *,
    anchors: int = 1000,
    map_kind: str = "affine",
    holdout: float = 0.2,
    queries: str | Path | None = None,
    split: str = "train",
    seed: int = 0,
) -> UpgradeReport:
    """Fit maps to the new encoder ``to``, validate every serving mode, commit the best one.

    Parameters
    ----------
    index : Index or path
        A committed index; its primary (first) encoder is the one upgraded.
    to : str
        The new encoder (:func:`keff.encoders.get_encoder` name).
    anchors : int
        Live documents embedded by the new encoder to fit the maps (seeded sample).
    map_kind : str
        Map kind (:data:`keff.maps.MAPS`), fitted both ways with its defaults (and ``seed``).
    holdout : float
        Share of the anchors held out to make pseudo-queries (without ``queries``).
    queries : path, optional
        A BEIR folder whose ``split`` queries and qrels validate instead of pseudo-queries.
    split : str
        The training split of ``queries``; ``"test"`` is refused.
    seed : int
        Seed of the anchor draw, the held-out split and the maps that take one.

    Returns
    -------
    UpgradeReport

    Raises
    ------
    UpgradeRefused
        No mode validated at or above the old model (nothing changed; the figures are attached).
    KeffError
        Bad arguments, an upgrade already in progress, or the new encoder is the old one.
    """
    index = _open(index)
    if queries is not None and split.strip().lower() == "test":
        raise KeffError(NO_TEST)
    if _state(index) is not None:
        raise KeffError(_in_progress(_state(index)))
    if not 0 <= holdout < 1:
        raise KeffError(f"holdout must be in [0, 1); got {holdout}")
    params = {"seed": seed} if "seed" in map_params(map_kind) else {}
    make_map(map_kind, **params)  # an unknown kind fails before any encoding
    source = index.encoder_keys[0]
    spec = index.manifest.encoders[source]
    new = get_encoder(to)
    target_key = encoder_key(to, new.fingerprint)
    if new.fingerprint == spec["fingerprint"]:
        raise KeffError(f"{to!r} is already the encoder of index {index.root} ({source})")
    if target_key in index.manifest.encoders:
        raise KeffError(f"index {index.root} already has encoder {target_key}; upgrade to another one")
    live = np.flatnonzero(index.documents.alive)
    if isinstance(anchors, bool) or not isinstance(anchors, int) or not 2 <= anchors <= live.size:
        raise KeffError(f"anchors must be an integer in [2, {live.size}] (the index's live documents); got {anchors!r}")
    rng = np.random.default_rng(seed)
    anchor_rows = np.sort(rng.choice(live, size=anchors, replace=False))
    n_held = 0 if queries is not None else int(round(holdout * anchors))
    if queries is None and not 1 <= n_held <= anchors - 2:
        raise KeffError(
            f"holdout {holdout} of {anchors} anchors leaves {n_held} pseudo-queries and {anchors - n_held} anchors "
            "to fit: need at least 1 and 2"
        )
    order = rng.permutation(anchors)
    held_rows, fit_rows = np.sort(anchor_rows[order[:n_held]]), np.sort(anchor_rows[order[n_held:]])
    vq = labelled_queries(index, queries, split) if queries is not None else pseudo_queries(index, held_rows)

    texts = index.documents.texts(anchor_rows)
    Y = new.encode(texts, kind="doc")
    X = index.vectors[source][anchor_rows]
    pos = {int(r): i for i, r in enumerate(anchor_rows)}
    fit_i = [pos[int(r)] for r in fit_rows]
    maps = {
        "new->old": make_map(map_kind, **params).fit(Y[fit_i], X[fit_i]),
        "old->new": make_map(map_kind, **params).fit(X[fit_i], Y[fit_i]),
    }
    target = {"name": to, "fingerprint": new.fingerprint, "dim": int(new.dim), "key": target_key}
    state: dict[str, Any] = {
        "source": source,
        "target": target,
        "mode": "mapped-docs",
        "map": {"kind": map_kind, "params": maps["old->new"].get_params()},
        "anchors": {
            "n": int(anchors),
            "n_fit": len(fit_rows),
            "n_held_out": n_held,
            "seed": seed,
            "ids_sha256": texts_sha256([index.documents.ids[r] for r in anchor_rows]),
        },
        "reembed": {"chunks": []},
    }

    validation = validate(index, state, maps, vq, new)
    if validation.chosen is None:
        raise UpgradeRefused(
            f"upgrade to {to} refused: no serving mode validates at or above the old model on {vq.description} "
            f"({validation.summary()}); nothing changed",
            validation,
        )
    state["mode"] = validation.chosen
    state["validation"] = validation.to_dict()
    held_i = [pos[int(r)] for r in held_rows]
    reports = {}
    if len(held_i) >= 3:  # fit quality on the held-out anchors, recorded in the maps' provenance
        k = min(10, len(held_i) - 1)
        reports = {
            "new->old": alignment_report(maps["new->old"], Y[held_i], X[held_i], k=k),
            "old->new": alignment_report(maps["old->new"], X[held_i], Y[held_i], k=k),
        }
    meta = {"anchors": texts, "seed": seed, "n_fit": len(fit_rows),
            "anchor_description": f"{anchors} documents of index {index.root.name} drawn with seed {seed}"}  # fmt: skip
    _commit_state(index, state, spec, maps, reports, meta)
    detach = [str(t.get("name")) for t in index.manifest.transforms if source in (t.get("encoders") or [])]
    return UpgradeReport(to, target_key, validation.chosen, validation, map_kind, anchors, len(fit_rows), detach)


def validate(index: Index, state: dict, maps: dict[str, Map], vq: ValidationQueries, new) -> Validation:
    """The old model and every serving mode scored on the same validation queries, each searched
    exactly against the whole index; :func:`decide` applied."""
    encoded = index.encode_queries(vq.texts)
    encoded[state["target"]["key"]] = new.encode(vq.texts, kind="query")
    vectors = index.vectors
    if vq.rows is not None:  # each pseudo-query's document without its query sentence, by every encoder
        vectors = {key: v.copy() for key, v in index.vectors.items()}
        for key in index.encoder_keys:
            vectors[key][vq.rows] = index.encoder(key).encode(vq.rest, kind="doc")
    serving = Serving(index, state, maps=maps, vectors=vectors)
    figures = {mode: _evaluate(index, vq, *serving.search(encoded, 10, mode=mode)) for mode in ("old", *MODES)}
    accepted, chosen = decide(figures)
    return Validation(vq.description, len(vq.ids), figures, accepted, chosen)


def _commit_state(index: Index, state: dict, spec: dict, maps: dict[str, Map], reports: dict, meta: dict) -> None:
    """Write the maps (SEF, with provenance) and commit the upgrade state, under the writer lock."""
    source, target = state["source"], state["target"]
    with writer_lock(index.root):
        manifest = read_manifest(index.root)
        if isinstance(manifest.extra.get(STATE), dict):
            raise KeffError(_in_progress(manifest.extra[STATE]))
        if manifest.encoders.get(source, {}).get("fingerprint") != spec["fingerprint"]:
            raise KeffError(f"index {index.root} changed encoders while the upgrade was validated; run it again")
        manifest.generation += 1
        stem = _stem(manifest.generation)
        who = {"old": {k: spec[k] for k in ("name", "fingerprint", "dim")}, "new": target}
        state["maps"] = {}
        for direction, fitted in maps.items():
            src, dst = ("new", "old") if direction == "new->old" else ("old", "new")
            prov = provenance(source=who[src], target=who[dst], report=reports.get(direction), **meta)
            state["maps"][direction] = _save_map(index.root, stem, direction, fitted, prov)
        manifest.extra[STATE] = state
        v = state["validation"]
        manifest.history.append(
            _record("upgrade", to=target["name"], mode=state["mode"], map=state["map"]["kind"],
                    anchors=state["anchors"]["n"], validation=Validation(**v).summary())
        )  # fmt: skip
        _commit(index.root, manifest)
    index._reload()


def cancel_upgrade(index: Index | str | Path) -> bool:
    """Drop an upgrade in progress (its maps and re-embedded chunks go); returns whether there was one."""
    index = _open(index)
    with writer_lock(index.root):
        manifest = read_manifest(index.root)
        if STATE not in manifest.extra:
            return False
        target = manifest.extra.pop(STATE).get("target", {}).get("name")
        manifest.history.append(_record("upgrade-cancel", to=target))
        _commit(index.root, manifest, bump=True)
    index._reload()
    return True


# -- re-embedding and switching over ----------------------------------------------------------
@dataclass
class ReembedReport:
    """What :func:`reembed` did: rows encoded in this run, rows re-embedded in all, whether it switched."""

    encoded: int
    reembedded: int
    rows: int
    switched: bool
    target: str


def _write_chunk(root: Path, key: str, stem: str, vectors: np.ndarray) -> dict:
    return write_vectors(root, key, f"reembed-{stem}", vectors)


def _encode_rows(index: Index, encoder, rows: np.ndarray, advance) -> np.ndarray:
    """New-encoder vectors of ``rows`` (removed rows are never served: zeros), :data:`PROGRESS_STEP`
    rows at a time, calling ``advance(n)`` after each step."""
    out = np.zeros((rows.size, int(encoder.dim)), dtype=np.float32)
    for start in range(0, rows.size, PROGRESS_STEP):
        part = rows[start : start + PROGRESS_STEP]
        alive = index.documents.alive[part]
        if alive.any():
            texts = index.documents.texts(part[alive])
            out[start : start + part.size][alive] = encoder.encode(texts, kind="doc", show_progress=False)
        advance(part.size)
    return out


def reembed(
    index: Index | str | Path,
    *,
    chunk: int = CHUNK,
    max_rows: int | None = None,
    show_progress: bool | None = None,
) -> ReembedReport:
    """Re-embed the remaining documents with the upgrade's new encoder, then switch over.

    Commits every ``chunk`` rows (a killed run resumes after the last committed chunk; vectors it
    encoded but did not commit come back from keff's cache). Other writers may add or remove
    documents between chunks; rows added meanwhile are re-embedded too before the switch. With
    ``max_rows``, stops after that many rows (a later run continues).
    """
    index = _open(index)
    for name, value in (("chunk", chunk), ("max_rows", 1 if max_rows is None else max_rows)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise KeffError(f"{name} must be a positive integer; got {value!r}")
    if index.upgrade is None:
        raise KeffError(f"index {index.root} has no upgrade in progress: run 'keff index upgrade' first")
    target = index.upgrade.target
    encoder = index.encoder(index.upgrade.target_key)
    encoded, switched = 0, False
    budget = index.documents.n_rows if max_rows is None else max_rows
    with progress_bar(
        f"re-embedding with {target['name']}", min(budget, index.documents.n_rows - index.upgrade.done),
        enabled=show_progress, unit="documents",
    ) as bar:  # fmt: skip
        while index.upgrade is not None:
            if index.upgrade.done >= index.documents.n_rows:
                switched = _switch(index)
                index._reload()
                if switched:
                    break
                continue  # rows were added meanwhile
            if max_rows is not None and encoded >= max_rows:
                break
            start = index.upgrade.done
            step = chunk if max_rows is None else min(chunk, max_rows - encoded)
            rows = np.arange(start, min(start + step, index.documents.n_rows))
            vecs = _encode_rows(index, encoder, rows, bar.advance)
            with writer_lock(index.root):
                manifest = read_manifest(index.root)
                state = manifest.extra.get(STATE)
                if not isinstance(state, dict) or state.get("target", {}).get("key") != target["key"]:
                    raise KeffError(f"the upgrade of index {index.root} was cancelled or replaced meanwhile")
                if sum(int(c["rows"]) for c in state["reembed"]["chunks"]) == start:  # else another run did it
                    manifest.generation += 1
                    entry = _write_chunk(index.root, target["key"], _stem(manifest.generation), vecs)
                    state["reembed"]["chunks"].append({**entry, "first_row": int(start), "rows": int(rows.size)})
                    _commit(index.root, manifest)
                    encoded += rows.size
            index._reload()
    done = index.documents.n_rows if index.upgrade is None else index.upgrade.done
    return ReembedReport(encoded, done, index.documents.n_rows, switched, target["name"])


def _switch(index: Index) -> bool:
    """Make the new encoder the index's (one commit); False when rows were added meanwhile."""
    with writer_lock(index.root):
        manifest = read_manifest(index.root)
        state = manifest.extra.get(STATE)
        current = Index(index.root, manifest, encoders=index._explicit)
        try:
            if current.upgrade is None or current.upgrade.done != current.documents.n_rows:
                return False
            vectors = current.upgrade.new_side
            target = current.upgrade.target
            key = target["key"]
            spec = {"name": target["name"], "fingerprint": target["fingerprint"], "dim": int(target["dim"]),
                    "segments": [], "ann": None}  # fmt: skip
            start = 0
            for seg in manifest.documents["segments"]:
                stem = Path(seg["text"]["path"]).name.split(".")[0]
                rows = int(seg["rows"])
                spec["segments"].append(write_vectors(index.root, key, stem, vectors[start : start + rows]))
                start += rows
            manifest.generation += 1
            spec["ann"] = build_ann(index.root, key, _stem(manifest.generation), manifest.backend, vectors)
            manifest.encoders = {
                (key if k == state["source"] else k): (spec if k == state["source"] else v)
                for k, v in manifest.encoders.items()
            }
            del manifest.extra[STATE]
            # transforms fitted on the replaced encoder do not fit the new one: detached in this commit
            dropped = [t.get("name") for t in manifest.transforms if state["source"] in (t.get("encoders") or [])]
            manifest.transforms = [t for t in manifest.transforms if state["source"] not in (t.get("encoders") or [])]
            manifest.history.append(
                _record("switch", to=target["name"], replaced=state["source"], rows=int(start), mode=state["mode"],
                        detached=dropped)
            )  # fmt: skip
            _commit(index.root, manifest)
        finally:
            current.close()
    return True


__all__ = [
    "MODES",
    "ReembedReport",
    "Serving",
    "UpgradeRefused",
    "UpgradeReport",
    "Validation",
    "cancel_upgrade",
    "decide",
    "pseudo_query",
    "reembed",
    "upgrade",
    "validate",
]
