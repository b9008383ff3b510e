"""Documents in: a BEIR folder, a JSONL file of ``{"id", "text", ...}``, or a folder of text files.

- **BEIR folder** (``corpus.jsonl``): each document's text is ``(title + " " + text).strip()``,
  as keff evaluates it; the title goes to the metadata.
- **JSONL**: one object per line with an ``id`` (string or integer) and a ``text``; every other
  field becomes metadata. Errors name the file and line.
- **Folder of ``.txt`` / ``.md`` files** (read recursively, in sorted path order, UTF-8): each
  file is split into passages. The rule: paragraphs are separated by blank lines; consecutive
  paragraphs are joined into one passage while it stays within :data:`PASSAGE_CHARS`
  characters; a paragraph longer than that is cut at sentence ends (``. ! ?`` followed by a
  space), or at the limit when a sentence alone is longer. Passage ids are
  ``<relative path>#<n>`` (1-based); the metadata holds the path, the passage number and the
  file's title (its first Markdown heading, else its name). The models read 128-384 tokens (about
  500-1,500 characters), so a passage of at most 1,000 characters is seen whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from keff.data import load_beir
from keff.data._io import get_str, read_jsonl, read_lines
from keff.docindex.documents import Document, check_documents
from keff.errors import DataError

PASSAGE_CHARS = 1000
TEXT_SUFFIXES = (".txt", ".md")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")


def _pieces(paragraph: str, limit: int) -> Iterator[str]:
    """A paragraph cut at sentence ends (or at ``limit``) into pieces of at most ``limit`` chars."""
    current = ""
    for sentence in _SENTENCE_END.split(paragraph):
        while len(sentence) > limit:
            if current:
                yield current
                current = ""
            yield sentence[:limit]
            sentence = sentence[limit:]
        if current and len(current) + 1 + len(sentence) > limit:
            yield current
            current = sentence
        else:
            current = f"{current} {sentence}" if current else sentence
    if current:
        yield current


def split_passages(text: str, limit: int = PASSAGE_CHARS) -> list[str]:
    """Passages of a text file by the rule in the module docstring."""
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    passages, current = [], ""
    for paragraph in paragraphs:
        for piece in _pieces(paragraph, limit) if len(paragraph) > limit else [paragraph]:
            if current and len(current) + 2 + len(piece) > limit:
                passages.append(current)
                current = piece
            else:
                current = f"{current}\n\n{piece}" if current else piece
    if current:
        passages.append(current)
    return passages


def _title(text: str, path: Path) -> str:
    for line in text.splitlines():
        match = _HEADING.match(line)
        if match:
            return match.group(1)
    return path.stem


def folder_documents(folder: Path) -> list[Document]:
    """Passages of every ``.txt`` / ``.md`` file under ``folder`` (see the module docstring)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
    if not files:
        raise DataError(f"no {' or '.join(TEXT_SUFFIXES)} files in this folder", path=folder)
    docs = []
    for path in files:
        rel = path.relative_to(folder).as_posix()
        text = _with_blank_lines(path)
        title = _title(text, path)
        for n, passage in enumerate(split_passages(text), start=1):
            docs.append(Document(f"{rel}#{n}", passage, {"path": rel, "passage": n, "title": title}))
    return docs


def _with_blank_lines(path: Path) -> str:
    """The file's text with its blank lines (paragraph breaks) kept; read_lines drops them."""
    _, lines = read_lines(path, what="text file")
    if not lines:
        return ""
    out, previous = [], None
    for number, line in lines:
        if previous is not None and number > previous + 1:
            out.append("")
        out.append(line)
        previous = number
    return "\n".join(out)


def jsonl_documents(path: Path) -> list[Document]:
    """Documents of a JSONL file (see the module docstring)."""
    _, records = read_jsonl(path, what="documents JSONL file")
    docs, first = [], {}
    for line, obj in records:
        doc_id = get_str(obj, "id", path=path, line=line, allow_int=True)
        text = get_str(obj, "text", path=path, line=line, item_id=doc_id)
        if not doc_id:
            raise DataError("empty id", path=path, line=line)
        if doc_id in first:
            raise DataError(f"duplicate id (first on line {first[doc_id]})", path=path, line=line, item_id=doc_id)
        first[doc_id] = line
        docs.append(Document(doc_id, text, {k: v for k, v in obj.items() if k not in ("id", "text")}))
    if not docs:
        raise DataError("no documents", path=path)
    return docs


def beir_documents(folder: Path) -> list[Document]:
    """The corpus of a BEIR folder, texts as keff evaluates them."""
    ds = load_beir(folder)
    return [Document(i, t) for i, t in zip(ds.doc_ids, ds.doc_texts)]


def read_documents(source: str | Path) -> list[Document]:
    """Documents from a BEIR folder, a JSONL file or a folder of text files, by what ``source`` is."""
    path = Path(source).expanduser()
    if path.is_dir():
        docs = beir_documents(path) if (path / "corpus.jsonl").is_file() else folder_documents(path)
    elif path.is_file() and path.suffix == ".jsonl":
        docs = jsonl_documents(path)
    elif path.is_file() and path.suffix.lower() in TEXT_SUFFIXES:
        text = _with_blank_lines(path)
        docs = [Document(f"{path.name}#{n}", p, {"path": path.name, "passage": n, "title": _title(text, path)})
                for n, p in enumerate(split_passages(text), start=1)]  # fmt: skip
    else:
        raise DataError("expected a BEIR folder, a .jsonl file of documents, or a folder of .txt/.md files", path=path)
    return check_documents(docs, what=str(path))
