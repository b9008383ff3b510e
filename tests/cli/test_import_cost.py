"""``keff --help`` stays fast: the CLI imports only typer and its own modules until a command runs.

Structural checks (which modules a fresh interpreter has loaded), not wall-clock ones, so they
cannot be flaky on a busy machine.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Loaded by no ``--help``: numeric and model stacks, keff's data/model packages, servers, and
#: the parts of rich and pydantic that typer would pull in for rich help or option coercion.
HEAVY = (
    "numpy",
    "scipy",
    "torch",
    "faiss",
    "pandas",
    "matplotlib",
    "fastapi",
    "uvicorn",
    "pydantic",
    "rich",
    "markdown_it",
    "pygments",
    "keff.data",
    "keff.encoders",
    "keff.eval",
    "keff.index",
    "keff.maps",
    "keff.docindex",
    "keff.tasks",
    "keff.projection",
    "keff.adapters",
    "keff.predict",
    "keff.serve",
)


def _loaded_after(argv: list[str] | None) -> list[str]:
    """The HEAVY modules a fresh interpreter holds after ``import keff.cli`` (and ``main(argv)``)."""
    code = (
        "import json, sys\n"
        "from keff.cli import main\n"
        f"argv = {argv!r}\n"
        "if argv is not None:\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code in (0, None), exc.code\n"
        f"heavy = {HEAVY!r}\n"
        "print(json.dumps(sorted({h for h in heavy for m in sys.modules if m == h or m.startswith(h + '.')})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_keff_cli_stays_light():
    assert _loaded_after(None) == []


@pytest.mark.parametrize("argv", [["--help"], ["eval", "--help"], ["index", "--help"], ["align", "fit", "--help"]])
def test_help_stays_light(argv):
    assert _loaded_after(argv) == []


def test_help_lists_every_command_with_its_whole_summary(capsys):
    from keff.cli import main

    main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in ("eval", "compare", "demo", "search", "query", "serve", "data", "models", "cache", "align"):
        assert f" {name} " in text
    # the first paragraph in full, not cut at a sentence or the line's end
    assert "evaluate it on held-out documents, and retrieve what comes next from an index." in text


def test_option_help_is_plain_text(capsys):
    from keff.cli import main

    main(["index", "build", "--help"])
    out = capsys.readouterr().out
    assert "'keff[ray]'" in out and "\\[" not in out


def test_command_modules_keep_real_annotations():
    """typer reads every command's signature on each run; string annotations (``from __future__
    import annotations``) would be compiled again each time (see keff.cli.typer_app)."""
    from pathlib import Path

    import keff.cli

    folder = Path(keff.cli.__file__).parent
    for path in [folder / "__init__.py", *sorted(folder.glob("*_cmd.py"))]:
        assert "from __future__ import annotations" not in path.read_text(), path.name
