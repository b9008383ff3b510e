"""Documents in: BEIR folders, JSONL files and folders of text files (the passage rule)."""

from __future__ import annotations

import json

import pytest

from keff.cli.demo_cmd import sample_corpus_dir
from keff.docindex import read_documents
from keff.docindex.ingest import PASSAGE_CHARS, split_passages
from keff.errors import DataError


def test_beir_folder_texts_as_keff_evaluates_them():
    docs = read_documents(sample_corpus_dir())
    assert len(docs) == 48 and docs[0].id == "t01" and docs[0].text.startswith("Git rebase")


def test_jsonl_fields_become_metadata_and_errors_name_the_line(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text(json.dumps({"id": 7, "text": "hello", "lang": "en"}) + "\n" + json.dumps({"id": "b", "text": "x"}))
    docs = read_documents(path)
    assert docs[0].id == "7" and docs[0].meta == {"lang": "en"}
    path.write_text(json.dumps({"id": "a", "text": "x"}) + "\n" + json.dumps({"id": "a", "text": "y"}) + "\n")
    with pytest.raises(DataError, match=r"docs\.jsonl:2: duplicate id \(first on line 1\)"):
        read_documents(path)
    path.write_text(json.dumps({"id": "a"}) + "\n")
    with pytest.raises(DataError, match=r"docs\.jsonl:1: missing field 'text'"):
        read_documents(path)


def test_passage_rule():
    paras = ["First paragraph.", "Second one.", "x" * 600 + ".", "y" * 700 + ". Short end."]
    passages = split_passages("\n\n".join(paras))
    assert passages[0] == "First paragraph.\n\nSecond one.\n\n" + "x" * 600 + "."
    assert all(len(p) <= PASSAGE_CHARS for p in passages)
    assert passages[-1].endswith("Short end.")
    long_sentence = "z" * 2500
    assert [len(p) for p in split_passages(long_sentence)] == [1000, 1000, 500]


def test_folder_of_text_files_becomes_passages(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.md").write_text("# Baking\n\nKnead the dough.\n\nLet it rise.\n")
    (tmp_path / "b.txt").write_text("Plain text file.\n")
    (tmp_path / "skip.csv").write_text("not read")
    docs = read_documents(tmp_path)
    assert [d.id for d in docs] == ["b.txt#1", "notes/a.md#1"]
    assert docs[1].meta == {"path": "notes/a.md", "passage": 1, "title": "Baking"}
    assert "Knead the dough.\n\nLet it rise." in docs[1].text
    with pytest.raises(DataError, match="expected a BEIR folder"):
        read_documents(tmp_path / "skip.csv")
