"""The upgrade study end to end on a tiny real-format data folder (hash encoder, seconds)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from keff.cli.demo_cmd import sample_corpus_dir
from keff.errors import KeffError
from keff.studies.upgrade import UpgradeConfig, experiment, run

from .conftest import load_script

WORDS = "fever cough rash pain joint liver kidney heart lung blood sugar bone skin nerve eye ear".split()
TINY = UpgradeConfig(
    pairs=(("hash", "hash"),),
    corpora=("sample", "medquad"),
    anchors=(12, 100),  # 100 is more than either pool holds: skipped
    seeds=(0,),
    rank=8,
    medquad_groups=8,
    medquad_anchor_pool=30,
    latency_corpus="sample",
    latency_anchors=12,
    latency_batch=32,
    latency_repeats=2,
)


def scrambled(text: str) -> str:
    return " ".join(reversed(text.split())) + " scrambled words only"


def write_medquad(path: Path, *, scramble: bool) -> None:
    """50 MedQuAD-like documents (source, doc), each with two questions and their answers."""
    rng = np.random.default_rng(7)
    lines = []
    for g in range(50):
        topic = " ".join(rng.choice(WORDS, size=4))
        for j in range(2):
            question = f"what treats {topic} case {j}"
            lines.append(
                {
                    "id": f"{g}-{j}",
                    "question": scrambled(question) if scramble else question,
                    "answer": f"{topic} is treated with {' '.join(rng.choice(WORDS, size=6))} ({g}.{j})",
                    "source": "S",
                    "doc": f"{g:04d}",
                    "focus": topic,
                }
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")


def write_data(root: Path, *, scramble: bool = False) -> Path:
    """A data folder: the shipped sample as ``beir/sample`` and a MedQuAD-like ``qa/medquad.jsonl``;
    with ``scramble`` every evaluation query text is replaced."""
    beir = shutil.copytree(sample_corpus_dir(), root / "beir" / "sample")
    if scramble:
        queries = [json.loads(line) for line in (beir / "queries.jsonl").read_text().splitlines()]
        lines = [json.dumps({**q, "text": scrambled(q["text"])}) + "\n" for q in queries]
        (beir / "queries.jsonl").write_text("".join(lines))
    write_medquad(root / "qa" / "medquad.jsonl", scramble=scramble)
    return root


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KEFF_CACHE_DIR", str(tmp_path / "cache"))


def run_recording_fits(data: Path) -> tuple[dict, list[tuple[str, dict]]]:
    """The study's results on ``data``, and every map it fitted, in order: (kind, fitted state)."""
    fits, fit = [], experiment.fit_map

    def recording_fit(kind, params, X, Y):
        m = fit(kind, params, X, Y)
        fits.append((kind, m.get_state()))
        return m

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(experiment, "fit_map", recording_fit)
        return run(TINY, data=data), fits


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """One run of the tiny configuration (shared: the study takes seconds, not milliseconds)."""
    root = tmp_path_factory.mktemp("upgrade")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KEFF_CACHE_DIR", str(root / "cache"))
        return run_recording_fits(write_data(root / "data"))


def test_results_have_what_render_reads(tiny):
    results, _ = tiny
    assert {"benchmark", "meta", "config", "notes", "baselines", "summary", "comparisons", "latency", "rows"} <= set(
        results
    )
    assert set(results["notes"]) == {"sample", "medquad"}
    assert results["notes"]["sample"].startswith("sample test: 24 queries")
    assert len(results["baselines"]) == 2 and len(results["latency"]) == 2 * len(TINY.maps)
    for lat in results["latency"]:
        for part in ("own_shapes", "dense"):
            keys = ("batch_map_us", "batch_plain_us", "single_map_p50_us", "single_plain_p50_us")
            assert set(lat[part]) == {*keys, "batch_ratio", "single_ratio"}
    summary = {(s["corpus"], s["condition"], s["map"], s["n_anchors"]) for s in results["summary"]}
    assert summary == {(c, cond, m, 12) for c in TINY.corpora for cond in "cde" for m in TINY.maps}
    json.dumps(results)  # JSON-ready
    text = load_script("render").render_upgrade({**results, "plot": "upgrade.png"})
    assert "### sample: hash -> hash" in text and "Added query latency" in text


def test_maps_are_fitted_on_anchors_only(tiny, tmp_path):
    first, maps_first = tiny
    second, maps_second = run_recording_fits(write_data(tmp_path / "scrambled", scramble=True))
    assert [b["ndcg_a"] for b in first["baselines"]] != [b["ndcg_a"] for b in second["baselines"]]  # queries changed
    assert len(maps_second) == len(maps_first) == len(TINY.corpora) * len(TINY.maps) * 2
    for (kind, state), (kind_again, state_again) in zip(maps_first, maps_second):
        assert kind == kind_again and state.keys() == state_again.keys()
        for name in state:
            np.testing.assert_array_equal(state[name], state_again[name], err_msg=f"{kind} {name}")


