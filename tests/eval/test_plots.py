import pytest

from keff.errors import KeffError
from keff.eval.plots import plot_results
from keff.eval.report import Result

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def results():
    return [
        Result("minilm", "scifact/test", {"ndcg@10": 0.645, "mrr@10": 0.605, "recall@100": 0.925}),
        Result("mpnet", "scifact/test", {"ndcg@10": 0.656, "mrr@10": 0.618, "recall@100": 0.942}),
    ]


def test_plot_writes_a_png(tmp_path):
    path = plot_results(results(), tmp_path / "plots" / "scifact.png", title="SciFact test")
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000
    assert [p.name for p in path.parent.iterdir()] == ["scifact.png"]  # no temp file left


def test_plot_across_datasets_and_custom_metrics(tmp_path):
    rs = results()
    rs[1].dataset = "other"
    path = plot_results(rs, tmp_path / "x.png", metrics=["ndcg@10"])
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_missing_metric_is_an_error(tmp_path):
    with pytest.raises(KeffError, match="'minilm' on 'scifact/test' has no hit@1"):
        plot_results(results(), tmp_path / "x.png", metrics=["hit@1"])
    with pytest.raises(KeffError, match="no results"):
        plot_results([], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_plotting_does_not_touch_pyplot_or_the_global_backend():
    import subprocess
    import sys

    code = (
        "import os, sys, tempfile; from keff.eval.plots import plot_results; from keff.eval.report import Result; "
        "d = tempfile.mkdtemp(); plot_results([Result('s', 'd', {'ndcg@10': .5, 'mrr@10': .4, 'recall@100': .9})], "
        "os.path.join(d, 'p.png')); print('matplotlib.pyplot' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
