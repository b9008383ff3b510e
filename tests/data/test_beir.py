"""Tests for keff.data.beir: loading, validation messages with file:line, real SciFact."""

from __future__ import annotations

import hashlib
import time

import pytest

from keff.data.beir import BeirDataset, load_beir
from keff.errors import DataError


def test_loads_tiny_dataset(tiny_beir):
    ds = load_beir(tiny_beir)
    assert isinstance(ds, BeirDataset)
    assert ds.name == "tiny"
    assert ds.doc_ids == ["d1", "d2", "d3"]
    # (title + " " + text).strip(), title optional or empty
    assert ds.doc_texts == ["Cats Cats purr.", "Dogs bark.", "Fish swim."]
    assert ds.query_ids == ["q1", "q2", "q3"]
    assert ds.qrels == {"test": {"q1": {"d1": 1}, "q3": {"d3": 2}}, "train": {"q2": {"d2": 1}}}
    assert ds.doc_index() == {"d1": 0, "d2": 1, "d3": 2}


def test_file_hashes_are_sha256_of_each_file(tiny_beir):
    ds = load_beir(tiny_beir)
    assert set(ds.file_hashes) == {"corpus.jsonl", "queries.jsonl", "qrels/test.tsv", "qrels/train.tsv"}
    for rel, digest in ds.file_hashes.items():
        assert digest == hashlib.sha256((tiny_beir / rel).read_bytes()).hexdigest()


def test_split_queries_in_file_order(tiny_beir):
    ds = load_beir(tiny_beir)
    assert ds.split_queries("test") == (["q1", "q3"], ["what purrs", "what swims"])
    with pytest.raises(DataError, match="available: test, train"):
        ds.split_queries("dev")


def test_requested_splits_only(tiny_beir):
    ds = load_beir(tiny_beir, splits=["train"])
    assert list(ds.qrels) == ["train"]


def test_missing_split_names_expected_file(tiny_beir):
    with pytest.raises(DataError, match=r"dev\.tsv.*missing qrels for split 'dev'.*test, train"):
        load_beir(tiny_beir, splits=["dev"])


@pytest.mark.parametrize("name", ["corpus.jsonl", "queries.jsonl"])
def test_missing_jsonl_file(tiny_beir, name):
    (tiny_beir / name).unlink()
    with pytest.raises(DataError, match=rf"{name}: missing {name}"):
        load_beir(tiny_beir)


def test_no_qrels_at_all(tmp_path, make_beir):
    root = make_beir(tmp_path / "x", qrels={})
    with pytest.raises(DataError, match="no qrels"):
        load_beir(root)


def test_blank_lines_are_skipped(tmp_path, make_beir, make_jsonl):
    corpus = "\n" + make_jsonl([{"_id": "d1", "text": "a"}]) + "\n  \n" + make_jsonl([{"_id": "d2", "text": "b"}])
    root = make_beir(tmp_path / "x", corpus=corpus, qrels={"test": "q1\td2\t1\n"})
    assert load_beir(root).doc_ids == ["d1", "d2"]


CORPUS_ERRORS = [
    ('{"_id": "d1", "text": "ok"}\n{"_id": "d2", "text": \n', 2, "malformed JSON"),
    ('{"_id": "d1", "text": "ok"}\n["d2", "text"]\n', 2, "expected a JSON object, got list"),
    ('{"_id": "d1", "text": "ok"}\n\n{"text": "no id"}\n', 3, "missing field '_id'"),
    ('{"_id": "d1"}\n', 1, "missing field 'text' \\(id 'd1'\\)"),
    ('{"_id": 7, "text": "x"}\n', 1, "field '_id' must be a string, got int"),
    ('{"_id": "d1", "text": ["x"]}\n', 1, "field 'text' must be a string, got list"),
    ('{"_id": "d1", "title": null, "text": "x"}\n', 1, "field 'title' must be a string, got NoneType"),
    (
        '{"_id": "d1", "text": "a"}\n{"_id": "d2", "text": "b"}\n{"_id": "d1", "text": "c"}\n',
        3,
        "duplicate _id \\(first seen on line 1\\) \\(id 'd1'\\)",
    ),
]


@pytest.mark.parametrize(("corpus", "line", "message"), CORPUS_ERRORS)
def test_corpus_errors_name_file_and_line(tmp_path, make_beir, corpus, line, message):
    root = make_beir(tmp_path / "x", corpus=corpus, qrels={"test": "q1\td1\t1\n"})
    with pytest.raises(DataError, match=rf"corpus\.jsonl:{line}: {message}"):
        load_beir(root)


