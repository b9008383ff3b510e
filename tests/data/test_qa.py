"""Tests for keff.data.qa: loading Q/A pairs, validation, relevance keys and union-find groups."""

from __future__ import annotations

import hashlib
import json
import time

import numpy as np
import pytest

from keff.data._groups import key_components
from keff.data.qa import load_qa, text_key
from keff.data.qa_layout import PRESETS
from keff.errors import DataError


def write(tmp_path, records, make_jsonl, name="pairs.jsonl"):
    path = tmp_path / name
    path.write_text(make_jsonl(records), encoding="utf-8")
    return path


def pair(i, q, a, **extra):
    return {"id": f"p{i}", "question": q, "answer": a, **extra}


def test_loads_fields_and_hash(tmp_path, make_jsonl):
    path = write(tmp_path, [pair(1, "q1", "a1"), pair(2, "q2", "a2")], make_jsonl)
    qa = load_qa(path)
    assert qa.ids == ["p1", "p2"]
    assert qa.questions == ["q1", "q2"]
    assert qa.answers == ["a1", "a2"]
    assert qa.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert qa.relevance_keys == [frozenset({"answer=a1"}), frozenset({"answer=a2"})]
    assert qa.groups.dtype == np.int64
    assert qa.groups.tolist() == [0, 1]
    assert qa.renamed == {}


def test_custom_field_names_and_integer_ids(tmp_path, make_jsonl):
    recs = [{"k": 1, "Q": "q", "A": "a", "topic": 5}, {"k": 2, "Q": "q2", "A": "b", "topic": 5}]
    qa = load_qa(
        write(tmp_path, recs, make_jsonl),
        id_field="k",
        question_field="Q",
        answer_field="A",
        relevance_fields=["topic"],
    )
    assert qa.ids == ["1", "2"]
    assert "topic=5" in qa.relevance_keys[0]
    assert qa.groups.tolist() == [0, 0]


def test_long_values_become_sha1_keys():
    long = "x" * 100
    assert text_key("original_answer", long) == ("original_answer=sha1:" + hashlib.sha1(long.encode()).hexdigest())
    assert text_key("cluster_id", "c1") == "cluster_id=c1"
    assert text_key("f", "two\nlines").startswith("f=sha1:")


def test_union_find_merges_clusters_sharing_an_answer(tmp_path, make_jsonl):
    recs = [
        pair(1, "q1", "shared", cluster="A"),
        pair(2, "q2", "only A", cluster="A"),
        pair(3, "q3", "lonely", cluster="C"),
        pair(4, "q4", "shared", cluster="B"),  # same answer text as p1 -> A and B merge
        pair(5, "q5", "only B", cluster="B"),
    ]
    qa = load_qa(write(tmp_path, recs, make_jsonl), relevance_fields=["cluster"])
    assert qa.groups.tolist() == [0, 0, 1, 0, 0]


def test_split_fields_group_but_do_not_make_relevant(tmp_path, make_jsonl):
    recs = [
        pair(1, "q1", "a1", doc="d1", focus="F"),
        pair(2, "q2", "a2", doc="d2", focus="F"),
        pair(3, "q3", "a3", doc="d3", focus="G"),
    ]
    qa = load_qa(write(tmp_path, recs, make_jsonl), relevance_fields=["doc"], split_fields=["focus"])
    assert qa.groups.tolist() == [0, 0, 1]
    assert not qa.relevance_keys[0] & qa.relevance_keys[1]
    assert "focus=F" not in qa.relevance_keys[0]


def test_key_components_transitive_chain_numbered_by_first_appearance():
    keys = [["x"], ["z"], ["y"], ["x", "y"], ["w"], ["z", "w"]]
    assert key_components(keys).tolist() == [0, 1, 0, 0, 1, 1]
    assert key_components([]).tolist() == []


def test_duplicate_id_error_names_both_lines(tmp_path, make_jsonl):
    path = write(tmp_path, [pair(1, "q", "a"), pair(2, "q", "b"), pair(1, "q", "c")], make_jsonl)
    with pytest.raises(DataError, match=r"pairs\.jsonl:3: duplicate id \(first seen on line 1\).*'p1'"):
        load_qa(path)


