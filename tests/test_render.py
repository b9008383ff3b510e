"""benchmarks/render.py regenerates BENCHMARKS.md from the committed results without error."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_render():
    spec = importlib.util.spec_from_file_location("render", ROOT / "benchmarks" / "render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_results_render_to_the_committed_file(tmp_path):
    render = load_render()
    out = tmp_path / "BENCHMARKS.md"
    assert render.main(["--results", str(ROOT / "benchmarks" / "results"), "--out", str(out)]) == 0
    text = out.read_text()
    for path in sorted((ROOT / "benchmarks" / "results").glob("*.json")):
        name = json.loads(path.read_text())["benchmark"]
        assert render.RENDERERS[name]  # every results file has a section
    assert text == (ROOT / "BENCHMARKS.md").read_text(), "BENCHMARKS.md is stale: run python benchmarks/render.py"


def test_unknown_benchmark_is_refused(tmp_path):
    render = load_render()
    (tmp_path / "x.json").write_text(json.dumps({"benchmark": "mystery"}))
    assert render.main(["--results", str(tmp_path), "--out", str(tmp_path / "B.md")]) == 2
