"""ASGI middleware of the search service: the body-size limit and the request metrics.

:class:`BodyLimit` refuses a body over ``max_bytes`` with 413 before the application reads it:
at once when ``Content-Length`` says so, else while reading (a chunked body, or one longer
than it claimed); the body is read here (bounded) and replayed to the application.
:class:`RequestMetrics` counts every response by endpoint (the route's path template, so ids
in paths do not multiply the series), method and status, and times it.
"""

from __future__ import annotations

import json
import time
from typing import Any

from keff.serve.metrics import Metrics

Scope = dict[str, Any]


async def _send_json(send, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
               (b"connection", b"close")]  # fmt: skip
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class BodyLimit:
    """Refuse request bodies larger than ``max_bytes`` with 413 (see the module docstring)."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)

    def _too_large(self, size: str) -> dict[str, Any]:
        return {
            "error": f"request body of {size} bytes is larger than the limit of {self.max_bytes:,} (max_body_bytes)"
        }

    async def __call__(self, scope: Scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                await _send_json(send, 400, {"error": "Content-Length is not a number"})
                return
            if length > self.max_bytes:
                await _send_json(send, 413, self._too_large(f"{length:,}"))
                return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _send_json(send, 413, self._too_large(f"more than {self.max_bytes:,}"))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class RequestMetrics:
    """Count and time every HTTP response (see the module docstring)."""

    def __init__(self, app, metrics: Metrics, endpoints: set[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.endpoints = endpoints

    def _endpoint(self, scope: Scope) -> str:
        route = scope.get("route")
        path = getattr(route, "path", None) or scope.get("path", "")
        return path if path in self.endpoints else "other"

    async def __call__(self, scope: Scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def observe(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            endpoint = self._endpoint(scope)
            with self.metrics.lock:
                self.metrics.requests.inc(
                    (("endpoint", endpoint), ("method", scope["method"]), ("status", str(status)))
                )
                self.metrics.latency.observe(time.perf_counter() - start, (("endpoint", endpoint),))