def test_duplicate_ids_suffix_policy(tmp_path, make_jsonl):
    recs = [pair(1, "q", "a"), pair(1, "q", "b"), {"id": "p1#2", "question": "q", "answer": "c"}]
    qa = load_qa(write(tmp_path, recs, make_jsonl), duplicate_ids="suffix")
    assert qa.ids == ["p1", "p1#3", "p1#2"]  # p1#2 is taken by a real id, so the repeat gets #3
    assert qa.renamed == {"p1#3": "p1"}
    with pytest.raises(DataError, match="duplicate_ids must be"):
        load_qa(write(tmp_path, recs, make_jsonl), duplicate_ids="ignore")


QA_ERRORS = [
    ('{"id": "p1", "question": "q", "answer": "a"}\n{"id": "p2", "question": "q"\n', 2, "malformed JSON"),
    ('"just a string"\n', 1, "expected a JSON object, got str"),
    ('{"question": "q", "answer": "a"}\n', 1, "missing field 'id'"),
    ('{"id": "p1", "answer": "a"}\n', 1, "missing field 'question' \\(id 'p1'\\)"),
    ('{"id": "p1", "question": "q"}\n', 1, "missing field 'answer' \\(id 'p1'\\)"),
    ('{"id": "p1", "question": "  ", "answer": "a"}\n', 1, "empty 'question' \\(id 'p1'\\)"),
    ('{"id": "p1", "question": "q", "answer": ""}\n', 1, "empty 'answer' \\(id 'p1'\\)"),
    ('{"id": "p1", "question": 3, "answer": "a"}\n', 1, "field 'question' must be a string"),
    ('{"id": true, "question": "q", "answer": "a"}\n', 1, "field 'id' must be a string or an integer"),
]


@pytest.mark.parametrize(("text", "line", "message"), QA_ERRORS)
def test_validation_errors_name_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=rf"bad\.jsonl:{line}: {message}"):
        load_qa(path)


def test_missing_or_empty_relevance_field(tmp_path, make_jsonl):
    path = write(tmp_path, [pair(1, "q", "a", doc="d"), pair(2, "q", "b")], make_jsonl)
    with pytest.raises(DataError, match=r"pairs\.jsonl:2: missing field 'doc' \(id 'p2'\)"):
        load_qa(path, relevance_fields=["doc"])
    path = write(tmp_path, [pair(1, "q", "a", focus="")], make_jsonl)
    with pytest.raises(DataError, match=r"pairs\.jsonl:1: empty 'focus'"):
        load_qa(path, split_fields=["focus"])


def test_empty_file_and_missing_file(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"empty\.jsonl: empty Q/A file"):
        load_qa(tmp_path / "empty.jsonl")
    with pytest.raises(DataError, match=r"nope\.jsonl: missing Q/A JSONL file"):
        load_qa(tmp_path / "nope.jsonl")


def test_presets(tmp_path, make_jsonl):
    recs = [
        {"pair_id": "s1", "cluster_id": "c1", "question": "q", "answer": "a", "original_answer": "o1"},
        {"pair_id": "s2", "cluster_id": "c2", "question": "q", "answer": "b", "original_answer": "o1"},
    ]
    qa = load_qa(write(tmp_path, recs, make_jsonl), preset="skills")
    assert qa.relevance_keys[0] == {"answer=a", "cluster_id=c1", "original_answer=o1"}
    assert qa.groups.tolist() == [0, 0]  # shared original_answer
    with pytest.raises(DataError, match="unknown Q/A preset 'nope'"):
        load_qa(write(tmp_path, recs, make_jsonl), preset="nope")
    with pytest.raises(DataError, match="id_field='x' conflicts with preset 'skills'"):
        load_qa(write(tmp_path, recs, make_jsonl), preset="skills", id_field="x")
    assert set(PRESETS) == {"skills", "medquad"}


def test_real_skills(shared_data):
    qa = load_qa(shared_data / "qa" / "skills_qa.jsonl", preset="skills")
    assert len(qa.ids) == 1888
    assert len(set(qa.ids)) == 1888
    assert len(qa.renamed) == 1888 - 1318  # the file repeats pair_id for 570 lines
    # every cluster sits inside one group
    cluster_keys = [k for keys in qa.relevance_keys for k in keys if k.startswith("cluster_id=")]
    assert len(set(cluster_keys)) == 384
    cluster_group = {}
    for keys, g in zip(qa.relevance_keys, qa.groups):
        (cluster,) = [k for k in keys if k.startswith("cluster_id=")]
        assert cluster_group.setdefault(cluster, g) == g


