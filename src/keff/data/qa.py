"""Question/answer pair sets in JSONL, with relevance keys and leak-free groups.

Each line is one pair: an id, a question, an answer, and optional fields that say which answers
count as relevant to which questions (``relevance_fields``) or which pairs must stay on the same
side of a split (``split_fields``). :func:`load_qa` turns those into string keys per pair and a
connected-component ``groups`` array, so a split by group never puts a shared answer, document,
focus or cluster on both sides.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from keff.data._groups import key_components
from keff.data._io import get_str, read_jsonl
from keff.data.leakage import normalize_text
from keff.errors import DataError

#: Field settings for the Q/A files shipped in the shared data folder. Both files repeat some ids
#: for different pairs (skills: 1,318 distinct ``pair_id`` over 1,888 lines; MedQuAD: 11,395
#: distinct ``id`` over 14,809), so their presets rename repeats instead of failing.
PRESETS: dict[str, dict[str, object]] = {
    "skills": {
        "id_field": "pair_id",
        "relevance_fields": ("cluster_id", "original_answer"),
        "split_fields": (),
        "duplicate_ids": "suffix",
    },
    "medquad": {
        "id_field": "id",
        "relevance_fields": ("doc",),
        "split_fields": ("focus",),
        "duplicate_ids": "suffix",
    },
}

_DEFAULTS: dict[str, object] = {
    "id_field": "id",
    "question_field": "question",
    "answer_field": "answer",
    "relevance_fields": (),
    "split_fields": (),
    "duplicate_ids": "error",
}

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
    """

    path: Path
    ids: list[str]
    questions: list[str]
    answers: list[str]
    relevance_keys: list[frozenset[str]]
    groups: np.ndarray
    sha256: str
    renamed: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)


def _resolve_options(preset: str | None, given: dict[str, object]) -> dict[str, object]:
    """Merge preset settings with explicitly given ones; reject a contradiction."""
    if preset is None:
        return dict(given)
    if preset not in PRESETS:
        raise DataError(f"unknown Q/A preset {preset!r} (known: {', '.join(sorted(PRESETS))})")
    merged = dict(given)
    for name, value in PRESETS[preset].items():
        mine = given[name]
        if mine != _DEFAULTS[name] and _as_tuple(mine) != _as_tuple(value):
            raise DataError(f"{name}={mine!r} conflicts with preset {preset!r} ({name}={value!r})")
        merged[name] = value
    return merged


def _as_tuple(value: object) -> object:
    """Lists and tuples compare equal by content."""
    return tuple(value) if isinstance(value, (list, tuple)) else value


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
    preset: str | None = None,
    id_field: str = "id",
    question_field: str = "question",
    answer_field: str = "answer",
    relevance_fields: Sequence[str] = (),
    split_fields: Sequence[str] = (),
    duplicate_ids: str = "error",
) -> QAPairs:
    """Load and validate a JSONL file of question/answer pairs.

    Parameters
    ----------
    path : str or Path
        The JSONL file, one JSON object per line.
    preset : {"skills", "medquad"}, optional
        Field settings for a known file (see :data:`PRESETS`); explicit arguments that disagree
        with the preset are an error.
    id_field, question_field, answer_field : str
        Names of the id (string or integer), question and answer fields.
    relevance_fields : sequence of str
        Fields whose equal values make two pairs answer each other (also grouped).
    split_fields : sequence of str
        Extra fields whose equal values must stay on one side of a split.
    duplicate_ids : {"error", "suffix"}
        A repeated id is an error, or is renamed ``<id>#2``, ``<id>#3``... in file order (the
        mapping is kept in ``QAPairs.renamed``).

    Returns
    -------
    QAPairs

    Raises
    ------
    DataError
        Malformed JSON, missing or non-string fields, empty question, answer or key value,
        duplicate ids; each naming ``file:line`` and the id.
    """
    path = Path(path)
    opts = _resolve_options(
        preset,
        {
            "id_field": id_field,
            "question_field": question_field,
            "answer_field": answer_field,
            "relevance_fields": tuple(relevance_fields),
            "split_fields": tuple(split_fields),
            "duplicate_ids": duplicate_ids,
        },
    )
    sha, records = read_jsonl(path, what="Q/A JSONL file")
    if not records:
        raise DataError("empty Q/A file: no pairs", path=path)
    raw_ids, questions, answers, rel_keys, group_keys = [], [], [], [], []
    for line, obj in records:
        item_id = get_str(obj, opts["id_field"], path=path, line=line, allow_int=True)
        where = {"path": path, "line": line, "item_id": item_id}
        texts = {}
        for name in (opts["question_field"], opts["answer_field"]):
            texts[name] = get_str(obj, name, **where)
            if not texts[name].strip():
                raise DataError(f"empty {name!r}", **where)
        keys = {}
        for name in (*opts["relevance_fields"], *opts["split_fields"]):
            value = get_str(obj, name, allow_int=True, **where)
            if not value.strip():
                raise DataError(f"empty {name!r}", **where)
            keys[name] = text_key(name, value)
        answer_key = text_key("answer", texts[opts["answer_field"]])
        # the same question asked twice must not sit on both sides of a split either
        question_key = text_key("question", normalize_text(texts[opts["question_field"]]))
        raw_ids.append((line, item_id))
        questions.append(texts[opts["question_field"]])
        answers.append(texts[opts["answer_field"]])
        rel_keys.append(frozenset([answer_key, *(keys[f] for f in opts["relevance_fields"])]))
        group_keys.append([answer_key, question_key, *keys.values()])
    ids, renamed = _unique_ids(raw_ids, path, opts["duplicate_ids"])
    return QAPairs(
        path=path,
        ids=ids,
        questions=questions,
        answers=answers,
        relevance_keys=rel_keys,
        groups=key_components(group_keys),
        sha256=sha,
        renamed=renamed,
    )