def test_quick_resolves_seeds_and_anchors():
    quick = UpgradeConfig(quick=True).resolved()
    assert quick.seeds == (0,) and quick.anchors == (100, 1000)
    assert UpgradeConfig().resolved() == UpgradeConfig()


def test_config_refuses_an_unknown_map_and_unmeasurable_latency(tmp_path):
    with pytest.raises(KeffError, match="maps must be among"):
        UpgradeConfig(maps=("procrustes", "chain"))
    with pytest.raises(KeffError, match="latency_anchors 1000 must be one of the anchors"):
        run(UpgradeConfig(anchors=(10,), corpora=("sample",), latency_corpus="sample"), data=tmp_path)


def test_driver_defaults_are_the_config_defaults():
    driver = load_script("upgrade")
    assert driver.config_of(driver.parse_args([])) == UpgradeConfig()


def test_driver_writes_results_and_figure_then_remeasures_latency(tmp_path):
    driver = load_script("upgrade")
    data, out = write_data(tmp_path / "data"), tmp_path / "out" / "u.json"
    args = ["--data", str(data), "--pairs", "hash:hash", "--corpora", "sample", "--maps", "procrustes,lowrank"]
    args += ["--anchors", "10,30", "--seeds", "0", "--rank", "4", "--latency-corpus", "sample"]
    args += ["--latency-anchors", "10", "--latency-batch", "16", "--latency-repeats", "2", "--out", str(out)]
    assert driver.main(args) == 0
    written = json.loads(out.read_text())
    assert written["plot"] == "u.png" and (out.parent / "u.png").stat().st_size > 0
    assert driver.main([*args, "--latency-only"]) == 0
    again = json.loads(out.read_text())
    assert "latency_meta" in again
    assert {k: v for k, v in again.items() if k not in ("latency", "latency_meta")} == {
        k: v for k, v in written.items() if k != "latency"
    }

    def timed(results):
        return [(x["condition"], x["map"]) for x in results["latency"]]

    expected = [(cond, kind) for cond in ("c", "d") for kind in ("lowrank", "procrustes")]
    assert timed(again) == timed(written) == expected


def test_generic_anchors_come_from_the_other_corpora(tmp_path):
    from keff.studies.upgrade.corpora import build_corpus, generic_pool

    data = write_data(tmp_path / "data")
    pool, note = generic_pool(data, "sample", 40, seed=0)
    medquad_answers = {json.loads(line)["answer"] for line in (data / "qa" / "medquad.jsonl").read_text().splitlines()}
    assert len(pool) == 40 and set(pool) <= medquad_answers  # the only other corpus present
    assert "40 medquad" in note and "absent: wikitext, skills, scifact" in note
    corpus = build_corpus("sample", data, UpgradeConfig(anchor_source="generic", generic_pool=40))
    assert corpus.anchor_pool == pool and "generic anchors" in corpus.note
    with pytest.raises(KeffError, match="no generic anchor source"):
        generic_pool(data, "medquad", 40, seed=0)  # excluding the only one
    with pytest.raises(KeffError, match="anchor_source"):
        UpgradeConfig(anchor_source="web")


