"""The FastAPI application of ``keff serve`` (see :mod:`keff.serve` for the endpoints)."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from keff.docindex import Document, Index
from keff.errors import KeffError
from keff.serve.batching import EncoderLocks, MicroBatcher
from keff.serve.config import ServeConfig
from keff.serve.holder import IndexHolder, Snapshot
from keff.serve.metrics import CONTENT_TYPE, Metrics
from keff.serve.middleware import BodyLimit, RequestMetrics, _send_json
from keff.serve.reports import list_reports, report_path
from keff.serve.schemas import AddRequest, EmbedRequest, RemoveRequest, SearchRequest, check_k, check_texts
from keff.serve.scoring import RequestError, contributions, plan, resolve_encoders, search_prepared

DESCRIPTION = """Search a keff index over HTTP: the raw primary encoder and the index with its attached
transforms side by side, with each encoder's share of every fused score. The page is at `/`.
Write endpoints (`POST`/`DELETE /documents`) exist only when the server has an API key and need it
(`Authorization: Bearer KEY` or `X-API-Key: KEY`)."""


class KeyGuard:
    """ASGI layer: the write endpoints need the API key, checked before the body is read.

    A missing key is 401, a wrong one 403; keys are compared in constant time.
    """

    def __init__(self, app, key: str | None, paths: set[str]) -> None:
        self.app = app
        self.key = None if key is None else key.encode("utf-8")
        self.paths = paths

    def given(self, scope: dict[str, Any]) -> bytes | None:
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization")
        if auth is not None:
            scheme, _, token = auth.partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return token.strip()
        key = headers.get(b"x-api-key")
        return key.strip() if key is not None and key.strip() else None

    async def __call__(self, scope, receive, send) -> None:
        if (self.key is None or scope["type"] != "http" or scope.get("path") not in self.paths
                or scope["method"] in ("GET", "HEAD", "OPTIONS")):  # fmt: skip
            await self.app(scope, receive, send)
            return
        given = self.given(scope)
        if given is None:
            await _send_json(send, 401, {"error": "this endpoint needs the API key: send the header "
                                         "'Authorization: Bearer KEY' or 'X-API-Key: KEY'"})  # fmt: skip
            return
        if not hmac.compare_digest(given, self.key):
            await _send_json(send, 403, {"error": "wrong API key"})
            return
        await self.app(scope, receive, send)


def _validation_message(exc: RequestValidationError) -> tuple[int, str, list[dict[str, Any]]]:
    errors = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        errors.append({"field": ".".join(loc) or "body", "message": err.get("msg", ""), "type": err.get("type", "")})
    if any(e["type"] == "json_invalid" for e in errors):
        return 400, "the request body is not valid JSON", errors
    if any(e["field"] == "body" and e["type"] in ("missing", "model_attributes_type", "dict_type") for e in errors):
        return 422, "the request body must be a JSON object (Content-Type: application/json)", errors
    return 422, "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5]), errors


class Service:
    """The state behind the endpoints: the index holder, the micro-batcher, the metrics."""

    def __init__(self, index: Index, config: ServeConfig) -> None:
        self.config = config
        self.metrics = Metrics()
        self.locks = EncoderLocks()
        self.batcher = MicroBatcher(config.batch_window_ms / 1000.0, config.max_batch, self.metrics, self.locks)
        self.holder = IndexHolder(index, interval=config.reload_interval_ms / 1000.0, verify=config.verify_on_reload,
                                  metrics=self.metrics, locks=self.locks)  # fmt: skip

    async def encode(self, snap: Snapshot, keys: list[str], texts: list[str], kind: str = "query") -> dict[str, Any]:
        """Each encoder's vectors of ``texts``: one micro-batched call per encoder, run side by side."""
        ix = snap.index
        got = await asyncio.gather(*(self.batcher.encode(ix.encoder(k), texts, kind=kind, label=k) for k in keys))
        return dict(zip(keys, got))

    async def search(self, body: SearchRequest, *, compare: bool) -> dict[str, Any]:
        texts = check_texts(body.queries, self.config)
        k = check_k(body.k, self.config)
        async with self.holder.use() as snap:
            ix = snap.index
            p = plan(ix, body.encoders, body.transforms)
            keys = list(dict.fromkeys(p.query_keys + ([p.raw_key] if compare else [])))
            vectors = await self.encode(snap, keys, texts)

            def run() -> dict[str, Any]:
                scores, rows, queries, weights = search_prepared(
                    ix, p.transforms, {q: vectors[q] for q in p.query_keys}, k
                )
                parts = contributions(ix, queries, weights, scores, rows) if compare else None
                raw = ix.search_vectors({p.raw_key: vectors[p.raw_key]}, k) if compare else None
                with snap.docs_lock:
                    hits = ix.hits(scores, rows)
                    raw_hits = ix.hits(*raw) if raw is not None else None
                results = []
                for i, text in enumerate(texts):
                    entry: dict[str, Any] = {"query": text, "hits": [h.to_dict() for h in hits[i]]}
                    if compare:
                        if parts is not None:
                            for hit, terms in zip(entry["hits"], parts[i]):
                                hit["contributions"] = terms
                        entry["raw_hits"] = [h.to_dict() for h in raw_hits[i]]
                    results.append(entry)
                out = {"generation": snap.generation, "k": k, "applied": p.describe(ix), "results": results}
                if compare:
                    out["raw"] = {"encoder": {"key": p.raw_key, "name": ix.manifest.encoders[p.raw_key]["name"]},
                                  "transforms": []}  # fmt: skip
                    out["contributions"] = parts is not None
                return out

            return await asyncio.to_thread(run)


