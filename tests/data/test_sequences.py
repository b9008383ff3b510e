"""Tests for keff.data.sequences: WikiText raw parsing, sentence units, document-disjoint splits."""

from __future__ import annotations

import pytest

from keff.data.sequences import (
    Article,
    Sequences,
    detokenize,
    heading_level,
    load_wikitext,
    qa_page_sequences,
    sample_documents,
    sentence_sequences,
    split_sentences,
    split_sequences,
    wikitext_sequences,
)
from keff.errors import DataError

SAMPLE = """
 = Robert Boulter = 

 Robert Boulter is an English film , television and theatre actor .
 He had a guest @-@ starring role in 2 @,@ 000 episodes , rated 7 @.@ 5 .

 = = Career = = 
 = = = 2000 – 2005 = = = 
 In 2000 Boulter had a role .
 = Empty Article = 
 = = Only a heading = = 

 = Ise @-@ class battleship = 
 = Qualified for the next round 
 The ships were built .
"""


def test_parses_articles_paragraphs_and_drops_headings(tmp_path):
    path = tmp_path / "wiki.raw"
    path.write_text(SAMPLE, encoding="utf-8")
    articles = load_wikitext(path)
    assert articles == [
        Article(
            "Robert Boulter",
            [
                "Robert Boulter is an English film , television and theatre actor .",
                "He had a guest-starring role in 2,000 episodes , rated 7.5 .",
                "In 2000 Boulter had a role .",
            ],
        ),
        # "Empty Article" had no paragraphs and is dropped; a line that only starts with "="
        # (no closing marker) is a paragraph
        Article("Ise-class battleship", ["= Qualified for the next round", "The ships were built ."]),
    ]


def test_heading_levels():
    assert heading_level(" = Title = ") == (1, "Title")
    assert heading_level(" = = Sec = = ") == (2, "Sec")
    assert heading_level(" = = = = Deep = = = = ") == (4, "Deep")
    assert heading_level(" = = Unbalanced = ") is None
    assert heading_level(" plain text = ") is None
    assert detokenize(" a @-@ b @,@ c @.@ d ") == "a-b,c.d"


def test_text_before_first_title_names_line(tmp_path):
    path = tmp_path / "bad.raw"
    path.write_text("\n = = Section = = \n = Title = \n text\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.raw:2: text before the first article title"):
        load_wikitext(path)


def test_no_articles_is_an_error(tmp_path):
    path = tmp_path / "none.raw"
    path.write_text(" = Only Title = \n\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"none\.raw: no article with paragraphs"):
        load_wikitext(path)


def test_real_wikitext(shared_data):
    articles = load_wikitext(shared_data / "sequences" / "wikitext_test.raw")
    assert len(articles) == 62
    assert articles[0].title == "Robert Boulter"
    assert all(a.paragraphs for a in articles)
    assert not any(" @-@ " in p for a in articles for p in a.paragraphs)


# -- ordered units for next-unit prediction ----------------------------------------------------
def test_split_sentences_keeps_abbreviations_and_initials():
    text = "We used e.g. mice (Fig. 2). Results were strong. J. Smith et al. found 3.5 times more. Why? Because."
    assert split_sentences(text) == [
        "We used e.g. mice (Fig. 2).",
        "Results were strong.",
        "J. Smith et al. found 3.5 times more.",
        "Why?",
        "Because.",
    ]


def test_sentence_sequences_drop_short_sentences_and_documents():
    seq = sentence_sequences("toy", ["a", "b"], ["One two three. Four five six. Ok. Seven eight nine.", "Too short."])
    assert seq.doc_ids == ["a"] and seq.units == [["One two three.", "Four five six.", "Seven eight nine."]]
    texts, doc, pos = seq.flat()
    assert doc == [0, 0, 0] and pos == [0, 1, 2] and texts[1] == "Four five six."
    with pytest.raises(DataError, match="no document"):
        sentence_sequences("toy", ["b"], ["Too short."])
    with pytest.raises(DataError, match="repeat"):
        Sequences("toy", "sentence", ["a", "a"], [["x"], ["y"]])


def test_split_is_document_disjoint_and_reports_repeated_units():
    units = [[f"unit {d}-{i}" for i in range(4)] for d in range(20)]
    units[0][1] = units[19][2] = "the same boilerplate sentence"
    seq = Sequences("toy", "sentence", [f"d{i}" for i in range(20)], units)
    split = split_sequences(seq, val_frac=0.2, test_frac=0.2, seed=0)
    parts = [set(split.train), set(split.val), set(split.test)]
    assert sum(map(len, parts)) == 20 and not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    across = (0 in parts[0]) != (19 in parts[0])
    assert split.repeated == (frozenset({"the same boilerplate sentence"}) if across else frozenset())


def test_wikitext_sequences(shared_data):
    seq = wikitext_sequences(shared_data / "sequences" / "wikitext_test.raw")
    assert seq.unit == "paragraph" and len(seq.doc_ids) > 50 and seq.n_units > 2000
    assert all(len(u) >= 3 for u in seq.units)


def test_qa_pages_read_distinct_answers_in_order(tmp_path):
    lines = [
        '{"doc": "p1", "answer": "First answer one. It has two sentences."}',
        '{"doc": "p2", "answer": "Other page here. Second sentence there. Third one too."}',
        '{"doc": "p1", "answer": "First answer one. It has two sentences."}',
        '{"doc": "p1", "answer": "Second answer now. And more words."}',
    ]
    path = tmp_path / "qa.jsonl"
    path.write_text("\n".join(lines) + "\n")
    seq = qa_page_sequences(path)
    assert seq.doc_ids == ["p1", "p2"]
    assert seq.units[0] == ["First answer one.", "It has two sentences.", "Second answer now.", "And more words."]
    path.write_text(lines[0] + '\n{"doc": 3, "answer": "x"}\n')
    with pytest.raises(DataError, match=r"qa.jsonl.*2|line 2"):
        qa_page_sequences(path)


def test_sample_documents_is_seeded_and_ordered():
    seq = Sequences("toy", "sentence", [f"d{i}" for i in range(30)], [[f"u{i}"] * 3 for i in range(30)])
    a, b = sample_documents(seq, 10, seed=3), sample_documents(seq, 10, seed=3)
    assert a.doc_ids == b.doc_ids and len(a.doc_ids) == 10
    assert a.doc_ids == sorted(a.doc_ids, key=lambda d: int(d[1:]))
    assert sample_documents(seq, 50) is seq


def test_medquad_pages(shared_data):
    seq = qa_page_sequences(shared_data / "qa" / "medquad.jsonl")
    assert seq.unit == "sentence" and len(seq.doc_ids) > 3000 and len(set(seq.doc_ids)) == len(seq.doc_ids)
