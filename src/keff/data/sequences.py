"""Ordered paragraphs: articles read from WikiText "raw" files, for next-paragraph prediction.

WikiText raw format: `` = Title = `` (one ``=`` each side) starts an article; `` = = Section = = ``
and deeper levels are section headings; every other non-blank line is one paragraph, tokens
separated by spaces, with `` @-@ ``, `` @,@ `` and `` @.@ `` standing for ``-``, ``,`` and ``.``
inside numbers and compounds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from keff.data._io import read_lines
from keff.data.leakage import normalize_text
from keff.data.splits import grouped_split
from keff.errors import DataError

_HEADING = re.compile(r"^((?:= )+)(.*?)((?: =)+)$")
_MARKERS = ((" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."))


@dataclass(frozen=True)
class Article:
    """One article: its title and its paragraphs in order (section headings dropped)."""

    title: str
    paragraphs: list[str]


def detokenize(text: str) -> str:
    """Undo WikiText's ``@-@``, ``@,@`` and ``@.@`` markers and trim the ends."""
    for marker, char in _MARKERS:
        text = text.replace(marker, char)
    return text.strip()


def heading_level(line: str) -> tuple[int, str] | None:
    """``(level, text)`` if ``line`` is a WikiText heading (`` = T = `` is level 1), else None."""
    match = _HEADING.match(line.strip())
    if match is None:
        return None
    lead, text, trail = match.groups()
    level = lead.count("=")
    if level != trail.count("=") or not text.strip():
        return None
    return level, text


def load_wikitext(path: str | Path) -> list[Article]:
    """Read a WikiText raw file into articles.

    Parameters
    ----------
    path : str or Path
        The ``.raw`` (or ``.tokens``) file.

    Returns
    -------
    list of Article
        Articles in file order; articles without any paragraph are dropped.

    Raises
    ------
    DataError
        Text before the first `` = Title = `` line (naming that line), or no article at all.
    """
    path = Path(path)
    _, lines = read_lines(path, what="WikiText raw file")
    articles: list[Article] = []
    current: Article | None = None
    for number, line in lines:
        heading = heading_level(line)
        if heading is not None and heading[0] == 1:
            current = Article(title=detokenize(heading[1]), paragraphs=[])
            articles.append(current)
            continue
        if current is None:
            raise DataError(
                "text before the first article title (expected a ' = Title = ' line first)",
                path=path,
                line=number,
            )
        if heading is None:
            current.paragraphs.append(detokenize(line))
    kept = [a for a in articles if a.paragraphs]
    if not kept:
        raise DataError("no article with paragraphs found", path=path)
    return kept


