"""Exceptions raised by keff.

Every error keff raises on bad input is a :class:`KeffError`, so callers (and the CLI) can
catch one type and print a clean message instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path


class KeffError(Exception):
    """Base class of every error keff raises on purpose."""


class DataError(KeffError, ValueError):
    """Bad input data; the message names the file, line and/or id at fault.

    Parameters
    ----------
    message : str
        What is wrong.
    path : str or Path, optional
        The file at fault.
    line : int, optional
        1-based line number in ``path``.
    item_id : str, optional
        The id (document, query, pair) at fault.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        item_id: str | None = None,
    ) -> None:
        self.path = None if path is None else Path(path)
        self.line = line
        self.item_id = item_id
        where = ""
        if self.path is not None:
            where = str(self.path)
            if line is not None:
                where += f":{line}"
            where += ": "
        if item_id is not None:
            message = f"{message} (id {item_id!r})"
        super().__init__(where + message)


class ModelNotAvailable(KeffError, RuntimeError):
    """A named model cannot be loaded here; the message says what installs it."""


class UntrustedEncoder(ModelNotAvailable):
    """An artifact names an encoder keff will not load on the file's word alone (not a registry
    name, not a model folder inside keff's cache); the message says how to name it explicitly."""


class MissingExtra(KeffError, ImportError):
    """An optional dependency is missing; the message names the pip extra that installs it."""


class CacheCorrupt(KeffError):
    """A disk-cache entry failed its integrity check (it is recomputed, never returned)."""


class FingerprintMismatch(KeffError, ValueError):
    """Stored vectors do not match what the encoder produces for the same texts."""


class NotFittedError(KeffError, ValueError):
    """An estimator was used before ``fit``."""


class FormatError(KeffError, ValueError):
    """A keff artifact file is truncated, tampered with, or of an unknown version."""


def require(module: str, extra: str):
    """Import an optional module or raise :class:`MissingExtra` naming the extra to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised only where the extra is absent
        raise MissingExtra(f"{module!r} is not installed; install it with: pip install 'keff[{extra}]'") from exc
