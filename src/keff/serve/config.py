"""The search service's settings: limits, batching, reload, the API key (no server import here)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, fields
from pathlib import Path

from keff.errors import KeffError


@dataclass
class ServeConfig:
    """How ``keff serve`` (:func:`keff.serve.create_app`) answers requests.

    Every limit is checked on every request; a request over a limit gets a 4xx JSON error naming
    the limit, and the server goes on serving.

    Attributes
    ----------
    max_k : int
        Largest ``k`` (results per query) a request may ask for.
    max_queries : int
        Most queries (or texts to embed) in one request.
    max_query_chars : int
        Longest query text, in characters.
    max_body_bytes : int
        Largest request body, in bytes (``Content-Length`` and the bytes actually sent; 413 above).
    max_documents : int
        Most documents in one ``POST /documents`` (or ids in one ``DELETE /documents``).
    batch_window_ms : float
        How long the first query text of a batch waits for others before its encoder runs (the
        micro-batching window); 0 runs each request's encoder call alone.
    max_batch : int
        Texts that close a batch at once, without waiting for the window.
    reload_interval_ms : float
        Least time between two checks of the index's manifest for a newer commit (made by
        ``keff index add`` in another process); 0 checks on every request.
    verify_on_reload : bool
        Verify every file's SHA-256 when (re)opening the index (default; as ``Index.open``).
    api_key : str or None
        The key that enables ``POST /documents`` and ``DELETE /documents``; without one those
        endpoints do not exist. Never shown in ``repr``.
    reports_dir : Path or None
        Folder of evaluation plots (``*.png``) served at ``GET /reports``.
    """

    max_k: int = 100
    max_queries: int = 64
    max_query_chars: int = 2_000
    max_body_bytes: int = 1_000_000
    max_documents: int = 1_000
    batch_window_ms: float = 3.0
    max_batch: int = 64
    reload_interval_ms: float = 200.0
    verify_on_reload: bool = True
    api_key: str | None = field(default=None, repr=False)
    reports_dir: Path | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("max_k", "max_queries", "max_query_chars", "max_body_bytes", "max_documents", "max_batch"):
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise KeffError(f"serve setting {f.name} must be an integer >= 1; got {value!r}")
            elif f.name in ("batch_window_ms", "reload_interval_ms"):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 60_000:
                    raise KeffError(
                        f"serve setting {f.name} must be a number of milliseconds in [0, 60000]; got {value!r}"
                    )
        if self.api_key is not None:
            if not isinstance(self.api_key, str) or not self.api_key.strip():
                raise KeffError("the API key is empty; set a non-empty key or none (writes are then off)")
        if self.reports_dir is not None:
            self.reports_dir = Path(self.reports_dir).expanduser()
            if not self.reports_dir.is_dir():
                raise KeffError(f"{self.reports_dir}: no such folder of reports (--reports)")

    @property
    def writes_enabled(self) -> bool:
        """Whether the write endpoints exist (an API key is configured)."""
        return self.api_key is not None

    def limits(self) -> dict[str, float | int]:
        """The limits as ``GET /info`` shows them."""
        names = ("max_k", "max_queries", "max_query_chars", "max_body_bytes", "max_documents", "batch_window_ms",
                 "max_batch", "reload_interval_ms")  # fmt: skip
        return {name: getattr(self, name) for name in names}


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable only from this machine."""
    if host.strip().lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything
