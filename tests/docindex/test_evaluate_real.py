"""On real data: an index's evaluation reproduces ``keff eval`` exactly (SciFact, minilm, exact search)."""

from __future__ import annotations

import pytest

from keff.data import load_beir
from keff.docindex import Index, read_documents
from keff.docindex.evaluate import evaluate_index
from keff.encoders import get_encoder
from keff.errors import ModelNotAvailable
from keff.paths import shipped_vectors
from keff.precomputed import seed_beir_vectors
from keff.tasks import beir_task, evaluate_encoder

pytestmark = pytest.mark.slow


@pytest.fixture
def scifact_minilm(shared_data):
    folder = shared_data / "beir" / "scifact"
    vectors = shipped_vectors(folder, "minilm")
    if not folder.is_dir() or vectors is None:
        pytest.skip(f"SciFact or its shipped minilm vectors are not under {shared_data}")
    try:
        enc = get_encoder("minilm")
    except ModelNotAvailable as exc:
        pytest.skip(f"minilm is not installed: {exc}")
    ds = load_beir(folder)
    seed_beir_vectors(enc, ds, vectors, probe=16, seed=0)  # the isolated cache: re-encodes 16 texts per file
    return folder, ds, enc


def test_index_eval_reproduces_keff_eval_on_scifact(tmp_path, scifact_minilm):
    folder, ds, enc = scifact_minilm
    task = beir_task(ds, "test")
    ix = Index.build(tmp_path / "scifact", read_documents(folder), ["minilm"])
    got = evaluate_index(ix, task, latency_queries=0)
    want = evaluate_encoder(task, enc)
    assert round(got.metrics["ndcg@10"], 4) == 0.6451
    assert got.metrics == want.metrics and got.per_query == want.per_query
    assert got.meta["documents"]["task_not_in_index"] == got.meta["documents"]["index_not_in_task"] == 0
