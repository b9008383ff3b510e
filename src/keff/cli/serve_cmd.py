"""``keff serve``: the search service and its page over an index (``pip install 'keff[serve]'``)."""

import os
from pathlib import Path

import typer

from keff.cli.console import err


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}/"


def serve_command(
    index: Path = typer.Argument(..., help="Index folder (keff index build)."),
    host: str = typer.Option("127.0.0.1", help="Address to bind; anything but loopback is reachable from elsewhere."),
    port: int = typer.Option(8077, min=0, max=65535, help="Port (0: any free port; the URL line says which)."),
    api_key_env: str = typer.Option(
        "KEFF_API_KEY", help="Environment variable holding the API key that enables POST/DELETE /documents."
    ),
    reports: Path | None = typer.Option(None, help="Folder of evaluation plots (*.png) to show on the page."),
    max_k: int = typer.Option(100, min=1, help="Largest k a request may ask for."),
    max_queries: int = typer.Option(64, min=1, help="Most queries (or texts to embed) per request."),
    max_query_chars: int = typer.Option(2000, min=1, help="Longest query text, in characters."),
    max_body_bytes: int = typer.Option(1_000_000, min=1, help="Largest request body, in bytes (413 above)."),
    max_documents: int = typer.Option(1000, min=1, help="Most documents per POST /documents."),
    batch_window_ms: float = typer.Option(3.0, min=0, help="Micro-batching window, in milliseconds (0: off)."),
    max_batch: int = typer.Option(64, min=1, help="Texts that close a micro-batch at once."),
    reload_interval_ms: float = typer.Option(200.0, min=0, help="Least ms between checks for a newer commit."),
    log_level: str = typer.Option("warning", help="uvicorn's log level (access lines at 'info')."),
) -> None:
    """Serve an index over HTTP: search, compare (raw encoder vs the index's transforms), embed, metrics, a page.

    Writes (POST/DELETE /documents) exist only when the environment variable named by
    --api-key-env holds a key, and need it. The key is never read from the command line.
    """
    from keff.errors import KeffError, require

    require("fastapi", "serve")
    uvicorn = require("uvicorn", "serve")
    from keff.docindex import Index
    from keff.serve import ServeConfig, create_app, is_loopback

    key = os.environ.get(api_key_env) or None
    config = ServeConfig(
        max_k=max_k, max_queries=max_queries, max_query_chars=max_query_chars, max_body_bytes=max_body_bytes,
        max_documents=max_documents, batch_window_ms=batch_window_ms, max_batch=max_batch,
        reload_interval_ms=reload_interval_ms, api_key=key, reports_dir=reports,
    )  # fmt: skip
    if not is_loopback(host):
        if key is None:
            err.print(
                f"[bold red]WARNING[/]: binding {host}: anyone who can reach this address can search the index and "
                f"read every document it holds. No API key is set (${api_key_env}), so writes are off.",
                highlight=False,
            )
        else:
            err.print(
                f"[bold red]WARNING[/]: binding {host} with writes on: the API key travels in clear text over "
                "plain HTTP; put a TLS proxy in front of this server.",
                highlight=False,
            )
    ix = Index.open(index)
    app = create_app(ix, config)

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets=sockets)
            if self.started and not self.should_exit:
                bound = self.servers[0].sockets[0].getsockname()[1] if self.servers else port
                writes = f"writes on (key from ${api_key_env})" if key else "read-only"
                print(f"keff serve: {_url(host, bound)} ({ix.n_docs:,} documents, {writes})", flush=True)

    server = Server(uvicorn.Config(app, host=host, port=port, log_level=log_level.lower(), lifespan="on"))
    try:
        server.run()
    except OSError as exc:
        raise KeffError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
    if not server.started:
        raise KeffError(f"keff serve did not start on {host}:{port} (see the lines above)")
