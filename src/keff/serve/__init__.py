"""``keff serve``: a search service over a keff index, and its page (``pip install 'keff[serve]'``).

``create_app(index_path, ServeConfig(...))`` returns a FastAPI (ASGI) application; ``keff serve
IDX`` runs it with uvicorn on 127.0.0.1:8077. Endpoints:

- ``POST /search``: ``{"queries": str | [str], "k": 10, "encoders": [keys or names] | null,
  "transforms": "all" | "none" | [names], "compare": false}`` -> per query the hits (id, score,
  text, meta), searched exactly as :meth:`keff.docindex.Index.search` (:mod:`keff.serve.scoring`).
- ``POST /compare``: the same with ``compare`` on: the raw primary encoder's hits beside the hits
  with the index's transforms, each with every encoder's ``weight x cosine``.
- ``POST /embed`` (texts -> vectors per encoder), ``GET /health``, ``GET /info`` (``Index.info``
  and the limits), ``GET /metrics`` (Prometheus text: requests by endpoint and status, latency,
  encoder batch sizes), ``GET /docs`` and ``/openapi.json``.
- ``GET /``: the page (two columns, raw and with transforms); ``GET /reports`` and
  ``/reports/{name}``: the evaluation plots of ``ServeConfig.reports_dir``.
- ``POST /documents``, ``DELETE /documents``: only with an API key configured, and only with it.

Bad requests get a 4xx JSON ``{"error": "..."}`` naming the field and the limit
(:class:`ServeConfig`); concurrent queries are micro-batched into one encoder call per encoder
(:mod:`keff.serve.batching`); a newer commit of the index (``keff index add`` elsewhere) is picked up
without dropping a request (:mod:`keff.serve.holder`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from keff.serve.config import ServeConfig, is_loopback

if TYPE_CHECKING:  # pragma: no cover
    from fastapi import FastAPI

    from keff.docindex import Index


def create_app(index_path: str | Path | Index, config: ServeConfig | None = None) -> FastAPI:
    """The search service over the index at ``index_path``; see :func:`keff.serve.app.create_app`."""
    from keff.errors import require

    require("fastapi", "serve")
    from keff.serve.app import create_app as _create_app

    return _create_app(index_path, config)


__all__ = ["ServeConfig", "create_app", "is_loopback"]
