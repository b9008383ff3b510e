"""Question/answer pair sets in JSONL, with relevance keys and leak-free groups.

Each line is one pair: an id, a question, an answer, and optional fields that say which answers
count as relevant to which questions (``relevance_fields``) or which pairs must stay on the same
side of a split (``split_fields``). :func:`load_qa` turns those into string keys per pair and a
connected-component ``groups`` array, so a split by group never puts a shared answer, document,
focus or cluster on both sides.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from keff.data._groups import key_components
from keff.data._io import get_str, read_jsonl
from keff.data.leakage import normalize_text
from keff.data.qa_layout import PRESETS, QALayout, as_keys, detect_layout, key_name, with_overrides
from keff.errors import DataError

_MAX_PLAIN_KEY = 64


def text_key(field_name: str, value: str) -> str:
    """The key for one field value: ``"field=value"``, or ``"field=sha1:<hex>"`` for long text."""
    if len(value) <= _MAX_PLAIN_KEY and "\n" not in value:
        return f"{field_name}={value}"
    return f"{field_name}=sha1:{hashlib.sha1(value.encode('utf-8')).hexdigest()}"


@dataclass(frozen=True)
class QAPairs:
    """A loaded Q/A pair set.

    Attributes
    ----------
    path : Path
        The JSONL file.
    ids : list of str, length n
        Pair ids (unique; see ``renamed``).
    questions, answers : list of str, length n
        Question and answer texts, in file order.
    relevance_keys : list of frozenset of str, length n
        Per pair: one key per relevance field (e.g. ``"cluster_id=X"``,
        ``"original_answer=sha1:<hex>"``) plus ``"answer=sha1:<hex>"`` of its exact answer text.
        Two pairs whose keys intersect answer each other's question.
    groups : ndarray of int64, shape (n,)
        Connected component of each pair over the relevance keys, the split-field keys, the
        exact answer text and the normalised question text, numbered 0.. in order of first appearance.
    sha256 : str
        Hex SHA-256 of the file.
    renamed : dict of str to str
        Ids given to repeated ids when loaded with ``duplicate_ids="suffix"``: new id -> the id
        as written in the file. Empty when every id was unique.
    layout : QALayout
        The layout the file was read with.
    """

    path: Path
    ids: list[str]
    questions: list[str]
    answers: list[str]
    relevance_keys: list[frozenset[str]]
    groups: np.ndarray
    sha256: str
    renamed: dict[str, str] = field(default_factory=dict)
    layout: QALayout = field(default_factory=QALayout)

    def __len__(self) -> int:
        return len(self.ids)


def _unique_ids(raw: list[tuple[int, str]], path: Path, policy: str) -> tuple[list[str], dict[str, str]]:
    """Check ids are unique (policy "error") or rename repeats to ``id#2``, ``id#3``... ("suffix")."""
    if policy not in ("error", "suffix"):
        raise DataError(f"duplicate_ids must be 'error' or 'suffix', got {policy!r}")
    first: dict[str, int] = {}
    taken = {item_id for _, item_id in raw}
    ids, renamed = [], {}
    for line, item_id in raw:
        if item_id not in first:
            first[item_id] = line
            ids.append(item_id)
            continue
        if policy == "error":
            raise DataError(
                f"duplicate id (first seen on line {first[item_id]}); pass duplicate_ids='suffix' to number repeats",
                path=path,
                line=line,
                item_id=item_id,
            )
        k = 2
        while f"{item_id}#{k}" in taken:
            k += 1
        new = f"{item_id}#{k}"
        taken.add(new)
        renamed[new] = item_id
        ids.append(new)
    return ids, renamed


