"""Every invalid request gets its 4xx with a clear JSON message, and the server goes on serving."""
# ruff: noqa: E501  (the request tables read best one row per line)

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from keff.docindex import Index
from keff.docindex.manifest import MANIFEST

KEY = "s3cret-key-for-tests"
VALID = {"queries": ["git rebase"], "k": 3}

S, E = "/search", "/embed"


def case(name, body, status, message, path=S, method="POST", **kwargs):
    """One row: ``body`` is sent as JSON (None: nothing, or ``kwargs`` such as raw ``content``)."""
    if body is not None:
        kwargs["json"] = body
    return pytest.param(method, path, kwargs, status, message, id=name)


RAW = {"content-type": "application/json"}
# each row: the request, its status, words its error message must contain
TABLE = [
    case("k of the wrong type", {"queries": "git", "k": "3"}, 422, "k: Input should be a valid integer"),
    case("k a float", {"queries": "git", "k": 2.5}, 422, "k: Input should be a valid integer"),
    case("queries of the wrong type", {"queries": 5}, 422, "queries"),
    case("a query that is not a string", {"queries": ["ok", 7]}, 422, "queries.list[str].1"),
    case("negative k", {"queries": "git", "k": -1}, 422, "k must be between 1 and 20 (max_k); got -1"),
    case("k zero", {"queries": "git", "k": 0}, 422, "k must be between 1 and 20"),
    case("k too large", {"queries": "git", "k": 21}, 422, "k must be between 1 and 20 (max_k); got 21"),
    case("an unknown field", {"queries": "git", "top": 3}, 422, "top: Extra inputs are not permitted"),
    case("no queries field", {"k": 3}, 422, "queries: Field required"),
    case("an empty query", {"queries": ""}, 422, "queries[0] is empty or whitespace"),
    case("a whitespace query", {"queries": ["ok", " \t\n"]}, 422, "queries[1] is empty or whitespace"),
    case("an empty list of queries", {"queries": []}, 422, "queries is empty"),
    case("too many queries", {"queries": ["q"] * 9}, 422, "has 9 texts; the limit is 8 per request (max_queries)"),
    case("a query too long", {"queries": "x" * 301}, 422, "has 301 characters; the limit is 300 (max_query_chars)"),
    case("an unknown encoder", {"queries": "git", "encoders": ["minilm"]}, 422, "unknown encoder 'minilm': this index has"),
    case("an encoder twice", {"queries": "git", "encoders": ["hash", "hash"]}, 422, "named twice"),
    case("no encoder", {"queries": "git", "encoders": []}, 422, "name at least one encoder"),
    case("an unknown transform", {"queries": "git", "transforms": ["qmap"]}, 422, "unknown transform 'qmap': the index has fusion"),
    case("a bad transforms word", {"queries": "git", "transforms": "some"}, 422, "transforms"),
    case("compare not a boolean", {"queries": "git", "compare": "yes"}, 422, "compare: Input should be a valid boolean", "/compare"),
    case("invalid JSON", None, 400, "not valid JSON", content=b'{"queries": ', headers=RAW),
    case("a JSON list for a body", ["git"], 422, "must be a JSON object"),
    case("no body", None, 422, "must be a JSON object"),
    case("a huge body (Content-Length)", {"queries": "x" * 5000}, 413, "larger than the limit of 2,000 (max_body_bytes)"),
    case("a huge chunked body", None, 413, "of more than 2,000 bytes is larger than the limit", content=iter([b'{"queries": "', b"x" * 2500, b'"}'])),
    case("embed: no texts", {"texts": []}, 422, "texts is empty", E),
    case("embed: an empty text", {"texts": ["a", ""]}, 422, "texts[1] is empty", E),
    case("embed: a bad kind", {"texts": ["a"], "kind": "passage"}, 422, "kind", E),
    case("embed: an unknown encoder", {"texts": ["a"], "encoders": ["bm25"]}, 422, "unknown encoder 'bm25'", E),
    case("an unknown path", None, 404, "Not Found", "/nowhere", "GET"),
    case("GET on a POST endpoint", None, 405, "Method Not Allowed", S, "GET"),
]  # fmt: skip


@pytest.fixture
def client(make_app):
    app = make_app(max_k=20, max_queries=8, max_query_chars=300, max_body_bytes=2000)
    with TestClient(app) as c:
        yield c


def _still_serves(client: TestClient) -> None:
    r = client.post("/search", json=VALID)
    assert r.status_code == 200, r.text
    assert len(r.json()["results"][0]["hits"]) == 3


@pytest.mark.parametrize(("method", "path", "kwargs", "status", "message"), TABLE)
def test_invalid_request_gets_a_clear_4xx_and_the_server_goes_on(client, method, path, kwargs, status, message):
    r = client.request(method, path, **kwargs)
    assert r.status_code == status, r.text
    body = r.json()
    assert message in body["error"], body
    assert "Traceback" not in r.text
    _still_serves(client)


def test_the_metrics_count_the_refusals(client):
    for row in TABLE[:5]:
        method, path, kwargs = row.values[:3]
        client.request(method, path, **kwargs)
    text = client.get("/metrics").text
    assert 'keff_requests_total{endpoint="/search",method="POST",status="422"} 5' in text


