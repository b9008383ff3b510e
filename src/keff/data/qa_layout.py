"""How a Q/A JSONL file is laid out: which fields hold the id, question, answer and keys.

A :class:`QALayout` names the fields of one pair per line and the keys that make two pairs answer
each other (relevance keys) or keep them on one side of a split (split keys). A key is one field
or several fields taken together (a compound key, written ``source+doc``): MedQuAD numbers its
documents per source, so only ``(source, doc)`` names one document.

A layout comes from a preset (``skills``, ``medquad``), a small JSON config, or an inline spec
(:func:`parse_qa_layout`). ``"auto"`` picks the preset whose fields the file holds, else the
generic layout; it never looks at the file's name.

Missing keys: with ``missing_keys="error"`` (the default) a key field that is absent, null or
blank is an error naming the line. With ``"skip"`` such a pair gets no key from that field (a
compound key is skipped when any of its fields is missing): it is then relevant to a question
only through its exact answer text and its other keys, and it is grouped for splitting only
through its answer text, its question text and its other keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from keff.errors import DataError

Key = tuple[str, ...]
_POLICIES = {"duplicate_ids": ("error", "suffix"), "missing_keys": ("error", "skip")}


@dataclass(frozen=True)
class QALayout:
    """Field names and key rules of a Q/A JSONL file.

    Attributes
    ----------
    name : str
        ``"generic"``, a preset name, or ``"custom"``.
    id_field, question_field, answer_field : str
        Fields of the pair id (string or integer), the question and the answer.
    relevance_keys : tuple of tuple of str
        Each key is one field or several fields together; pairs with an equal key answer each
        other's question (and share a split group).
    split_keys : tuple of tuple of str
        Keys that only keep pairs on one side of a split.
    duplicate_ids : {"error", "suffix"}
        A repeated id is an error, or is renamed ``<id>#2``, ``<id>#3``... in file order.
    missing_keys : {"error", "skip"}
        What an absent, null or blank key field means (see the module docstring).
    """

    name: str = "generic"
    id_field: str = "id"
    question_field: str = "question"
    answer_field: str = "answer"
    relevance_keys: tuple[Key, ...] = ()
    split_keys: tuple[Key, ...] = ()
    duplicate_ids: str = "error"
    missing_keys: str = "error"

    def __post_init__(self) -> None:
        for name, allowed in _POLICIES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise DataError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
        for name in ("id_field", "question_field", "answer_field"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise DataError(f"Q/A layout: {name} must be a non-empty field name")

    @property
    def fields(self) -> set[str]:
        """Every field the layout reads."""
        keyed = {f for key in (*self.relevance_keys, *self.split_keys) for f in key}
        return {self.id_field, self.question_field, self.answer_field, *keyed}

    def describe(self) -> dict:
        """JSON-ready description, for result metadata."""
        return asdict(self)


def key_name(key: Key) -> str:
    """How a key is written: ``"doc"`` or ``"source+doc"``."""
    return "+".join(key)


def as_keys(value: Iterable[str | Sequence[str]], what: str) -> tuple[Key, ...]:
    """Normalise key specs (``"doc"``, ``"source+doc"`` or ``["source", "doc"]``) to tuples."""
    if isinstance(value, str):
        value = [value]
    keys = []
    for item in value:
        parts = tuple(item.split("+")) if isinstance(item, str) else tuple(item)
        if not parts or not all(isinstance(p, str) and p.strip() for p in parts):
            raise DataError(f"Q/A layout: bad {what} key {item!r} (field names, '+' joins fields into one key)")
        keys.append(parts)
    return tuple(keys)


#: Layouts of the Q/A files shipped in the shared data folder. Both files repeat some ids for
#: different pairs (skills: 1,318 distinct ``pair_id`` over 1,888 lines; MedQuAD: 11,395 distinct
#: ``id`` over 14,809), so they rename repeats instead of failing.
PRESETS: dict[str, QALayout] = {
    "skills": QALayout(
        name="skills",
        id_field="pair_id",
        relevance_keys=(("cluster_id",), ("original_answer",)),
        duplicate_ids="suffix",
    ),
    # MedQuAD numbers documents per source: doc 0000004 names five different diseases in five
    # sources, so the document key is (source, doc). Other MedQuAD releases hold rows with a
    # null doc or an empty focus: they get no key from that field (missing_keys="skip").
    "medquad": QALayout(
        name="medquad",
        id_field="id",
        relevance_keys=(("source", "doc"),),
        split_keys=(("focus",),),
        duplicate_ids="suffix",
        missing_keys="skip",
    ),
}

_CONFIG_KEYS = {
    "id": "id_field",
    "question": "question_field",
    "answer": "answer_field",
    "relevance": "relevance_keys",
    "split": "split_keys",
    "duplicate_ids": "duplicate_ids",
    "missing_keys": "missing_keys",
}
SPEC_HELP = (
    "a preset (skills, medquad), 'auto', a JSON config file, or fields like "
    "'question=q,answer=a,id=qid,relevance=cluster|source+doc,split=topic'"
)


def layout_from_mapping(config: dict, *, where: str) -> QALayout:
    """A custom layout from config keys (``id``, ``question``, ``answer``, ``relevance``, ``split``,
    ``duplicate_ids``, ``missing_keys``); ``where`` names the source in errors."""
    unknown = sorted(set(config) - set(_CONFIG_KEYS))
    if unknown:
        raise DataError(f"{where}: unknown Q/A layout keys {unknown} (known: {', '.join(_CONFIG_KEYS)})")
    kwargs: dict = {"name": "custom"}
    for key, value in config.items():
        attr = _CONFIG_KEYS[key]
        if attr.endswith("_keys") and attr not in _POLICIES:
            kwargs[attr] = as_keys(value, key)
        elif not isinstance(value, str):
            raise DataError(f"{where}: Q/A layout key {key!r} must be a string, got {type(value).__name__}")
        else:
            kwargs[attr] = value
    try:
        return QALayout(**kwargs)
    except DataError as exc:
        raise DataError(f"{where}: {exc}") from None


def _inline(spec: str) -> dict:
    config: dict = {}
    for item in spec.split(","):
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise DataError(f"Q/A layout {spec!r}: expected name=value items separated by commas, got {item!r}")
        config[name] = value.split("|") if name in ("relevance", "split") else value
    return config


def parse_qa_layout(spec: str) -> QALayout | str:
    """A layout from a CLI spec: a preset name, ``"auto"``, a JSON file, or inline fields.

    Returns
    -------
    QALayout or "auto"
    """
    spec = spec.strip()
    if spec == "auto":
        return "auto"
    if spec in PRESETS:
        return PRESETS[spec]
    if "=" in spec:
        return layout_from_mapping(_inline(spec), where=f"Q/A layout {spec!r}")
    path = Path(spec).expanduser()
    if path.suffix == ".json" or path.is_file():
        try:
            config = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise DataError(f"cannot read Q/A layout config ({exc})", path=path) from None
        if not isinstance(config, dict):
            raise DataError("a Q/A layout config must be a JSON object", path=path)
        return layout_from_mapping(config, where=str(path))
    raise DataError(f"unknown Q/A layout {spec!r}: expected {SPEC_HELP}")


def detect_layout(fields_seen: set[str]) -> QALayout | None:
    """The preset whose every field the file holds (the largest such, on ties), else None."""
    matches = [p for p in PRESETS.values() if p.fields <= fields_seen]
    return max(matches, key=lambda p: len(p.fields)) if matches else None


def with_overrides(layout: QALayout, **given) -> QALayout:
    """``layout`` with explicitly given field settings; one that contradicts a preset is an error."""
    changes = {k: v for k, v in given.items() if v is not None}
    if not changes:
        return layout
    if layout.name in PRESETS:
        for name, value in changes.items():
            if value != getattr(layout, name):
                raise DataError(
                    f"{name}={value!r} conflicts with preset {layout.name!r} ({name}={getattr(layout, name)!r})"
                )
        return layout
    return replace(layout, name="custom", **changes)
