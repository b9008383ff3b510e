"""Whole-process timings of the command line: start-up (``--help``) and a warm ``keff eval``.

Each command runs in a fresh process (what a user waits for), ``repeats`` times, alternating
with the floor it is compared with (``python -c pass``). Whether a run imported torch is read
from Python's import log (``PYTHONPROFILEIMPORTTIME``) of one extra run, so the timed runs carry
no logging overhead.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: Modules a warm evaluation must not import (the model stack).
MODEL_MODULES = ("torch", "sentence_transformers", "onnxruntime")


def keff_argv(*args: str) -> list[str]:
    """The command line running ``keff args`` with this interpreter (no reliance on PATH)."""
    return [sys.executable, "-c", "import sys; from keff.cli import main; sys.argv[0] = 'keff'; main()", *args]


def _run(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    return time.perf_counter() - t0, done


def timed(commands: dict[str, list[str]], repeats: int, env: dict[str, str] | None = None) -> dict[str, float]:
    """Median wall seconds of each command, run in turn ``repeats`` times; a failing command
    raises with its stderr's last line."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(repeats):
        for name, argv in commands.items():
            seconds, done = _run(argv, env)
            if done.returncode != 0:
                last = (done.stderr.strip().splitlines() or ["no output"])[-1]
                raise RuntimeError(f"{name} exited {done.returncode}: {last}")
            times[name].append(seconds)
    return {name: statistics.median(ts) for name, ts in times.items()}


def imported(argv: list[str], env: dict[str, str] | None = None) -> list[str]:
    """The top-level modules of :data:`MODEL_MODULES` that one run of ``argv`` imported."""
    _, done = _run(argv, {**(env or os.environ), "PYTHONPROFILEIMPORTTIME": "1"})
    names = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return sorted(m for m in MODEL_MODULES if m in names)


def compiled_env(prefix: Path) -> dict[str, str]:
    """This environment with Python's bytecode cache allowed and kept under ``prefix`` (as for an
    installed keff, whose modules pip compiles at install), whatever ``PYTHONDONTWRITEBYTECODE``
    says here."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": str(prefix)}


def startup(repeats: int = 10) -> dict[str, Any]:
    """Median seconds of ``keff --help`` and ``keff eval --help`` against ``python -c pass``, with
    the bytecode cache warm (``seconds``, an installed keff) and as this environment runs them
    (``seconds_as_is``: without a bytecode cache when ``PYTHONDONTWRITEBYTECODE`` is set)."""
    commands = {"python": [sys.executable, "-c", "pass"], "keff_help": keff_argv("--help"),
                "keff_eval_help": keff_argv("eval", "--help")}  # fmt: skip
    prefix = Path(tempfile.mkdtemp(prefix="keff-perf-pyc-"))
    try:
        env = compiled_env(prefix)
        timed(commands, 1, env)  # compiles every module once
        med = timed(commands, repeats, env)
    finally:
        shutil.rmtree(prefix, ignore_errors=True)
    return {"repeats": repeats, "seconds": med, "seconds_as_is": timed(commands, repeats),
            "bytecode_cache_here": "PYTHONDONTWRITEBYTECODE" not in os.environ}  # fmt: skip


def warm_eval(data: Path, encoder: str = "minilm", repeats: int = 3, cache: Path | None = None) -> dict[str, Any]:
    """A ``keff eval`` of ``data`` (SciFact) run once in a private cache (seeding it from the
    precomputed vectors, which loads the model once to check them), then timed warm; and which
    model modules the warm run imported."""
    own = cache is None
    cache = cache or Path(os.environ.get("TMPDIR", "/tmp")) / f"keff-perf-cache-{os.getpid()}"
    env = {**os.environ, "KEFF_CACHE_DIR": str(cache)}
    argv = keff_argv("eval", "--data", str(data), "--encoder", encoder)
    try:
        cold, done = _run(argv, env)
        if done.returncode != 0:
            raise RuntimeError(f"keff eval exited {done.returncode}: {done.stderr.strip().splitlines()[-1:]}")
        med = timed({"warm": argv}, repeats, env)
        return {"encoder": encoder, "data": data.name, "repeats": repeats, "cold_seconds": cold,
                "warm_seconds": med["warm"], "warm_imports": imported(argv, env)}  # fmt: skip
    finally:
        if own:
            shutil.rmtree(cache, ignore_errors=True)
