"""Tests for keff.data.sequences: WikiText raw parsing."""

from __future__ import annotations

import pytest

from keff.data.sequences import Article, detokenize, heading_level, load_wikitext
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