def test_query_errors_name_file_and_line(tmp_path, make_beir):
    queries = '{"_id": "q1", "text": "a"}\n{"_id": "q1", "text": "b"}\n'
    root = make_beir(tmp_path / "x", queries=queries, qrels={"test": "q1\td1\t1\n"})
    with pytest.raises(DataError, match=r"queries\.jsonl:2: duplicate _id \(first seen on line 1\)"):
        load_beir(root)


def test_invalid_utf8_names_line(tmp_path, make_beir):
    root = make_beir(tmp_path / "x", qrels={"test": "q1\td1\t1\n"})
    (root / "corpus.jsonl").write_bytes(b'{"_id": "d1", "text": "a"}\n{"_id": "d2", "text": "\xff"}\n')
    with pytest.raises(DataError, match=r"corpus\.jsonl:2: not valid UTF-8"):
        load_beir(root)


def test_empty_corpus(tmp_path, make_beir):
    root = make_beir(tmp_path / "x", corpus="\n\n", qrels={"test": ""})
    with pytest.raises(DataError, match=r"corpus\.jsonl: empty corpus"):
        load_beir(root)


QRELS_ERRORS = [
    ("q1\td1\n", 1, "expected 3 tab-separated columns .* got 2"),
    ("query-id\tcorpus-id\tscore\nq1\td1\t1\textra\n", 2, "expected 3 .* got 4"),
    ("q1\td1\t1.5\n", 1, "score '1.5' is not an integer"),
    ("query-id\tcorpus-id\tscore\nq1\td1\tyes\n", 2, "score 'yes' is not an integer"),
    ("q1\td1\t1\nq9\td1\t1\n", 2, "query id not in queries.jsonl \\(id 'q9'\\)"),
    ("q1\td1\t1\nq1\tnope\t1\n", 2, "corpus id not in corpus.jsonl \\(id 'nope'\\)"),
    ("q1\td1\t1\nq1\td1\t2\n", 2, "conflicting score .*line 1 gives 1, this line 2"),
]


@pytest.mark.parametrize(("text", "line", "message"), QRELS_ERRORS)
def test_qrels_errors_name_file_and_line(tmp_path, make_beir, text, line, message):
    root = make_beir(tmp_path / "x", qrels={"test": text})
    with pytest.raises(DataError, match=rf"qrels/test\.tsv:{line}: {message}"):
        load_beir(root)


def test_header_only_detected_on_line_one(tmp_path, make_beir):
    # a header-like line later in the file is data, and its score is not an integer
    root = make_beir(tmp_path / "x", qrels={"test": "q1\td1\t1\nquery-id\tcorpus-id\tscore\n"})
    with pytest.raises(DataError, match=r"test\.tsv:2: score 'score'"):
        load_beir(root)


def test_nonpositive_scores_are_kept_as_given(tmp_path, make_beir):
    root = make_beir(tmp_path / "x", qrels={"test": "q1\td1\t0\nq1\td2\t-1\nq2\td2\t1\n"})
    ds = load_beir(root)
    assert ds.qrels["test"] == {"q1": {"d1": 0, "d2": -1}, "q2": {"d2": 1}}
    # a query judged only non-relevant still counts as judged in its split
    assert ds.split_queries("test")[0] == ["q1", "q2"]


def test_real_scifact(shared_data):
    start = time.perf_counter()
    ds = load_beir(shared_data / "beir" / "scifact")
    elapsed = time.perf_counter() - start
    assert len(ds.doc_ids) == 5183
    assert len(ds.query_ids) == 1109
    test = ds.qrels["test"]
    assert len(test) == 300
    assert sum(len(v) for v in test.values()) == 339
    assert len(ds.qrels["train"]) == 809
    assert sum(len(v) for v in ds.qrels["train"].values()) == 919
    assert len(ds.split_queries("test")[0]) == 300
    assert elapsed < 2.0, f"loading SciFact took {elapsed:.2f}s"


def test_empty_documents_and_blank_queries_are_warned_about(tmp_path, make_beir, make_jsonl, caplog):
    corpus = make_jsonl(
        [{"_id": "d1", "text": "a"}, {"_id": "d2", "title": "", "text": "  "}, {"_id": "d3", "text": ""}]
    )
    queries = make_jsonl([{"_id": "q1", "text": "   "}, {"_id": "q2", "text": "b"}])
    root = make_beir(tmp_path / "x", corpus=corpus, queries=queries, qrels={"test": "q1\td1\t1\nq2\td1\t1\n"})
    with caplog.at_level("WARNING", logger="keff.data.beir"):
        ds = load_beir(root)
    assert ds.doc_ids == ["d1", "d2", "d3"]  # loaded, not refused
    messages = [r.getMessage() for r in caplog.records]
    assert any("corpus.jsonl: 2 entries have empty or whitespace-only text (first: id 'd2')" in m for m in messages)
    assert any("queries.jsonl: 1 entry has empty or whitespace-only text (first: id 'q1')" in m for m in messages)
