"""Q/A layouts: presets, JSON configs and inline specs, and their errors."""

from __future__ import annotations

import json

import pytest

from keff.data import load_qa
from keff.data.qa_layout import PRESETS, QALayout, detect_layout, parse_qa_layout
from keff.errors import DataError


def test_presets_and_auto():
    assert parse_qa_layout("skills") is PRESETS["skills"]
    assert parse_qa_layout("auto") == "auto"
    assert PRESETS["medquad"].relevance_keys == (("source", "doc"),)


def test_inline_spec():
    layout = parse_qa_layout("id=qid, question=q, answer=a, relevance=topic|source+doc, split=area, missing_keys=skip")
    assert layout == QALayout(
        name="custom",
        id_field="qid",
        question_field="q",
        answer_field="a",
        relevance_keys=(("topic",), ("source", "doc")),
        split_keys=(("area",),),
        missing_keys="skip",
    )


def test_json_config(tmp_path, make_jsonl):
    cfg = tmp_path / "layout.json"
    cfg.write_text(json.dumps({"id": "k", "question": "Q", "answer": "A", "relevance": [["s", "d"]]}))
    layout = parse_qa_layout(str(cfg))
    assert layout.relevance_keys == (("s", "d"),)
    pairs = tmp_path / "p.jsonl"
    pairs.write_text(
        make_jsonl([{"k": 1, "Q": "q", "A": "a", "s": "x", "d": 2}, {"k": 2, "Q": "r", "A": "b", "s": "x", "d": 2}])
    )
    qa = load_qa(pairs, layout=layout)
    assert qa.groups.tolist() == [0, 0] and qa.ids == ["1", "2"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("nope", "unknown Q/A layout 'nope'"),
        ("question", "unknown Q/A layout"),
        ("question=q,answer", "expected name=value items"),
        ("colour=red", "unknown Q/A layout keys \\['colour'\\]"),
        ("duplicate_ids=maybe", "duplicate_ids must be one of error, suffix"),
        ("relevance=a++b", "bad relevance key"),
    ],
)
def test_bad_specs_are_one_clear_error(spec, message):
    with pytest.raises(DataError, match=message):
        parse_qa_layout(spec)


def test_bad_config_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(DataError, match=r"bad\.json: a Q/A layout config must be a JSON object"):
        parse_qa_layout(str(bad))
    with pytest.raises(DataError, match=r"missing\.json: cannot read Q/A layout config"):
        parse_qa_layout(str(tmp_path / "missing.json"))
    typed = tmp_path / "typed.json"
    typed.write_text('{"question": 3}')
    with pytest.raises(DataError, match="key 'question' must be a string"):
        parse_qa_layout(str(typed))


def test_detect_prefers_the_preset_whose_fields_are_all_there():
    assert detect_layout({"pair_id", "cluster_id", "original_answer", "question", "answer"}).name == "skills"
    assert detect_layout({"id", "question", "answer", "source", "doc", "focus", "url"}).name == "medquad"
    assert detect_layout({"id", "question", "answer"}) is None