def _page() -> str:
    return resources.files("keff.serve").joinpath("static/index.html").read_text(encoding="utf-8")


def create_app(index_path: str | Path | Index, config: ServeConfig | None = None) -> FastAPI:
    """The search service over the index at ``index_path`` (or an opened :class:`Index`).

    Parameters
    ----------
    index_path : str, Path or Index
        The index folder (opened with every check of ``Index.open``), or an index already open.
    config : ServeConfig, optional
        Limits, batching, reload, API key, reports folder (defaults: :class:`ServeConfig`).

    Returns
    -------
    FastAPI
        An ASGI application; run it with uvicorn (``keff serve`` does) or test it with
        ``fastapi.testclient.TestClient`` / ``httpx.ASGITransport``. Its state is ``app.state.service``.
    """
    config = config or ServeConfig()
    index = index_path if isinstance(index_path, Index) else Index.open(index_path, check=config.verify_on_reload)
    service = Service(index, config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        service.batcher.close()

    app = FastAPI(title="keff serve", description=DESCRIPTION, lifespan=lifespan)
    app.state.service = service

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message, errors = _validation_message(exc)
        return JSONResponse({"error": message, "errors": errors}, status_code=status)

    @app.exception_handler(RequestError)
    async def _bad_request(request: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.exception_handler(KeffError)
    async def _keff_error(request: Request, exc: KeffError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=409 if request.method in ("POST", "DELETE") else 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(_page())

    @app.post("/search", summary="Search one or many queries")
    async def search(body: SearchRequest) -> dict[str, Any]:
        """Top-k hits (id, score, text, meta) per query, with the chosen encoders and transforms;
        ``compare: true`` adds the raw encoder's hits and each encoder's share of every score."""
        return await service.search(body, compare=body.compare)

    @app.post("/compare", summary="Raw primary encoder vs the index with its transforms")
    async def compare(body: SearchRequest) -> dict[str, Any]:
        """As ``/search`` with ``compare: true``: per query ``raw_hits`` (first chosen encoder, no
        transforms) and ``hits`` (the index's transforms), each hit with ``contributions``
        (encoder, weight, cosine, weight x cosine)."""
        return await service.search(body, compare=True)

    @app.post("/embed", summary="Texts to vectors, per encoder")
    async def embed(body: EmbedRequest) -> dict[str, Any]:
        texts = check_texts(body.texts, config, "texts")
        async with service.holder.use() as snap:
            keys = resolve_encoders(snap.index, body.encoders)
            vectors = await service.encode(snap, keys, texts, kind=body.kind)
            specs = snap.index.manifest.encoders
            return {
                "kind": body.kind,
                "encoders": {key: {"name": specs[key]["name"], "dim": int(specs[key]["dim"]),
                                   "vectors": np.asarray(vectors[key], dtype=np.float64).tolist()}
                             for key in keys},
            }  # fmt: skip

    @app.get("/health", summary="Liveness and the generation served")
    async def health() -> dict[str, Any]:
        snap = service.holder.current
        return {"status": "ok", "generation": snap.generation, "documents": snap.index.n_docs,
                "reload_error": service.holder.reload_error}  # fmt: skip

    @app.get("/info", summary="The index (manifest summary) and the server's limits")
    async def info() -> dict[str, Any]:
        async with service.holder.use() as snap:
            data = json.loads(json.dumps(snap.index.info(), default=str))
        from keff import __version__

        serve = {"keff_version": __version__, "limits": config.limits(), "writes": config.writes_enabled,
                 "reports": config.reports_dir is not None}  # fmt: skip
        return {"index": data, "serve": serve}

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(service.metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/reports", summary="Evaluation plots of --reports")
    async def reports() -> dict[str, Any]:
        return {"reports": list_reports(config.reports_dir)}

    @app.get("/reports/{name}", summary="One evaluation plot (PNG)", response_class=FileResponse)
    async def report(name: str) -> FileResponse:
        path = report_path(config.reports_dir, name)
        if path is None:
            raise StarletteHTTPException(404, f"no report named {name!r}")
        return FileResponse(path, media_type="image/png")

    endpoints = {"/", "/search", "/compare", "/embed", "/health", "/info", "/metrics", "/reports", "/reports/{name}"}
    if config.writes_enabled:
        _add_write_endpoints(app, service)
        endpoints.add("/documents")

    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    app.add_middleware(KeyGuard, key=config.api_key, paths={"/documents"})
    app.add_middleware(RequestMetrics, metrics=service.metrics, endpoints=endpoints)
    return app


def _add_write_endpoints(app: FastAPI, service: Service) -> None:
    config = service.config

    @app.post("/documents", summary="Add documents (needs the API key)")
    async def add_documents(body: AddRequest) -> dict[str, Any]:
        """Add documents (encoded by every encoder of the index) in one atomic commit; an id the
        index holds is 409 unless ``replace``."""
        if not body.documents:
            raise RequestError("documents is empty: give at least one")
        if len(body.documents) > config.max_documents:
            raise RequestError(f"{len(body.documents)} documents; the limit is {config.max_documents} per request "
                               "(max_documents)")  # fmt: skip
        docs = [Document(d.id, d.text, d.meta) for d in body.documents]
        if len({d.id for d in docs}) != len(docs):
            raise RequestError("documents repeat an id")
        if not body.replace:
            held = service.holder.current.index.documents.row_of
            clash = [d.id for d in docs if d.id in held]
            if clash:
                raise RequestError(f"{len(clash)} ids are already in the index (first {clash[0]!r}); "
                                   "pass \"replace\": true to replace them", status=409)  # fmt: skip
        added = await service.holder.write(lambda ix: ix.add(docs, replace=body.replace))
        snap = service.holder.current
        return {"added": added, "documents": snap.index.n_docs, "generation": snap.generation}

    @app.delete("/documents", summary="Remove documents by id (needs the API key)")
    async def remove_documents(body: RemoveRequest) -> dict[str, Any]:
        """Remove documents by id in one atomic commit; an unknown id is 404 and nothing is removed."""
        if not body.ids:
            raise RequestError("ids is empty: give at least one")
        if len(body.ids) > config.max_documents:
            raise RequestError(f"{len(body.ids)} ids; the limit is {config.max_documents} per request (max_documents)")
        held = service.holder.current.index.documents.row_of
        missing = [i for i in body.ids if i not in held]
        if missing:
            raise RequestError(f"{len(missing)} ids are not in the index (first {missing[0]!r}); nothing removed",
                               status=404)  # fmt: skip
        removed = await service.holder.write(lambda ix: ix.remove(body.ids))
        snap = service.holder.current
        return {"removed": removed, "documents": snap.index.n_docs, "generation": snap.generation}
