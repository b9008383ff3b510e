import numpy as np
import pytest

import keff.eval.significance as sig
from keff.errors import KeffError
from keff.eval.significance import (
    PairedComparison,
    compare_systems,
    holm,
    paired_bootstrap_ci,
    randomization_test,
    wilcoxon_p,
)


@pytest.fixture
def scores():
    rng = np.random.default_rng(0)
    base = rng.random(300)
    better = np.clip(base + 0.1 + 0.05 * rng.standard_normal(300), 0, None)
    return base, better


def test_identical_systems(scores):
    base, _ = scores
    assert paired_bootstrap_ci(base, base.copy()) == (0.0, 0.0, 0.0)
    assert randomization_test(base, base.copy()) == 1.0
    assert wilcoxon_p(base, base.copy()) == 1.0


def test_clearly_better_system(scores):
    base, better = scores
    diff, low, high = paired_bootstrap_ci(better, base)
    assert diff == pytest.approx(np.mean(better - base))
    assert 0 < low < diff < high
    assert randomization_test(better, base) < 0.01
    assert wilcoxon_p(better, base) < 0.01


def test_randomization_matches_the_exact_sign_flip_distribution():
    # All 5 differences equal: only the all-plus and all-minus flips are as extreme -> p = 2/32.
    p = randomization_test([1.0] * 5, [0.0] * 5, n_resamples=40000, seed=3)
    assert p == pytest.approx(2 / 32, abs=0.005)


def test_bootstrap_interval_matches_the_normal_approximation():
    rng = np.random.default_rng(4)
    d = 0.1 + rng.standard_normal(2000)
    diff, low, high = paired_bootstrap_ci(d, np.zeros_like(d), n_resamples=4000)
    half = 1.96 * d.std(ddof=1) / np.sqrt(d.size)
    assert low == pytest.approx(diff - half, abs=0.1 * half)
    assert high == pytest.approx(diff + half, abs=0.1 * half)
    narrow = paired_bootstrap_ci(d, np.zeros_like(d), n_resamples=4000, confidence=0.5)
    assert narrow[2] - narrow[1] < high - low


def test_seed_determinism_and_chunk_independence(scores, monkeypatch):
    base, better = scores
    a = (paired_bootstrap_ci(better, base, seed=7), randomization_test(better[:20], base[:20], seed=7))
    assert a == (paired_bootstrap_ci(better, base, seed=7), randomization_test(better[:20], base[:20], seed=7))
    assert paired_bootstrap_ci(better, base, seed=8) != a[0]
    monkeypatch.setattr(sig, "_CHUNK_ELEMENTS", 300 * 13)  # many small chunks, same draws
    assert (paired_bootstrap_ci(better, base, seed=7), randomization_test(better[:20], base[:20], seed=7)) == a


def test_holm_hand_computed():
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.02, 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == [1.0, 1.0]
    assert holm([0.2]) == [0.2]
    assert holm([]) == []
    with pytest.raises(KeffError, match=r"\[0, 1\]"):
        holm([0.1, 1.5])


def test_input_validation():
    with pytest.raises(KeffError, match="one length"):
        randomization_test([1.0, 2.0], [1.0])
    with pytest.raises(KeffError, match="empty"):
        paired_bootstrap_ci([], [])
    with pytest.raises(KeffError, match="finite"):
        wilcoxon_p([np.nan], [1.0])
    with pytest.raises(KeffError, match="confidence"):
        paired_bootstrap_ci([1.0], [0.0], confidence=1.0)
    with pytest.raises(KeffError, match="n_resamples"):
        randomization_test([1.0], [0.0], n_resamples=0)


def test_compare_systems(scores):
    base, better = scores
    qids = [f"q{i}" for i in range(base.size)]
    per_query = {
        "base": dict(zip(qids, base)),
        "better": dict(zip(qids, better)),
        "same": {q: v for q, v in reversed(list(zip(qids, base)))},  # order must not matter
    }
    out = compare_systems(per_query, "base", metric="ndcg@10", n_resamples=2000)
    assert [c.system for c in out] == ["better", "same"]
    better_c, same_c = out
    assert isinstance(better_c, PairedComparison)
    assert (better_c.metric, better_c.baseline, better_c.n) == ("ndcg@10", "base", 300)
    assert better_c.diff == pytest.approx(better_c.mean_system - better_c.mean_baseline)
    assert better_c.ci_low > 0 and better_c.p_randomization < 0.01
    assert same_c.diff == 0.0 and same_c.p_randomization == 1.0
    assert [c.p_holm for c in out] == pytest.approx(holm([c.p_randomization for c in out]))


def test_compare_systems_errors(scores):
    base, _ = scores
    full = {f"q{i}": v for i, v in enumerate(base)}
    partial = {q: v for q, v in list(full.items())[:-3]}
    with pytest.raises(KeffError, match=r"'short' lacks 3 of the baseline's 300 queries.*'q297'"):
        compare_systems({"base": full, "short": partial}, "base", metric="ndcg@10")
    with pytest.raises(KeffError, match="baseline 'nope'"):
        compare_systems({"base": full}, "nope", metric="ndcg@10")
    with pytest.raises(KeffError, match="only the baseline"):
        compare_systems({"base": full}, "base", metric="ndcg@10")


def test_gap_closed_is_the_share_of_the_old_to_new_gap():
    from keff.eval.significance import gap_closed

    rng = np.random.default_rng(0)
    old = rng.random(400)
    new = old + 0.2 + 0.05 * rng.standard_normal(400)
    half = old + 0.1 + 0.05 * rng.standard_normal(400)
    g, lo, hi = gap_closed(half, old, new, seed=1)
    assert g == pytest.approx((half - old).mean() / (new - old).mean())
    assert lo < g < hi and 0.4 < lo and hi < 0.6
    assert gap_closed(new, old, new)[0] == pytest.approx(1.0)
    worse, _, whi = gap_closed(old - 0.1, old, new)
    assert worse < 0 and whi < 0
    with pytest.raises(KeffError, match="not better"):
        gap_closed(half, new, old)
    with pytest.raises(KeffError, match="length"):
        gap_closed(half[:10], old, new)


def test_gap_closed_interval_stays_finite_and_ordered_when_resamples_lose_the_gap():
    from keff.eval.significance import gap_closed

    rng = np.random.default_rng(2)
    old = rng.random(30)
    new = old + 0.01 + 0.2 * rng.standard_normal(30)  # a tiny, noisy gap: some resamples reverse it
    new += 0.02 - (new - old).mean()
    g, lo, hi = gap_closed(old + 0.01, old, new, n_resamples=2000)
    assert lo <= g <= hi
