"""Hot reload: a commit made elsewhere is served next, no request fails during the swap, a bad commit
is not served."""

from __future__ import annotations

import asyncio

import httpx
from fastapi.testclient import TestClient

from keff.docindex import Document, Index

NEW = [Document(f"zoo-{i}", f"zebra giraffe okapi enclosure {i}", {"zoo": True}) for i in range(5)]


def _ids(client, query: str, k: int = 5) -> list[str]:
    r = client.post("/search", json={"queries": query, "k": k})
    assert r.status_code == 200, r.text
    return [h["id"] for h in r.json()["results"][0]["hits"]]


def test_a_commit_from_another_writer_is_served_by_the_next_search(make_app, fused_index):
    with TestClient(make_app(reload_interval_ms=0)) as client:
        before = client.get("/health").json()
        assert not any(i.startswith("zoo-") for i in _ids(client, "zebra giraffe okapi"))
        writer = Index.open(fused_index)  # as `keff index add` in another process would
        writer.add(NEW)
        assert _ids(client, "zebra giraffe okapi")[0].startswith("zoo-")
        after = client.get("/health").json()
        assert after["generation"] > before["generation"] and after["documents"] == 53
        writer.remove(["zoo-0", "t01"])
        ids = _ids(client, "zebra giraffe okapi", k=10)
        assert "zoo-0" not in ids and "zoo-1" in ids
        info = client.get("/info").json()["index"]
        assert info["documents"] == 51 and info["history"][-1]["action"] == "remove"
        text = client.get("/metrics").text
    assert "keff_index_reloads_total 2" in text and "keff_index_documents 51" in text


def test_the_manifest_is_looked_at_no_more_often_than_the_interval(make_app, fused_index):
    with TestClient(make_app(reload_interval_ms=60_000)) as client:
        _ids(client, "git")
        Index.open(fused_index).add(NEW)
        assert not any(i.startswith("zoo-") for i in _ids(client, "zebra giraffe okapi"))  # not looked yet
        client.app.state.service.holder.last_check -= 61  # the interval has passed
        assert _ids(client, "zebra giraffe okapi")[0].startswith("zoo-")


def test_requests_during_the_swap_all_succeed(make_app, fused_index):
    app = make_app(reload_interval_ms=0, batch_window_ms=1)
    holder = app.state.service.holder
    first = holder.current

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:

            async def searches(n):
                return [await client.post("/search", json={"queries": f"zebra git {i}", "k": 5}) for i in range(n)]

            writer = Index.open(fused_index)
            results = await asyncio.gather(*(searches(15) for _ in range(6)), asyncio.to_thread(writer.add, NEW))
            last = await client.post("/search", json={"queries": "zebra giraffe okapi", "k": 3})
            return results[:-1], last

    streams, last = asyncio.run(main())
    responses = [r for stream in streams for r in stream]
    assert len(responses) == 90 and all(r.status_code == 200 for r in responses), [r.text for r in responses][:3]
    assert all(len(r.json()["results"][0]["hits"]) == 5 for r in responses)
    for stream in streams:  # each client sees the old state, then the new one, never back
        generations = [r.json()["generation"] for r in stream]
        assert generations == sorted(generations)
    assert last.json()["results"][0]["hits"][0]["id"].startswith("zoo-")
    assert holder.current is not first and first.retired and first.users == 0
    app.state.service.batcher.close()


def test_a_commit_that_cannot_be_opened_is_not_served(make_app, fused_index):
    with TestClient(make_app(reload_interval_ms=0)) as client:
        gen = client.get("/health").json()["generation"]
        Index.open(fused_index).add(NEW)
        newest = max((fused_index / "docs").glob("*.jsonl"), key=lambda p: p.name)
        newest.write_bytes(newest.read_bytes().replace(b"zebra", b"zebrA"))  # damaged after the commit
        ids = _ids(client, "zebra giraffe okapi")  # still answered, from the last good state
        assert not any(i.startswith("zoo-") for i in ids)
        health = client.get("/health").json()
        assert health["generation"] == gen and "SHA-256 mismatch" in health["reload_error"]
        assert "keff_index_reload_failures_total 1" in client.get("/metrics").text
        _ids(client, "git")  # the failed state is not retried on every request
        assert "keff_index_reload_failures_total 1" in client.get("/metrics").text