def test_real_medquad(shared_data):
    start = time.perf_counter()
    qa = load_qa(shared_data / "qa" / "medquad.jsonl", preset="medquad")
    assert len(qa.ids) == 14809
    assert len(set(qa.ids)) == 14809
    assert len(set(qa.answers)) == 14220
    assert time.perf_counter() - start < 5.0


def test_real_medquad_documents_are_keyed_by_source_and_doc(shared_data):
    # MedQuAD numbers documents per source: doc 0000004 is a different disease in each source
    path = shared_data / "qa" / "medquad.jsonl"
    qa = load_qa(path, preset="medquad")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    four = [i for i, r in enumerate(rows) if r["doc"] == "0000004"]
    sources = {rows[i]["source"] for i in four}
    assert len(sources) >= 2
    doc_keys = {k for i in four for k in qa.relevance_keys[i] if k.startswith("source+doc=")}
    assert len(doc_keys) == len(sources)  # one document key per source, not one for all
    by_source = {}
    for i in four:
        by_source.setdefault(rows[i]["source"], []).append(i)
    a, b = (v[0] for v in list(by_source.values())[:2])
    assert not (qa.relevance_keys[a] & qa.relevance_keys[b])  # different diseases answer nothing of each other


def test_missing_keys_skip_rule(tmp_path, make_jsonl):
    recs = [
        pair(1, "q1", "a1", source="S", doc=None, focus="F"),
        pair(2, "q2", "a2", source="S", doc="", focus=""),
        pair(3, "q3", "a3", source="S", focus="G"),  # no doc field at all
        pair(4, "q4", "a4", source="S", doc="7", focus="G"),
        pair(5, "q5", "a5", source="T", doc="7", focus="H"),
    ]
    path = write(tmp_path, recs, make_jsonl)
    qa = load_qa(path, relevance_fields=["source+doc"], split_fields=["focus"], missing_keys="skip")
    assert qa.relevance_keys[0] == {text_key("answer", "a1")}  # only its own answer text
    assert qa.relevance_keys[1] == {text_key("answer", "a2")}
    assert not (qa.relevance_keys[3] & qa.relevance_keys[4])  # doc 7 of S is not doc 7 of T
    assert qa.groups.tolist() == [0, 1, 2, 2, 3]  # pairs 3 and 4 share focus G; pair 2 has no focus
    with pytest.raises(DataError, match=r"pairs\.jsonl:1: field 'doc' must be a string or an integer"):
        load_qa(path, relevance_fields=["source+doc"])


def test_layout_auto_detects_presets_by_fields_never_by_name(tmp_path, make_jsonl):
    recs = [{"id": "m1", "source": "S", "doc": "1", "focus": "F", "question": "q", "answer": "a"}]
    odd_name = write(tmp_path, recs, make_jsonl, name="skills_qa.jsonl")  # named like the other preset
    assert load_qa(odd_name, layout="auto").layout.name == "medquad"
    generic = write(tmp_path, [pair(1, "q", "a")], make_jsonl, name="medquad.jsonl")
    assert load_qa(generic, layout="auto").layout.name == "generic"
    unknown = write(tmp_path, [{"k": "1", "Q": "q", "A": "a"}], make_jsonl, name="x.jsonl")
    with pytest.raises(DataError, match=r"x\.jsonl:1: missing field 'id'"):
        load_qa(unknown, layout="auto")


def test_identical_questions_share_a_group_but_not_relevance(tmp_path, make_jsonl):
    # the same question (up to case and spacing) under two clusters must not straddle a split
    recs = [
        pair(1, "How do I  install it?", "a1", cluster_id="c1"),
        pair(2, "how do i install it?", "a2", cluster_id="c2"),
        pair(3, "something else", "a3", cluster_id="c3"),
    ]
    qa = load_qa(write(tmp_path, recs, make_jsonl), relevance_fields=["cluster_id"])
    assert qa.groups.tolist() == [0, 0, 1]
    assert not (qa.relevance_keys[0] & qa.relevance_keys[1])