def write_skills(path: Path) -> None:
    """30 skills-like groups, each two paraphrased questions with tailored answers."""
    lines = [
        {"pair_id": f"s{g}_q{j}", "cluster_id": f"s{g}", "question": f"how do I use skill {WORDS[g % 16]} {g} ({j})",
         "answer": f"use skill {g} like this {j}", "original_answer": f"use skill {g}"}
        for g in range(30) for j in range(2)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")


def test_question_anchors_come_from_the_other_qa_corpora(tmp_path):
    from keff.studies.upgrade.corpora import build_corpus, generic_pool

    data = write_data(tmp_path / "data")
    medquad_questions = {json.loads(x)["question"] for x in (data / "qa" / "medquad.jsonl").read_text().splitlines()}
    pool, note = generic_pool(data, "sample", 40, seed=0, questions=True)
    assert len(pool) == 40 and set(pool) <= medquad_questions
    assert "40 generic question anchors (40 medquad; absent: skills" in note
    write_skills(data / "qa" / "skills_qa.jsonl")
    corpus = build_corpus("sample", data, UpgradeConfig(anchor_source="generic-questions", generic_pool=110))
    skills_questions = {json.loads(x)["question"] for x in (data / "qa" / "skills_qa.jsonl").read_text().splitlines()}
    assert corpus.anchor_kind == "query" and len(corpus.anchor_pool) == 110
    assert set(corpus.anchor_pool) <= medquad_questions | skills_questions
    assert set(corpus.anchor_pool) & skills_questions  # both sources drawn
    with pytest.raises(KeffError, match="no generic question source"):
        generic_pool(data / "beir", "sample", 40, seed=0, questions=True)


def test_skills_corpus_draws_anchors_from_groups_not_evaluated(tmp_path):
    from keff.studies.upgrade.corpora import build_corpus

    data = write_data(tmp_path / "data")
    write_skills(data / "qa" / "skills_qa.jsonl")
    corpus = build_corpus("skills", data, UpgradeConfig(skills_groups=10))
    assert len(corpus.task.query_ids) == 20 and len(corpus.task.doc_ids) == 20
    evaluated = {t.split("skill ")[1].split()[0] for t in corpus.task.doc_texts}
    anchored = {t.split("skill ")[1].split()[0] for t in corpus.anchor_pool}
    assert len(anchored) == 20 and not evaluated & anchored and corpus.anchor_kind == "doc"
    assert corpus.note.startswith("Skills Q/A seeded sample: 10 of 30 groups")


def test_hybrid_weight_follows_the_new_models_neighbours():
    rng = np.random.default_rng(0)
    old, new = rng.standard_normal((200, 16)), rng.standard_normal((200, 16))
    w, recalls = experiment.choose_hybrid_weight(old, new, mapped=new)  # a perfect map: all weight to it
    assert w == 0.0 and recalls[0] == pytest.approx(1.0) and len(recalls) == len(experiment.HYBRID_WEIGHTS)
    w_old, _ = experiment.choose_hybrid_weight(old, old, mapped=rng.standard_normal((200, 16)))
    assert w_old == 1.0  # the "new" model is the old one: a useless map gets no weight


def test_gap_rows_say_share_closed_and_regression():
    qs = [f"q{i}" for i in range(100)]
    rng = np.random.default_rng(0)
    a = rng.random(100)
    per_query = {"a": dict(zip(qs, a)), "b": dict(zip(qs, a + 0.2)), "d/procrustes/1000": dict(zip(qs, a + 0.1)),
                 "c/procrustes/1000": dict(zip(qs, a - 0.1))}  # fmt: skip
    rows = {g["condition"]: g for g in experiment.pair_gaps(per_query, {"corpus": "x", "old": "o", "new": "n"})}
    assert rows["d"]["gap_closed"] == pytest.approx(0.5) and not rows["d"]["regression"]
    assert rows["c"]["gap_closed"] == pytest.approx(-0.5) and rows["c"]["regression"]
    assert rows["d"]["n_anchors"] == 1000 and rows["d"]["map"] == "procrustes"


def test_gap_report_renders_every_part(tiny, tmp_path):
    from keff.studies.upgrade import plot_gap

    results, _ = tiny
    assert {g["condition"] for g in results["gaps"]} == set("cde")  # too few anchors left for (h)
    assert all(g["gap_closed"] is None for g in results["gaps"])  # hash -> hash: no gap to close
    gap = {"benchmark": "upgrade_gap", "meta": results["meta"], "parts": [{"part": "generic", **results}],
           "plot": "upgrade_gap.png"}  # fmt: skip
    text = load_script("render").render_upgrade_gap(gap)
    assert "### generic:" in text and "#### sample: hash -> hash" in text and "| d | procrustes | 12 |" in text
    assert plot_gap(gap, tmp_path / "gap.png").stat().st_size > 0


def test_gap_plot_draws_unbounded_and_far_out_intervals(tmp_path):
    from keff.studies.upgrade import plot_gap

    def gap(cond, n, value, lo, hi):
        return {"corpus": "s", "old": "o", "new": "/models/n", "condition": cond, "map": "m", "n_anchors": n,
                "gap_closed": value, "gap_ci": [lo, hi]}  # fmt: skip

    gaps = [gap("c", 1000, -2.5, -np.inf, -1.9), gap("c", 3000, 0.5, 0.2, np.inf), gap("d", 10, -3, -4, -2.2)]
    parts = [{"gaps": gaps}]
    assert plot_gap({"parts": parts}, tmp_path / "gap.png").stat().st_size > 0


def test_a_map_variant_fits_its_registry_kind_with_its_own_settings():
    params = experiment.study_params("mlp-affine", rank=8, seed=3)
    assert params == {"hidden": 512, "base": "linear", "epochs": 40, "patience": 3, "batch_size": 512, "seed": 3}
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 6))
    m = experiment.fit_map("procrustes", experiment.study_params("procrustes", 8, 0), X, X)
    assert type(m).__name__ == "Procrustes" and experiment.map_kind("mlp-affine") == "mlp"
