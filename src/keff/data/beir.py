"""BEIR-format retrieval corpora: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.

Layout of a dataset folder (as published by BEIR)::

    NAME/corpus.jsonl        {"_id": str, "title": str (optional), "text": str, ...} per line
    NAME/queries.jsonl       {"_id": str, "text": str, ...} per line
    NAME/qrels/test.tsv      query-id <TAB> corpus-id <TAB> score   (header line optional)

Every problem is a :class:`~keff.errors.DataError` naming the file, the 1-based line and the id.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from keff.data._io import UniqueIds, get_str, read_jsonl, read_lines
from keff.errors import DataError

logger = logging.getLogger(__name__)

QRELS_HEADER = ("query-id", "corpus-id", "score")


@dataclass(frozen=True)
class BeirDataset:
    """One BEIR dataset loaded in memory.

    Attributes
    ----------
    name : str
        The dataset folder's name.
    root : Path
        The dataset folder.
    doc_ids : list of str, length n_docs
        Document ids in ``corpus.jsonl`` order.
    doc_texts : list of str, length n_docs
        ``(title + " " + text).strip()`` per document (the text that gets encoded).
    query_ids : list of str, length n_queries
        All query ids in ``queries.jsonl`` order.
    query_texts : list of str, length n_queries
        Query texts, same order.
    qrels : dict
        ``split -> query id -> doc id -> relevance`` as written in ``qrels/<split>.tsv``.
        Scores <= 0 are kept as given; the metric library treats them as non-relevant.
    file_hashes : dict
        Path relative to ``root`` -> hex SHA-256 of that file's bytes, for every file read.
    """

    name: str
    root: Path
    doc_ids: list[str]
    doc_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    qrels: dict[str, dict[str, dict[str, int]]]
    file_hashes: dict[str, str]

    def split_queries(self, split: str) -> tuple[list[str], list[str]]:
        """Return ``(ids, texts)`` of the queries judged in ``qrels[split]``, in file order.

        Raises
        ------
        DataError
            If ``split`` was not loaded; the message lists the splits that were.
        """
        if split not in self.qrels:
            available = ", ".join(sorted(self.qrels)) or "none"
            raise DataError(
                f"split {split!r} not loaded for {self.name!r} (available: {available})",
                path=self.root / "qrels",
            )
        judged = self.qrels[split]
        ids, texts = [], []
        for qid, text in zip(self.query_ids, self.query_texts):
            if qid in judged:
                ids.append(qid)
                texts.append(text)
        return ids, texts

    def doc_index(self) -> dict[str, int]:
        """Map each document id to its row in ``doc_ids`` (and in any corpus vector array)."""
        return {doc_id: row for row, doc_id in enumerate(self.doc_ids)}


def _load_records(path: Path, *, with_title: bool, what: str) -> tuple[str, list[str], list[str]]:
    """Read ``corpus.jsonl`` or ``queries.jsonl``: (sha256, ids, texts)."""
    sha, records = read_jsonl(path, what=what)
    seen = UniqueIds(path, "_id")
    ids, texts = [], []
    for line, obj in records:
        item_id = get_str(obj, "_id", path=path, line=line)
        text = get_str(obj, "text", path=path, line=line, item_id=item_id)
        if with_title:
            title = get_str(obj, "title", path=path, line=line, item_id=item_id, default="")
            text = (title + " " + text).strip()
        seen.add(item_id, line)
        ids.append(item_id)
        texts.append(text)
    blank = [i for i, t in zip(ids, texts) if not t.strip()]
    if blank:
        logger.warning(
            "%s: %d %s empty or whitespace-only text (first: id %r); they are encoded as given, and an "
            "empty text's vector carries no meaning",
            path,
            len(blank),
            "entry has" if len(blank) == 1 else "entries have",
            blank[0],
        )
    return sha, ids, texts


def _load_qrels(path: Path, query_ids: set[str], doc_ids: set[str]) -> tuple[str, dict[str, dict[str, int]]]:
    """Read one qrels TSV file: (sha256, query id -> doc id -> score)."""
    sha, lines = read_lines(path, what="qrels file (query-id<TAB>corpus-id<TAB>score)")
    qrels: dict[str, dict[str, int]] = {}
    first_line: dict[tuple[str, str], int] = {}
    for line, text in lines:
        cols = text.split("\t")
        if line == lines[0][0] and tuple(c.strip().lower() for c in cols) == QRELS_HEADER:
            continue
        if len(cols) != 3:
            raise DataError(
                f"expected 3 tab-separated columns (query-id, corpus-id, score), got {len(cols)}",
                path=path,
                line=line,
            )
        qid, did, raw_score = (c.strip() for c in cols)
        try:
            score = int(raw_score)
        except ValueError:
            raise DataError(f"score {raw_score!r} is not an integer", path=path, line=line) from None
        if qid not in query_ids:
            raise DataError("query id not in queries.jsonl", path=path, line=line, item_id=qid)
        if did not in doc_ids:
            raise DataError("corpus id not in corpus.jsonl", path=path, line=line, item_id=did)
        judged = qrels.setdefault(qid, {})
        if did in judged and judged[did] != score:
            raise DataError(
                f"conflicting score for query {qid!r} (line {first_line[qid, did]} gives "
                f"{judged[did]}, this line {score})",
                path=path,
                line=line,
                item_id=did,
            )
        first_line.setdefault((qid, did), line)
        judged[did] = score
    return sha, qrels


def _qrels_paths(root: Path, splits: Sequence[str] | None) -> dict[str, Path]:
    qdir = root / "qrels"
    if splits is None:
        found = sorted(qdir.glob("*.tsv")) if qdir.is_dir() else []
        if not found:
            raise DataError("no qrels found: expected one or more qrels/<split>.tsv files", path=qdir)
        return {p.stem: p for p in found}
    if isinstance(splits, str):
        splits = [splits]
    paths = {}
    for split in splits:
        p = qdir / f"{split}.tsv"
        if not p.is_file():
            have = sorted(q.stem for q in qdir.glob("*.tsv")) if qdir.is_dir() else []
            raise DataError(
                f"missing qrels for split {split!r}: expected this file (splits present: {', '.join(have) or 'none'})",
                path=p,
            )
        paths[split] = p
    return paths


def load_beir(root: str | Path, splits: Sequence[str] | None = None) -> BeirDataset:
    """Load and validate a BEIR-format dataset folder.

    Parameters
    ----------
    root : str or Path
        The dataset folder (holding ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/``).
    splits : sequence of str, optional
        Which ``qrels/<split>.tsv`` files to load; default every ``qrels/*.tsv``.

    Returns
    -------
    BeirDataset

    Raises
    ------
    DataError
        A missing file or split; malformed JSON or a non-object line; a missing or non-string
        ``_id``/``text``/``title``; a duplicate ``_id`` (naming the first line too); an empty
        corpus; a qrels line with the wrong column count, a non-integer score, or an unknown
        query or corpus id. Messages give ``file:line``.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError("not a BEIR dataset folder (expected a directory)", path=root)
    corpus_path, queries_path = root / "corpus.jsonl", root / "queries.jsonl"
    corpus_sha, doc_ids, doc_texts = _load_records(
        corpus_path, with_title=True, what='corpus.jsonl ({"_id", "title", "text"} per line)'
    )
    if not doc_ids:
        raise DataError("empty corpus: no documents", path=corpus_path)
    queries_sha, query_ids, query_texts = _load_records(
        queries_path, with_title=False, what='queries.jsonl ({"_id", "text"} per line)'
    )
    hashes = {"corpus.jsonl": corpus_sha, "queries.jsonl": queries_sha}
    qid_set, did_set = set(query_ids), set(doc_ids)
    qrels = {}
    for split, path in _qrels_paths(root, splits).items():
        sha, qrels[split] = _load_qrels(path, qid_set, did_set)
        hashes[path.relative_to(root).as_posix()] = sha
    return BeirDataset(
        name=root.resolve().name,
        root=root,
        doc_ids=doc_ids,
        doc_texts=doc_texts,
        query_ids=query_ids,
        query_texts=query_texts,
        qrels=qrels,
        file_hashes=hashes,
    )