# -- the write endpoints ----------------------------------------------------------------------------
DOC = {"documents": [{"id": "new-1", "text": "zebra crossing rules", "meta": {"src": "test"}}]}


def test_write_endpoints_are_absent_without_a_configured_key(make_app, fused_index):
    before = (fused_index / MANIFEST).read_bytes()
    with TestClient(make_app()) as client:
        add = client.post("/documents", json=DOC, headers={"Authorization": f"Bearer {KEY}"})
        rm = client.request("DELETE", "/documents", json={"ids": ["t01"]}, headers={"X-API-Key": KEY})
        assert "/documents" not in client.get("/openapi.json").json()["paths"]
        _still_serves(client)
    assert add.status_code == 404 and rm.status_code == 404
    assert (fused_index / MANIFEST).read_bytes() == before  # nothing written


K = {"X-API-Key": KEY}


def write(name, method, body, headers, status, message):
    return pytest.param(method, body, headers, status, message, id=name)


WRITE_TABLE = [
    write("add without a key", "POST", DOC, {}, 401, "needs the API key"),
    write("add with a wrong bearer key", "POST", DOC, {"Authorization": "Bearer nope"}, 403, "wrong API key"),
    write("add with a wrong X-API-Key", "POST", DOC, {"X-API-Key": KEY + "x"}, 403, "wrong API key"),
    write("add with another scheme", "POST", DOC, {"Authorization": f"Basic {KEY}"}, 401, "needs the API key"),
    write("add with an empty bearer", "POST", DOC, {"Authorization": "Bearer "}, 401, "needs the API key"),
    write("remove without a key", "DELETE", {"ids": ["t01"]}, {}, 401, "needs the API key"),
    write("remove with a wrong key", "DELETE", {"ids": ["t01"]}, {"X-API-Key": "wrong"}, 403, "wrong API key"),
    write("add: an unknown field", "POST", {"documents": [], "force": True}, K, 422, "force: Extra inputs"),
    write("add: an empty id", "POST", {"documents": [{"id": "", "text": "t"}]}, K, 422, "documents.0.id"),
    write("add: no documents", "POST", {"documents": []}, K, 422, "documents is empty"),
    write("add: a held id", "POST", {"documents": [{"id": "t01", "text": "t"}]}, K, 409, "already in the index (first 't01')"),
    write("add: an id twice", "POST", {"documents": [{"id": "a", "text": "t"}, {"id": "a", "text": "u"}]}, K, 422, "repeat an id"),
    write("add: too many", "POST", {"documents": [{"id": f"n{i}", "text": "t"} for i in range(4)]}, K, 422, "the limit is 3 per request"),
    write("remove: an unknown id", "DELETE", {"ids": ["t01", "nope"]}, K, 404, "1 ids are not in the index (first 'nope'); nothing removed"),
    write("remove: ids of the wrong type", "DELETE", {"ids": "t01"}, K, 422, "ids: Input should be a valid list"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "body", "headers", "status", "message"), WRITE_TABLE)
def test_write_refusals_change_nothing(make_app, fused_index, method, body, headers, status, message):
    before = (fused_index / MANIFEST).read_bytes()
    with TestClient(make_app(api_key=KEY, max_documents=3)) as client:
        r = client.request(method, "/documents", json=body, headers=headers)
        assert r.status_code == status, r.text
        assert message in r.json()["error"]
        if status == 401:
            assert r.headers.get("www-authenticate") is None or "Bearer" in r.headers["www-authenticate"]
        _still_serves(client)
    assert (fused_index / MANIFEST).read_bytes() == before
    assert Index.open(fused_index).n_docs == 48


def test_writes_with_the_key_add_replace_and_remove(make_app, fused_index):
    with TestClient(make_app(api_key=KEY)) as client:
        r = client.post("/documents", json=DOC, headers={"Authorization": f"Bearer {KEY}"})
        assert r.status_code == 200, r.text
        assert r.json()["added"] == 1 and r.json()["documents"] == 49
        hits = client.post("/search", json={"queries": "zebra crossing", "k": 1}).json()["results"][0]["hits"]
        assert hits[0]["id"] == "new-1" and hits[0]["meta"] == {"src": "test"}
        again = {"documents": [{"id": "new-1", "text": "giraffe spots"}], "replace": True}
        assert client.post("/documents", json=again, headers={"X-API-Key": KEY}).json()["documents"] == 49
        hits = client.post("/search", json={"queries": "giraffe spots", "k": 1}).json()["results"][0]["hits"]
        assert hits[0]["id"] == "new-1" and hits[0]["text"] == "giraffe spots"
        r = client.request("DELETE", "/documents", json={"ids": ["new-1", "t01"]}, headers={"X-API-Key": KEY})
        assert r.status_code == 200 and r.json()["removed"] == 2 and r.json()["documents"] == 47
        found = client.post("/search", json={"queries": "giraffe git rebase", "k": 20}).json()
        ids = {h["id"] for h in found["results"][0]["hits"]}
        assert "new-1" not in ids and "t01" not in ids
        assert "/documents" in client.get("/openapi.json").json()["paths"]
    reopened = Index.open(fused_index)
    assert reopened.n_docs == 47 and "new-1" not in reopened.documents.row_of
    assert [h["action"] for h in reopened.info()["history"]][-3:] == ["add", "add", "remove"]