# -- ordered units of documents, for next-unit prediction -----------------------------------------
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
#: Tokens ending in "." that do not end a sentence (lower-cased, without the dot).
_ABBREVIATIONS = frozenset(
    "e.g i.e et al fig figs vs cf approx no nos dr mr mrs ms prof st ca resp ref refs eq eqs vol pp".split()
)


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text`` in order: a break after ``.``, ``!`` or ``?`` followed by white space
    and a capital letter, digit or opening quote/bracket, except after common abbreviations
    (``e.g.``, ``et al.``, ``Fig.``, ...) and single capital initials ("J. Smith")."""
    parts = _SENTENCE_END.split(text.strip())
    out: list[str] = []
    for part in parts:
        part = part.strip()
        if not part:
            continue
        if out:
            last = out[-1].rsplit(None, 1)[-1].strip("([{\"'").rstrip(".").lower()
            if last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha()):
                out[-1] = f"{out[-1]} {part}"
                continue
        out.append(part)
    return out


@dataclass(frozen=True)
class Sequences:
    """Documents as ordered units (paragraphs or sentences).

    Attributes
    ----------
    name : str
        The data set (``wikitext``, ``scifact``, ``medquad``).
    unit : str
        ``paragraph`` or ``sentence``.
    doc_ids : list of str
        One id per document.
    units : list of list of str
        Each document's units, in reading order.
    """

    name: str
    unit: str
    doc_ids: list[str]
    units: list[list[str]]

    def __post_init__(self) -> None:
        if len(self.doc_ids) != len(self.units):
            raise DataError(f"{self.name}: {len(self.doc_ids)} document ids for {len(self.units)} documents")
        if len(set(self.doc_ids)) != len(self.doc_ids):
            raise DataError(f"{self.name}: document ids repeat")

    @property
    def n_units(self) -> int:
        return sum(len(u) for u in self.units)

    def flat(self) -> tuple[list[str], list[int], list[int]]:
        """(every unit's text, its document index, its position in the document), documents in order."""
        texts, doc, pos = [], [], []
        for d, units in enumerate(self.units):
            texts += units
            doc += [d] * len(units)
            pos += list(range(len(units)))
        return texts, doc, pos


def _kept(name: str, unit: str, docs: list[tuple[str, list[str]]], min_units: int) -> Sequences:
    if min_units < 2:
        raise DataError(f"min_units must be >= 2 (a context and a next unit), got {min_units}")
    kept = [(d, u) for d, u in docs if len(u) >= min_units]
    if not kept:
        raise DataError(f"{name}: no document has {min_units} or more {unit}s")
    return Sequences(name, unit, [d for d, _ in kept], [u for _, u in kept])


def wikitext_sequences(path: str | Path, *, min_units: int = 3) -> Sequences:
    """WikiText articles as ordered paragraphs (articles with fewer than ``min_units`` dropped;
    titles repeated in a file get a ``#n`` suffix)."""
    seen: dict[str, int] = {}
    docs = []
    for article in load_wikitext(path):
        seen[article.title] = seen.get(article.title, 0) + 1
        doc_id = article.title if seen[article.title] == 1 else f"{article.title}#{seen[article.title]}"
        docs.append((doc_id, list(article.paragraphs)))
    return _kept("wikitext", "paragraph", docs, min_units)


def sentence_sequences(
    name: str, doc_ids: list[str], texts: list[str], *, min_units: int = 3, min_words: int = 3
) -> Sequences:
    """Documents split into sentences (:func:`split_sentences`); sentences of fewer than
    ``min_words`` words are dropped, as are documents left with fewer than ``min_units``."""
    docs = []
    for doc_id, text in zip(doc_ids, texts, strict=True):
        docs.append((doc_id, [s for s in split_sentences(text) if len(s.split()) >= min_words]))
    return _kept(name, "sentence", docs, min_units)


def qa_page_sequences(
    path: str | Path,
    *,
    name: str = "medquad",
    doc_field: str = "doc",
    answer_field: str = "answer",
    min_units: int = 3,
) -> Sequences:
    """Pages of a Q/A JSONL file read as ordered sentences: the distinct answers of each page
    (the lines sharing ``doc_field``, MedQuAD's source page), in file order, split into sentences.

    Raises
    ------
    DataError
        A line without a string ``doc_field`` or ``answer_field`` (file:line).
    """
    from keff.data._io import read_jsonl

    path = Path(path)
    _, records = read_jsonl(path, what="Q/A file")
    pages: dict[str, list[str]] = {}
    for number, obj in records:
        page, answer = obj.get(doc_field), obj.get(answer_field)
        if not isinstance(page, str) or not page or not isinstance(answer, str):
            raise DataError(f"each line needs a string {doc_field!r} and a string {answer_field!r}", path=path,
                            line=number)  # fmt: skip
        answers = pages.setdefault(page, [])
        if answer not in answers:
            answers.append(answer)
    return sentence_sequences(name, list(pages), [" ".join(a) for a in pages.values()], min_units=min_units)


def sample_documents(seq: Sequences, n: int, *, seed: int = 0) -> Sequences:
    """A seeded sample of ``n`` documents (all when there are fewer), kept in their order."""
    if n >= len(seq.doc_ids):
        return seq
    rows = np.sort(np.random.default_rng(seed).choice(len(seq.doc_ids), n, replace=False))
    return Sequences(seq.name, seq.unit, [seq.doc_ids[i] for i in rows], [seq.units[i] for i in rows])


@dataclass(frozen=True)
class SequenceSplit:
    """Document-disjoint parts of a :class:`Sequences` and what the leak check found.

    Attributes
    ----------
    train, val, test : ndarray of int
        Document indices of each part (no document in two parts).
    repeated : frozenset of str
        Normalised unit texts found in the training documents and in a validation or test
        document: windows whose context or target is one of them are leaks (an evaluation drops
        them and says how many).
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    repeated: frozenset[str]


def split_sequences(seq: Sequences, *, val_frac: float = 0.1, test_frac: float = 0.2, seed: int = 0) -> SequenceSplit:
    """Seeded document-disjoint split, with the units repeated across the training/held-out line."""
    split = grouped_split(len(seq.doc_ids), val_frac=val_frac, test_frac=test_frac, seed=seed)
    train_texts = {normalize_text(u) for d in split.train for u in seq.units[d]}
    held = {normalize_text(u) for d in np.concatenate([split.val, split.test]) for u in seq.units[d]}
    return SequenceSplit(split.train, split.val, split.test, frozenset(train_texts & held))


def load_sequences(path: str | Path, *, min_units: int = 3) -> Sequences:
    """Documents as ordered units from ``path``:

    - a WikiText raw file (``.raw``/``.tokens``): articles as paragraphs;
    - a BEIR folder (``corpus.jsonl``): each document's title-less text as sentences;
    - a JSONL file of documents (``{"id": ..., "text": ...}`` per line): each text as sentences.

    Raises
    ------
    DataError
        A missing path, a JSONL line without a string ``id`` or ``text`` (file:line), or no
        document with ``min_units`` units.
    """
    from keff.data._io import read_jsonl

    path = Path(path)
    if path.is_dir():
        from keff.data.beir import load_beir

        ds = load_beir(path, splits=[])
        return sentence_sequences(path.name, list(ds.doc_ids), list(ds.doc_texts), min_units=min_units)
    if not path.is_file():
        raise DataError("not found: give a WikiText .raw file, a BEIR folder or a JSONL file of documents", path=path)
    if path.suffix in (".raw", ".tokens"):
        return wikitext_sequences(path, min_units=min_units)
    _, records = read_jsonl(path, what="JSONL file of documents")
    ids, texts = [], []
    for number, obj in records:
        doc_id, text = obj.get("id"), obj.get("text")
        if not isinstance(doc_id, str) or not isinstance(text, str):
            raise DataError("each line needs a string 'id' and a string 'text'", path=path, line=number)
        ids.append(doc_id)
        texts.append(text)
    return sentence_sequences(path.stem, ids, texts, min_units=min_units)
