import json
import subprocess
import sys
import types

import numpy as np
import pytest

from keff.errors import FormatError, KeffError
from keff.eval.report import Result, comparison_markdown, load_result, markdown_table, run_metadata, write_result
from keff.eval.significance import PairedComparison


def make_result(system="minilm", dataset="scifact/test", ndcg=0.645):
    return Result(
        system=system,
        dataset=dataset,
        metrics={"ndcg@10": ndcg, "mrr@10": np.float64(0.6)},
        per_query={"ndcg@10": {"1": 1.0, "3": np.float32(0.5)}},
        meta={"seed": 0, "latency": {"p50_us": np.float64(12.5)}, "shape": np.array([2, 3])},
    )


def test_to_dict_layout():
    doc = make_result().to_dict()
    assert doc["format"] == "keff.result" and doc["format_version"] == 1
    assert set(doc) == {"format", "format_version", "system", "dataset", "metrics", "per_query", "meta"}
    assert type(doc["metrics"]["mrr@10"]) is float


def test_json_round_trip(tmp_path):
    path = write_result(make_result(), tmp_path / "sub" / "minilm.json")
    text = path.read_text()
    assert text.startswith('{\n  "dataset"')  # sorted keys, indent 2
    loaded = load_result(path)
    assert loaded.system == "minilm" and loaded.dataset == "scifact/test"
    assert loaded.metrics == {"ndcg@10": 0.645, "mrr@10": 0.6}
    assert loaded.per_query == {"ndcg@10": {"1": 1.0, "3": 0.5}}
    assert loaded.meta == {"seed": 0, "latency": {"p50_us": 12.5}, "shape": [2, 3]}
    assert load_result(write_result(loaded, tmp_path / "again.json")).to_dict() == loaded.to_dict()


def test_unwritable_values_raise_and_leave_no_file(tmp_path):
    bad = make_result(ndcg=float("nan"))
    with pytest.raises(KeffError, match="cannot write result 'minilm'"):
        write_result(bad, tmp_path / "r.json")
    odd = make_result()
    odd.meta["obj"] = object()
    with pytest.raises(KeffError, match="not JSON-serialisable"):
        write_result(odd, tmp_path / "r.json")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", r"r\.json:1: invalid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"format": "other"}', "not a keff result"),
        ('{"format": "keff.result", "format_version": 9}', "unsupported format_version 9"),
        (
            '{"format": "keff.result", "format_version": 1, "system": "s", "dataset": "d", '
            '"metrics": {"ndcg@10": "high"}, "per_query": {}, "meta": {}}',
            r"metrics\['ndcg@10'\] must be a number",
        ),
        ('{"format": "keff.result", "format_version": 1, "system": 3}', "'system' must be a string"),
    ],
)
def test_malformed_files_name_the_file(tmp_path, content, message):
    path = tmp_path / "r.json"
    path.write_text(content)
    with pytest.raises(FormatError, match=message) as info:
        load_result(path)
    assert str(path) in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(KeffError, match="nope.json: cannot read"):
        load_result(tmp_path / "nope.json")


def test_markdown_table_has_every_system():
    results = [make_result("minilm", ndcg=0.64512), make_result("mpnet", ndcg=0.65569), make_result("a|b")]
    results[2].metrics = {"hit@1": 0.5}
    table = markdown_table(results, extra_columns={"p50 (us)": ["10", "20", "30"]})
    lines = table.strip().split("\n")
    assert lines[0] == "| system | dataset | ndcg@10 | mrr@10 | hit@1 | p50 (us) |"
    assert len(lines) == 2 + 3
    assert "| minilm | scifact/test | 0.6451 | 0.6000 | - | 10 |" in lines
    assert "| mpnet | scifact/test | 0.6557 | 0.6000 | - | 20 |" in lines
    assert "a\\|b" in lines[4]
    narrow = markdown_table(results[:2], ["ndcg@10"], digits=2)
    assert "| minilm | scifact/test | 0.65 |" in narrow and "mrr@10" not in narrow
    with pytest.raises(KeffError, match="2 values for 3 results"):
        markdown_table(results, extra_columns={"x": ["1", "2"]})


def test_comparison_markdown():
    c = PairedComparison("ndcg@10", "mpnet", "minilm", 300, 0.656, 0.645, 0.011, -0.002, 0.024, 0.08, 0.1, 0.16)
    text = comparison_markdown([c])
    assert "| ndcg@10 | mpnet | minilm | 300 | 0.6560 | 0.6450 | +0.0110 | 95% [-0.0020, +0.0240] | 0.0800 |" in text
    assert text.count("\n") == 3


def test_run_metadata_fields(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", types.SimpleNamespace(__version__="9.9.9"))
    meta = run_metadata(seed=3, encoders={"minilm": "abc"}, data_hashes={"corpus": "ff"}, note="x")
    assert meta["seed"] == 3 and meta["note"] == "x"
    assert meta["encoders"] == {"minilm": "abc"} and meta["data_hashes"] == {"corpus": "ff"}
    assert meta["command"] == sys.argv
    assert meta["versions"]["faiss"] == "9.9.9"
    assert {"numpy", "scipy", "ir_measures"} <= set(meta["versions"])
    assert meta["timestamp_utc"].endswith("+00:00")
    assert run_metadata(seed=None, command=["keff", "eval"])["command"] == ["keff", "eval"]
    json.dumps(meta)  # JSON-able as is
    with pytest.raises(KeffError, match="clash"):
        run_metadata(seed=0, python="2.7")


def test_run_metadata_never_imports_heavy_libraries():
    code = (
        "import sys; from keff.eval import run_metadata; m = run_metadata(seed=0); "
        "heavy = ['torch', 'sentence_transformers', 'onnxruntime', 'faiss', 'transformers']; "
        "print([h for h in heavy if h in sys.modules], [h for h in heavy if h in m['versions']])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] []"


def test_binary_and_deeply_nested_files_are_format_errors(tmp_path):
    # regression: binary garbage gave a UnicodeDecodeError traceback in `keff compare`
    (tmp_path / "bin.json").write_bytes(b"\x00\xe9\xff garbage")
    with pytest.raises(FormatError, match=r"bin\.json: not a keff result \(not UTF-8"):
        load_result(tmp_path / "bin.json")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(FormatError, match=r"deep\.json: not a keff result \(JSON nested too deeply\)"):
        load_result(tmp_path / "deep.json")
