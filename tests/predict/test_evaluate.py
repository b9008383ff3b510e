"""evaluate_sequences: held-out documents only, leaky windows dropped, every row tested against
every baseline, order gates reported."""

from __future__ import annotations

import numpy as np
import pytest

from keff.data.sequences import Sequences
from keff.predict.evaluate import VERSUS, choose_cosine_weight, evaluate_sequences
from keff.predict.protocol import score_predictions
from keff.predict.windows import make_windows

pytest.importorskip("torch", reason="trained predictors train with torch: pip install 'keff[st]'")


def planted(n_docs=40, length=8, d=8, seed=0):
    """Documents whose unit vectors follow a fixed rotation; one unit text repeats across documents."""
    rng = np.random.default_rng(seed)
    R = np.linalg.qr(rng.standard_normal((d, d)))[0]
    units, V = [], []
    for i in range(n_docs):
        x = rng.standard_normal(d)
        units.append([f"doc {i} unit {t}" for t in range(length)])
        for _ in range(length):
            V.append(x / np.linalg.norm(x))
            x = x @ R + 0.05 * rng.standard_normal(d)
    for i in range(n_docs):  # the same text in every document: windows touching it across the split are leaks
        units[i][6] = "a boilerplate line"
    return Sequences("planted", "sentence", [f"d{i}" for i in range(n_docs)], units), np.array(V, np.float32)


def test_rows_are_tested_against_every_baseline_and_leaks_are_dropped():
    seq, V = planted()
    res = evaluate_sequences(seq, V, k=2, models={"t": {"kind": "transition", "hidden": 4, "epochs": 3}}, seed=0)
    baselines = [n for n in res["rows"] if n != "t"]
    assert len(baselines) == 5 and res["best_baseline"] in baselines
    assert res["repeated_units"] == 1 and all(v > 0 for v in res["dropped_leaky_windows"].values())
    for row in res["rows"].values():
        assert set(row["versus"]) == set(baselines)
        for versus in row["versus"].values():
            assert set(versus) == set(VERSUS) and all(0 <= v["p"] <= 1 for v in versus.values())
    # ridge learns the planted rotation: it beats copy-last, significantly
    ridge = next(n for n in baselines if n.startswith("ridge"))
    assert res["rows"][ridge]["versus"]["copy-last"]["hit@5"]["diff"] > 0
    assert res["rows"][ridge]["versus"]["copy-last"]["cosine"]["p"] < 0.05
    gate = res["gates"]["t"]
    assert set(gate["offsets"]) == {"+1", "+2", "-1", "-2"} and gate["parameters"] > 0
    assert res["pool_units"] == res["documents"]["test"] * len(seq.units[0])  # every unit of the test documents


def test_cosine_weight_is_chosen_on_validation_by_the_floor():
    seq, V = planted(n_docs=30)
    texts, doc, pos = seq.flat()
    doc, pos = np.array(doc), np.array(pos)
    train = make_windows(V, doc, pos, 2, np.arange(20))
    val = make_windows(V, doc, pos, 2, np.arange(20, 30))

    def val_scores(m):
        return score_predictions(m.predict(val.contexts), val, V, doc, np.arange(20, 30))

    params = {"kind": "transition", "hidden": 4, "epochs": 3, "cosine_weight": [0.0, 30.0]}
    loose = choose_cosine_weight(params, train, val_scores, floor=-1.0, seed=0)
    assert loose["qualified"] and [t["cosine_weight"] for t in loose["tried"]] == [0.0, 30.0]
    best = max(loose["tried"], key=lambda t: t["hit@5"])
    assert loose["chosen"] == best["cosine_weight"]
    strict = choose_cosine_weight(params, train, val_scores, floor=2.0, seed=0)  # no cosine reaches 2
    assert not strict["qualified"]
    assert strict["chosen"] == max(strict["tried"], key=lambda t: t["cosine"])["cosine_weight"]
