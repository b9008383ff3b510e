"""Micro-batching: concurrent requests share encoder calls, and each gets its own rows back."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import numpy as np
import pytest

from keff.docindex import Index
from keff.encoders import get_encoder
from keff.serve.batching import EncoderLocks, MicroBatcher
from keff.serve.metrics import Metrics


class SlowEncoder:
    """Records every call; takes ``delay`` seconds per call (as a model would)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.inner = get_encoder("hash")
        self.name = "slow"
        self.delay = delay
        self.calls: list[int] = []
        self.threads: set[str] = set()

    def encode(self, texts, kind="query", show_progress=None):
        self.calls.append(len(texts))
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        return self.inner.encode(texts, kind=kind)


def test_concurrent_callers_share_one_call_and_get_their_own_rows():
    enc = SlowEncoder()
    metrics = Metrics()
    batcher = MicroBatcher(0.02, 1000, metrics, EncoderLocks())
    texts = [[f"text {i} a", f"other {i} b"][: 1 + i % 2] for i in range(12)]

    async def main():
        return await asyncio.gather(*(batcher.encode(enc, t) for t in texts))

    try:
        got = asyncio.run(main())
    finally:
        batcher.close()
    assert enc.calls == [sum(len(t) for t in texts)]  # one call for all twelve callers
    for t, vectors in zip(texts, got):
        np.testing.assert_allclose(vectors, get_encoder("hash").encode(t, kind="query"))
    assert metrics.batch_size.count((("encoder", "slow"),)) == 1
    assert metrics.batch_requests.total((("encoder", "slow"),)) == 12
    assert all(name.startswith("keff-encode") for name in enc.threads)  # never on the event loop's thread


def test_max_batch_closes_a_batch_early_and_window_zero_batches_nothing():
    enc = SlowEncoder()
    batcher = MicroBatcher(10.0, 4, Metrics(), EncoderLocks())  # a long window: only max_batch closes it

    async def main(b):
        return await asyncio.wait_for(asyncio.gather(*(b.encode(enc, ["a", "b"]) for _ in range(4))), 5)

    asyncio.run(main(batcher))
    assert enc.calls == [4, 4]
    enc.calls.clear()
    alone = MicroBatcher(0.0, 64, Metrics(), EncoderLocks())
    asyncio.run(main(alone))
    assert enc.calls == [2, 2, 2, 2]
    batcher.close()
    alone.close()


def test_texts_arriving_while_the_encoder_is_busy_gather_into_the_next_call():
    # Under load a model call outlasts the window: what arrives meanwhile must wait for that call
    # and go as one batch, not as one call per request queued on the encoder's lock.
    enc = SlowEncoder(delay=0.3)
    batcher = MicroBatcher(0.005, 1000, Metrics(), EncoderLocks())

    async def main():
        first = asyncio.ensure_future(batcher.encode(enc, ["first"]))
        await asyncio.sleep(0.05)  # the first call is running now
        later = []
        for i in range(10):
            later.append(asyncio.ensure_future(batcher.encode(enc, [f"later {i}"])))
            await asyncio.sleep(0.01)  # each one's window passes while the call runs
        return await asyncio.wait_for(asyncio.gather(first, *later), 10)

    try:
        got = asyncio.run(main())
    finally:
        batcher.close()
    assert enc.calls == [1, 10]
    np.testing.assert_allclose(got[3], get_encoder("hash").encode(["later 2"], kind="query"))


def test_an_encoder_error_reaches_every_caller_of_the_batch():
    class Broken:
        name = "broken"

        def encode(self, texts, kind="query", show_progress=None):
            raise RuntimeError("model crashed")

    batcher = MicroBatcher(0.01, 64, Metrics(), EncoderLocks())

    async def main():
        return await asyncio.gather(*(batcher.encode(Broken(), ["a"]) for _ in range(3)),
                                    return_exceptions=True)  # fmt: skip

    assert all(isinstance(r, RuntimeError) for r in asyncio.run(main()))
    batcher.close()


@pytest.mark.parametrize("n", [24])
def test_concurrent_search_requests_make_fewer_encoder_calls_than_requests(make_app, fused_index, n):
    app = make_app(batch_window_ms=20, max_batch=256)
    service = app.state.service
    keys = Index.open(fused_index).encoder_keys

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            bodies = [{"queries": [f"query number {i} git rebase"], "k": 3} for i in range(n)]
            return await asyncio.gather(*(client.post("/search", json=b) for b in bodies))

    responses = asyncio.run(main())
    assert [r.status_code for r in responses] == [200] * n
    for i, r in enumerate(responses):
        assert r.json()["results"][0]["query"] == f"query number {i} git rebase"  # each got its own answer
    for key in keys:
        calls = service.batcher.calls[key]
        assert calls < n, f"{n} concurrent requests made {calls} calls of {key}"
        assert service.metrics.batch_size.count((("encoder", key),)) == calls
        assert service.metrics.batch_size.total((("encoder", key),)) == n  # every text encoded once
    metrics = service.metrics.render()
    assert f'keff_encoder_batch_requests_count{{encoder="{keys[0]}"}}' in metrics
    service.batcher.close()
