"""The import graph points one way: no package imports a layer above it, and there are no cycles.

Layers, bottom up (README, "Layout"); a module may import its own layer and the ones below.
Imports inside functions count too (they may defer a heavy dependency, never dodge a cycle).
"""

from __future__ import annotations

import ast
from pathlib import Path

import keff

SRC = Path(keff.__file__).resolve().parent
LAYERS = [
    {"errors", "atomic", "paths", "progress", "threads"},
    {"arrays", "archive", "sef", "index", "estimator"},
    {"data", "encoders", "eval"},
    {"maps", "uncertainty", "train"},
    {"fusion", "tasks", "precomputed", "alignment", "projection", "adapters", "predict"},
    {"docindex"},
    {"studies", "cli", "serve"},
]
RANK = {unit: i for i, layer in enumerate(LAYERS) for unit in layer}


def unit_of(module: str) -> str | None:
    """``keff.maps.base`` -> ``maps``; None for ``keff`` itself and non-keff modules."""
    parts = module.split(".")
    return parts[1] if parts[0] == "keff" and len(parts) > 1 else None


def is_unit(name: str) -> bool:
    """Whether ``keff.<name>`` is a module or package (not a name like ``__version__``)."""
    return (SRC / f"{name}.py").is_file() or (SRC / name).is_dir()


def imports() -> dict[str, set[str]]:
    """Unit -> units it imports, from every module under src/keff."""
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).with_suffix("")
        me = rel.parts[0] if rel.parts[0] != "__init__" else None
        if me is None:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                subs = [a.name for a in node.names if node.module == "keff" and is_unit(a.name)]
                names = [node.module, *(f"keff.{name}" for name in subs)]
            for name in names:
                other = unit_of(name)
                if other and other != me:
                    graph.setdefault(me, set()).add(other)
    return graph


def test_every_unit_has_a_layer():
    units = {p.stem if p.is_file() else p.name for p in SRC.iterdir() if p.suffix == ".py" or p.is_dir()}
    units -= {"__init__", "__pycache__", "py.typed", "__main__"}
    assert units <= set(RANK), f"put {sorted(units - set(RANK))} in a layer (tests/test_layers.py and README)"


def test_no_import_runs_up_a_layer():
    upward = [f"{a} -> {b}" for a, targets in imports().items() for b in targets if RANK[b] > RANK[a]]
    assert not upward, upward


def test_no_cycles_between_units():
    graph = imports()
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path, node, nxt]
            if nxt not in state:
                found = visit(nxt, [*path, node])
                if found:
                    return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [])
            assert cycle is None, " -> ".join(cycle)


def test_library_never_imports_the_studies_or_the_cli():
    graph = imports()
    offenders = [a for a, targets in graph.items() if a not in ("studies", "cli") and targets & {"studies", "cli"}]
    assert not offenders, offenders
