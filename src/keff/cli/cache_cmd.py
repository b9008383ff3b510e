"""``keff cache``: what keff's embedding cache holds, and dropping seeded vectors."""

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from keff.cli.console import out
from keff.cli.typer_app import new_app

if TYPE_CHECKING:
    from rich.table import Table

app = new_app(help="Inspect keff's embedding cache and drop seeded vectors.", no_args_is_help=True)


def embedding_cache(root: Path | None = None):
    """The embedding cache at ``root`` (default: the one ``get_encoder`` uses)."""
    from keff.encoders.cache import EmbeddingCache
    from keff.errors import DataError
    from keff.paths import cache_dir

    if root is not None and root.exists() and not root.is_dir():
        raise DataError("--root must be a cache folder, but this is a file", path=root)
    return EmbeddingCache(root if root is not None else cache_dir() / "embeddings")


def _size(n_bytes: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n_bytes < 1024 or unit == "GB":
            return f"{n_bytes:,.0f} {unit}" if unit == "B" else f"{n_bytes:,.1f} {unit}"
        n_bytes /= 1024
    raise AssertionError("unreachable")


def _usage_table(cache, batches: list[dict]) -> "Table":
    from rich.table import Table

    names: dict[str, set[str]] = {}
    for b in batches:
        names.setdefault(str(b["fingerprint"])[:16], set()).add(str(b.get("encoder", "?")))
    table = Table(title="entries per encoder fingerprint")
    for col in ("fingerprint", "encoder (from seed batches)", "entries", "size"):
        table.add_column(col, justify="right" if col in ("entries", "size") else "left")
    for prefix, (n, size) in cache.usage().items():
        table.add_row(prefix, ", ".join(sorted(names.get(prefix, set()))) or "-", f"{n:,}", _size(size))
    return table


def _batches_table(batches: list[dict]) -> "Table":
    from rich.table import Table

    table = Table(title="seed batches (precomputed vectors; drop with: keff cache drop-seeded ID)")
    for col in ("id", "encoder", "kind", "source", "rows", "seeded", "probe", "min cosine", "created", "status"):
        table.add_column(col)
    for b in batches:
        table.add_row(
            b["batch_id"], str(b.get("encoder", "?")), str(b.get("kind", "?")), str(b.get("source", "?")),
            f"{b.get('n_rows', 0):,}", f"{b.get('n_seeded', 0):,}", str(b.get("probe_size", "?")),
            f"{b.get('min_cosine', float('nan')):.5f}", str(b.get("created", "?")),
            "complete" if b.get("complete") else "INCOMPLETE (interrupted?)",
        )  # fmt: skip
    return table


@app.command("info")
def info_command(
    root: Path | None = typer.Option(None, "--root", help="Embedding cache folder (default: keff's own)."),
) -> None:
    """Show the cache folder, its size, entries per encoder fingerprint and the seed batches."""
    cache = embedding_cache(root)
    usage = cache.usage()
    batches = cache.seed_batches()
    total_n = sum(n for n, _ in usage.values())
    total_size = sum(s for _, s in usage.values())
    out.print(f"embedding cache: {cache.root}")
    out.print(
        f"{total_n:,} entries, {_size(total_size)}, {len(usage)} encoder fingerprints, {len(batches)} seed batches"
    )
    if usage:
        out.print(_usage_table(cache, batches))
    if batches:
        out.print(_batches_table(batches))


@app.command("drop-seeded")
def drop_seeded_command(
    batch_id: str | None = typer.Argument(None, help="Seed batch id (see keff cache info)."),
    drop_all: bool = typer.Option(False, "--all", help="Drop every seed batch."),
    root: Path | None = typer.Option(None, "--root", help="Embedding cache folder (default: keff's own)."),
) -> None:
    """Delete the cache entries a seed batch wrote (texts are re-encoded by the model when needed)."""
    if (batch_id is None) == (not drop_all):
        raise typer.BadParameter("give one seed batch id, or --all")
    cache = embedding_cache(root)
    ids = [b["batch_id"] for b in cache.seed_batches()] if drop_all else [batch_id]
    if not ids:
        out.print(f"no seed batches under {cache.root}")
    for bid in ids:
        removed = cache.drop_seed_batch(bid)
        out.print(f"dropped seed batch {bid}: {removed:,} entries removed")
