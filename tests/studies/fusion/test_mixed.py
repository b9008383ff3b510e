"""The mixed-domain set: disjoint splits, judgements inside the corpus, no leaks."""

from __future__ import annotations

import pytest

from keff.data import leak_check
from keff.studies.fusion.mixed import DOMAINS, build_mixed_domain


@pytest.fixture(scope="module")
def mixed(shared_data):
    return build_mixed_domain(shared_data)


def test_every_judgement_points_into_the_corpus(mixed):
    docs = set(mixed.doc_ids)
    assert len(docs) == len(mixed.doc_ids)
    for qs in (mixed.val, mixed.test):
        assert len(set(qs.ids)) == len(qs.ids)
        for q, rels in qs.qrels.items():
            assert rels and set(rels) <= docs
            assert all(d.split(":", 1)[0] == q.split(":", 1)[0] for d in rels)  # same domain


def test_all_domains_present_in_every_split(mixed):
    for qs in (mixed.val, mixed.test):
        assert set(qs.domains) == set(DOMAINS)
    assert set(mixed.train_pairs) == set(DOMAINS)


def test_no_query_text_leaks_between_train_val_and_test(mixed):
    val, test = set(mixed.val.ids), set(mixed.test.ids)
    assert not val & test
    for domain in DOMAINS:
        train_q = [q for q, _ in mixed.train_pairs[domain]]
        for qs in (mixed.val.select(domain), mixed.test.select(domain)):
            assert leak_check(train_q, qs.texts).exact_text_overlap == 0
        assert leak_check(mixed.val.select(domain).texts, mixed.test.select(domain).texts).exact_text_overlap == 0


def test_medquad_training_answers_are_not_in_the_corpus(mixed):
    corpus = set(mixed.doc_texts)
    assert not any(a in corpus for _, a in mixed.train_pairs["medquad"])
    assert not any(a in corpus for _, a in mixed.train_pairs["skills"])
