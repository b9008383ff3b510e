"""The search service's endpoints: search as the index searches, compare with honest contributions,
embed, info, health, metrics, the page, the reports."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from keff.docindex import Index
from keff.encoders import get_encoder
from keff.serve import ServeConfig, create_app
from keff.serve.metrics import Histogram

QUERIES = ["squash commits before pushing", "proof yeast dough", "virtual environment packages"]


def test_search_answers_exactly_as_the_index_does(make_app, fused_index):
    want = Index.open(fused_index).search(QUERIES, k=5)
    with TestClient(make_app()) as client:
        r = client.post("/search", json={"queries": QUERIES, "k": 5})
        one = client.post("/search", json={"queries": QUERIES[0], "k": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [res["query"] for res in body["results"]] == QUERIES
    for res, hits in zip(body["results"], want):
        assert [h["id"] for h in res["hits"]] == [h.id for h in hits]
        np.testing.assert_allclose([h["score"] for h in res["hits"]], [h.score for h in hits], rtol=1e-6)
        assert {"id", "score", "text", "meta"} <= set(res["hits"][0])
        assert "contributions" not in res["hits"][0] and "raw_hits" not in res
    assert body["applied"]["weighting"] == "fusion-weights"
    assert [t["name"] for t in body["applied"]["transforms"]] == ["fusion"]
    assert one.json()["results"][0]["hits"] == body["results"][0]["hits"]  # one string = a list of one


def test_compare_gives_raw_column_and_contributions_that_add_up(make_app, fused_index, fusion_weights):
    ix = Index.open(fused_index)
    a, b = ix.encoder_keys
    with TestClient(make_app()) as client:
        r = client.post("/compare", json={"queries": QUERIES, "k": 6})
        via_search = client.post("/search", json={"queries": QUERIES, "k": 6, "compare": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert via_search.json() == body
    assert body["raw"]["encoder"] == {"key": a, "name": "hash"} and body["contributions"] is True
    q = ix.encode_queries(QUERIES)
    raw_scores, raw_rows = ix.search_vectors({a: q[a]}, 6)  # the primary encoder alone
    for i, res in enumerate(body["results"]):
        assert [h["id"] for h in res["raw_hits"]] == [d.id for d in ix.documents.get(raw_rows[i])]
        np.testing.assert_allclose([h["score"] for h in res["raw_hits"]], raw_scores[i], rtol=1e-6)
        for hit in res["hits"]:
            terms = {t["encoder"]: t for t in hit["contributions"]}
            assert set(terms) == {a, b}
            assert terms[a]["weight"] == pytest.approx(fusion_weights[0]) and terms[b]["weight"] == pytest.approx(
                fusion_weights[1]
            )
            row = ix.documents.row_of[hit["id"]]
            for key in (a, b):  # the cosine of this query and this document, from the index's own vectors
                assert terms[key]["cosine"] == pytest.approx(float(q[key][i] @ ix.vectors[key][row]), abs=1e-6)
                assert terms[key]["contribution"] == pytest.approx(terms[key]["weight"] * terms[key]["cosine"])
            assert sum(t["contribution"] for t in terms.values()) == pytest.approx(hit["score"], abs=1e-5)
    # the two columns really differ (the fused scores are not the primary encoder's)
    assert any([h["score"] for h in res["hits"]] != [h["score"] for h in res["raw_hits"]] for res in body["results"])


def test_choosing_encoders_and_transforms(make_app, fused_index):
    ix = Index.open(fused_index)
    a, b = ix.encoder_keys
    q = ix.encode_queries(QUERIES[:1])
    with TestClient(make_app()) as client:
        none = client.post("/compare", json={"queries": QUERIES[:1], "k": 4, "transforms": "none"}).json()
        listed = client.post("/search", json={"queries": QUERIES[:1], "k": 4, "transforms": ["fusion"]}).json()
        alone = client.post("/search", json={"queries": QUERIES[:1], "k": 4, "encoders": ["hash2"]}).json()
        full = client.post("/search", json={"queries": QUERIES[:1], "k": 4}).json()
    assert none["applied"]["weighting"] == "equal" and none["applied"]["transforms"] == []
    equal = 0.5 * (q[a] @ ix.vectors[a].T) + 0.5 * (q[b] @ ix.vectors[b].T)
    np.testing.assert_allclose([h["score"] for h in none["results"][0]["hits"]], np.sort(equal[0])[::-1][:4], rtol=1e-5)
    assert all(t["weight"] == pytest.approx(0.5) for h in none["results"][0]["hits"] for t in h["contributions"])
    assert listed["results"] == full["results"]
    assert alone["applied"]["encoders"] == [{"key": b, "name": "hash2"}]
    only_b = q[b][0] @ ix.vectors[b].T
    np.testing.assert_allclose([h["score"] for h in alone["results"][0]["hits"]], np.sort(only_b)[::-1][:4], rtol=1e-5)


def test_embed_returns_each_encoders_vectors(make_app, fused_index):
    ix = Index.open(fused_index)
    texts = ["git rebase", "sourdough starter"]
    with TestClient(make_app()) as client:
        r = client.post("/embed", json={"texts": texts})
        doc = client.post("/embed", json={"texts": texts, "encoders": ["hash2"], "kind": "doc"})
    assert r.status_code == 200 and doc.status_code == 200
    body = r.json()
    assert list(body["encoders"]) == ix.encoder_keys and body["kind"] == "query"
    for key, name in zip(ix.encoder_keys, ("hash", "hash2")):
        got = np.array(body["encoders"][key]["vectors"])
        assert got.shape == (2, body["encoders"][key]["dim"]) and body["encoders"][key]["name"] == name
        np.testing.assert_allclose(got, get_encoder(name).encode(texts, kind="query"), atol=1e-6)
    assert list(doc.json()["encoders"]) == [ix.encoder_keys[1]]


def test_info_and_health(make_app, fused_index):
    with TestClient(make_app(max_k=7)) as client:
        info = client.get("/info").json()
        health = client.get("/health").json()
    assert info["index"]["documents"] == 48 and [e["name"] for e in info["index"]["encoders"]] == ["hash", "hash2"]
    assert info["index"]["weighting"] == "fusion-weights" and info["index"]["transforms"][0]["name"] == "fusion"
    assert info["serve"]["limits"]["max_k"] == 7 and info["serve"]["writes"] is False
    assert health == {"status": "ok", "generation": info["index"]["generation"], "documents": 48, "reload_error": None}


def _samples(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_metrics_count_requests_by_endpoint_and_status_and_batch_sizes(make_app, fused_index):
    key = Index.open(fused_index).encoder_keys[0]
    with TestClient(make_app()) as client:
        for _ in range(3):
            assert client.post("/search", json={"queries": ["a b", "c d"], "k": 2}).status_code == 200
        assert client.post("/search", json={"queries": "x", "k": 0}).status_code == 422
        assert client.get("/nope").status_code == 404
        r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    m = _samples(r.text)
    assert m['keff_requests_total{endpoint="/search",method="POST",status="200"}'] == 3
    assert m['keff_requests_total{endpoint="/search",method="POST",status="422"}'] == 1
    assert m['keff_requests_total{endpoint="other",method="GET",status="404"}'] == 1
    assert m['keff_request_duration_seconds_count{endpoint="/search"}'] == 4
    assert m['keff_encoder_batch_size_count{encoder="' + key + '"}'] == 3  # one call per request, 2 texts each
    assert m['keff_encoder_batch_size_sum{encoder="' + key + '"}'] == 6
    assert m['keff_encoder_batch_size_bucket{encoder="' + key + '",le="1"}'] == 0
    assert m['keff_encoder_batch_size_bucket{encoder="' + key + '",le="2"}'] == 3
    assert m["keff_index_documents"] == 48
    assert "# TYPE keff_encoder_batch_size histogram" in r.text


def test_histogram_buckets_are_cumulative():
    h = Histogram("h", "test", (1, 5))
    for v in (0.5, 3, 7):
        h.observe(v)
    assert h.lines() == ['h_bucket{le="1"} 1', 'h_bucket{le="5"} 2', 'h_bucket{le="+Inf"} 3', "h_sum 10.5", "h_count 3"]


def test_page_docs_and_openapi(make_app):
    with TestClient(make_app()) as client:
        page = client.get("/")
        schema = client.get("/openapi.json").json()
        docs = client.get("/docs")
    assert page.status_code == 200 and 'id="raw-results"' in page.text and 'id="transformed-results"' in page.text
    assert "http://" not in page.text and "https://" not in page.text  # nothing loaded from elsewhere
    assert {"/search", "/compare", "/embed", "/health", "/info", "/metrics"} <= set(schema["paths"])
    assert "/documents" not in schema["paths"]
    assert docs.status_code == 200


def test_reports_are_listed_and_served_without_leaving_their_folder(make_app, tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 20
    (reports / "ndcg.png").write_bytes(png)
    (reports / "notes.txt").write_text("not a plot")
    (reports / ".hidden.png").write_bytes(png)
    (tmp_path / "secret.png").write_bytes(b"secret")
    (reports / "link.png").symlink_to(tmp_path / "secret.png")
    with TestClient(make_app(reports_dir=reports)) as client:
        listing = client.get("/reports").json()
        ok = client.get("/reports/ndcg.png")
        bad = [client.get(f"/reports/{name}").status_code
               for name in ("notes.txt", ".hidden.png", "link.png", "..%2Fsecret.png", "%2E%2E%2Fsecret.png",
                            "missing.png", "%2Fetc%2Fpasswd")]  # fmt: skip
        traversal = client.get("/reports/../secret.png")
    assert listing == {"reports": [{"name": "ndcg.png", "url": "/reports/ndcg.png", "bytes": len(png)}]}
    assert ok.status_code == 200 and ok.content == png and ok.headers["content-type"] == "image/png"
    assert bad == [404] * len(bad)
    assert traversal.status_code == 404 and b"secret" not in traversal.content
    with TestClient(make_app()) as client:  # no --reports: nothing listed, nothing served
        assert client.get("/reports").json() == {"reports": []}
        assert client.get("/reports/ndcg.png").status_code == 404


def test_config_refuses_bad_settings(tmp_path):
    from keff.errors import KeffError
    from keff.serve import is_loopback

    with pytest.raises(KeffError, match="max_k must be an integer >= 1"):
        ServeConfig(max_k=0)
    with pytest.raises(KeffError, match="batch_window_ms"):
        ServeConfig(batch_window_ms=-1)
    with pytest.raises(KeffError, match="API key is empty"):
        ServeConfig(api_key="  ")
    with pytest.raises(KeffError, match="no such folder of reports"):
        ServeConfig(reports_dir=tmp_path / "none")
    assert "secret" not in repr(ServeConfig(api_key="secret"))
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.3.2.1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.4") and not is_loopback("example.org")


def test_an_opened_index_can_be_served(fused_index):
    with TestClient(create_app(Index.open(fused_index))) as client:
        assert client.post("/search", json={"queries": "git", "k": 1}).status_code == 200


def test_an_index_under_upgrade_is_served_as_it_searches(tmp_path):
    pytest.importorskip("onnxruntime", reason="the upgrade target minilm-l3-onnx needs the onnx extra")
    from keff.cli.demo_cmd import sample_corpus_dir
    from keff.docindex import read_documents
    from keff.docindex import upgrade as U

    ix = Index.build(tmp_path / "up", read_documents(sample_corpus_dir()), ["hash"])
    U.upgrade(ix, "minilm-l3-onnx", anchors=40, map_kind="affine", queries=sample_corpus_dir())
    want = Index.open(tmp_path / "up").search(QUERIES, k=4)
    with TestClient(create_app(tmp_path / "up")) as client:
        body = client.post("/compare", json={"queries": QUERIES, "k": 4}).json()
    assert body["applied"]["upgrade"] == ix.upgrade.mode and body["contributions"] is False
    for res, hits in zip(body["results"], want):
        assert [h["id"] for h in res["hits"]] == [h.id for h in hits]
        assert "contributions" not in res["hits"][0]
    assert body["raw"]["encoder"]["name"] == "hash"  # the old model alone
    q = get_encoder("hash").encode(QUERIES[:1], kind="query")
    assert res["raw_hits"] and [h["id"] for h in body["results"][0]["raw_hits"]] == [
        h.id for h in ix.hits(*ix.search_vectors({ix.encoder_keys[0]: q}, 4))[0]
    ]
