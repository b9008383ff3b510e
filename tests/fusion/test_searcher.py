"""FusedSearcher and ``keff search`` with specialists saved as SEF files."""

from __future__ import annotations

import numpy as np
import pytest

from keff.cli.demo_cmd import sample_corpus_dir
from keff.data import load_beir
from keff.encoders import get_encoder
from keff.errors import KeffError
from keff.fusion import fit_specialist
from keff.fusion.searcher import FusedSearcher
from keff.uncertainty import CentroidDistance


@pytest.fixture
def specialists(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFF_CACHE_DIR", str(tmp_path / "cache"))
    ds = load_beir(sample_corpus_dir())
    enc = get_encoder("minilm")  # a real model: the hash encoder has no notion of domain
    vecs = enc.encode(ds.doc_texts)
    out = []
    for domain, prefix in (("tech", "t"), ("cooking", "c")):
        rows = [i for i, d in enumerate(ds.doc_ids) if d.startswith(prefix)]
        spec = fit_specialist(domain, enc, anchors_own=vecs, anchors_frame=None, domain_texts_own=vecs[rows],
                              uncertainty=CentroidDistance(), domain=domain)  # fmt: skip
        out.append(spec.save(tmp_path / f"{domain}.sef"))
    return out, ds


def test_weights_and_results(specialists):
    from keff.fusion.specialist import Specialist

    paths, ds = specialists
    searcher = FusedSearcher([Specialist.load(p) for p in paths], ds.doc_ids, ds.doc_texts)
    hits, w = searcher.search(["knead the bread dough", "merge conflict in git"], k=3)
    assert np.allclose(w.sum(axis=0), 1)
    assert w[1, 0] > w[0, 0] and w[0, 1] > w[1, 1]  # cooking query -> cooking specialist, and vice versa
    assert len(hits) == 2 and len(hits[0]) == 3
    route, _ = searcher.weights(["knead the bread dough"], "route")
    assert sorted(route[:, 0].tolist()) == [0.0, 1.0]
    with pytest.raises(KeffError, match="unknown strategy"):
        searcher.weights(["x"], "vote")


def test_search_command(specialists, run):
    paths, ds = specialists
    args = ["search", "--data", str(sample_corpus_dir()), "-q", "how long to knead dough"]
    for p in paths:
        args += ["--specialist", str(p)]
    res = run(*args)
    assert res.exit_code == 0, res.output
    assert "weights: tech" in res.output and "rank" in res.output


def test_search_command_skips_whitespace_only_queries_with_a_warning(specialists, run):
    paths, _ = specialists
    data = str(sample_corpus_dir())
    res = run("search", "--data", data, "-q", "   ", "-q", "knead dough", "--specialist", str(paths[0]))
    assert res.exit_code == 0, res.output
    assert "skipped an empty or whitespace-only query" in res.output
    assert res.output.count("weights:") == 1