def load_qa(
    path: str | Path,
    *,
    layout: QALayout | str | None = None,
    preset: str | None = None,
    id_field: str | None = None,
    question_field: str | None = None,
    answer_field: str | None = None,
    relevance_fields: Sequence[str | Sequence[str]] | None = None,
    split_fields: Sequence[str | Sequence[str]] | None = None,
    duplicate_ids: str | None = None,
    missing_keys: str | None = None,
) -> QAPairs:
    """Load and validate a JSONL file of question/answer pairs, read from exactly ``path``.

    Parameters
    ----------
    path : str or Path
        The JSONL file, one JSON object per line.
    layout : QALayout, str or None
        How the file is laid out: a :class:`~keff.data.qa_layout.QALayout`, a preset name
        (``"skills"``, ``"medquad"``), ``"auto"`` (the preset whose fields every line holds, else
        the generic layout; never guessed from the file name), or None (the generic layout:
        fields ``id``, ``question``, ``answer``, relevance by exact answer text only).
    preset : str, optional
        Same as ``layout=<name>`` (kept for older callers).
    id_field, question_field, answer_field : str, optional
        Field names (override the layout's; contradicting a preset is an error).
    relevance_fields, split_fields : sequence, optional
        Keys: a field name, ``"a+b"`` or ``["a", "b"]`` for a compound key.
    duplicate_ids : {"error", "suffix"}, optional
        A repeated id is an error, or is renamed ``<id>#2``, ``<id>#3``... (kept in ``renamed``).
    missing_keys : {"error", "skip"}, optional
        Whether an absent, null or blank key field is an error or gives no key (see
        :mod:`keff.data.qa_layout`).

    Returns
    -------
    QAPairs

    Raises
    ------
    DataError
        Malformed JSON, missing or non-string fields, empty question or answer, a missing key
        under ``missing_keys="error"``, duplicate ids; each naming ``file:line`` and the id.
    """
    path = Path(path)
    if layout is not None and preset is not None:
        raise DataError("give layout= or preset=, not both")
    sha, records = read_jsonl(path, what="Q/A JSONL file")
    if not records:
        raise DataError("empty Q/A file: no pairs", path=path)
    chosen = _choose_layout(layout if layout is not None else preset, records)
    chosen = with_overrides(
        chosen,
        id_field=id_field,
        question_field=question_field,
        answer_field=answer_field,
        relevance_keys=None if relevance_fields is None else as_keys(relevance_fields, "relevance"),
        split_keys=None if split_fields is None else as_keys(split_fields, "split"),
        duplicate_ids=duplicate_ids,
        missing_keys=missing_keys,
    )
    raw_ids, questions, answers, rel_keys, group_keys = [], [], [], [], []
    for line, obj in records:
        where = {"path": path, "line": line}
        item_id = get_str(obj, chosen.id_field, allow_int=True, **where)
        where["item_id"] = item_id
        texts = {}
        for name in (chosen.question_field, chosen.answer_field):
            texts[name] = get_str(obj, name, **where)
            if not texts[name].strip():
                raise DataError(f"empty {name!r}", **where)
        rel = [k for k in (_key_of(obj, key, chosen, where) for key in chosen.relevance_keys) if k]
        split = [k for k in (_key_of(obj, key, chosen, where) for key in chosen.split_keys) if k]
        answer_key = text_key("answer", texts[chosen.answer_field])
        # the same question asked twice must not sit on both sides of a split either
        question_key = text_key("question", normalize_text(texts[chosen.question_field]))
        raw_ids.append((line, item_id))
        questions.append(texts[chosen.question_field])
        answers.append(texts[chosen.answer_field])
        rel_keys.append(frozenset([answer_key, *rel]))
        group_keys.append([answer_key, question_key, *rel, *split])
    ids, renamed = _unique_ids(raw_ids, path, chosen.duplicate_ids)
    return QAPairs(
        path=path,
        ids=ids,
        questions=questions,
        answers=answers,
        relevance_keys=rel_keys,
        groups=key_components(group_keys),
        sha256=sha,
        renamed=renamed,
        layout=chosen,
    )


def _choose_layout(spec: QALayout | str | None, records: list[tuple[int, dict]]) -> QALayout:
    if spec is None:
        return QALayout()
    if isinstance(spec, QALayout):
        return spec
    if spec == "auto":
        seen = set().union(*(obj.keys() for _, obj in records))
        return detect_layout(seen) or QALayout()
    if spec not in PRESETS:
        raise DataError(f"unknown Q/A preset {spec!r} (known: {', '.join(sorted(PRESETS))})")
    return PRESETS[spec]


def _key_of(obj: dict, key: tuple[str, ...], layout: QALayout, where: dict) -> str | None:
    """The key string of one pair (``"doc=7"``, ``'source+doc=["GARD","7"]'``), or None when a
    field is missing and the layout skips missing keys."""
    values = []
    for name in key:
        value = obj.get(name)
        missing = value is None or (isinstance(value, str) and not value.strip())
        if missing and layout.missing_keys == "skip":
            return None
        if name in obj and value is not None and isinstance(value, str) and not value.strip():
            raise DataError(f"empty {name!r}", **where)
        values.append(get_str(obj, name, allow_int=True, **where))
    if len(values) == 1:
        return text_key(key[0], values[0])
    return text_key(key_name(key), json.dumps(values, ensure_ascii=False))


def qa_field(path: str | Path, field_name: str) -> list[str]:
    """The string value of ``field_name`` on every pair of a Q/A JSONL file, in file order (the
    order of :func:`load_qa`'s pairs), e.g. MedQuAD's ``source`` as a domain per pair.

    Raises
    ------
    DataError
        A line without the field, or with a value that is not a non-empty string (file:line).
    """
    _, records = read_jsonl(path, what="Q/A file")
    values = []
    for number, obj in records:
        value = obj.get(field_name)
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"field {field_name!r} must be a non-empty string, got {value!r}", path=path, line=number)
        values.append(value)
    return values
