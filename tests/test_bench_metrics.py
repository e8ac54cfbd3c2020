import numpy as np
import pytest

from sie.selection.masks import random_mask, top_k_mask
from sie.selection.metrics import click_metrics, ranking_metrics, ranking_metrics_per_query


def test_ndcg_perfect_and_reversed():
    groups = np.array([0, 0, 0, 1, 1, 1])
    grades = np.array([3, 1, 0, 2, 0, 0])
    perfect = ranking_metrics(groups, grades, grades.astype(float))
    assert perfect["ndcg_at_10"] == pytest.approx(1.0)
    assert perfect["mrr"] == pytest.approx(1.0)
    reversed_ = ranking_metrics(groups, grades, -grades.astype(float))
    assert reversed_["ndcg_at_10"] < 0.7
    assert reversed_["mrr"] == pytest.approx(1 / 3)


def test_ndcg_matches_hand_computation():
    # one query: scores rank items [b, a, c]; grades a=3, b=1, c=0
    m = ranking_metrics(np.zeros(3), np.array([3, 1, 0]), np.array([0.5, 0.9, 0.1]))
    dcg = 1 / np.log2(2) + 3 / np.log2(3)
    idcg = 3 / np.log2(2) + 1 / np.log2(3)
    assert m["ndcg_at_10"] == pytest.approx(dcg / idcg)


def test_click_metrics():
    m = click_metrics(np.array([0, 1, 0, 1]), np.array([-2.0, 2.0, -1.0, 1.0]))
    assert m["click_auc"] == pytest.approx(1.0)
    assert 0 < m["click_logloss"] < 0.5


def test_top_k_mask_keeps_highest():
    scores = np.array([0.1, 0.9, 0.5, 0.7])
    assert top_k_mask(scores, 0.5).tolist() == [False, True, False, True]
    assert top_k_mask(scores, 1.0).all()
    assert random_mask(1000, 0.3, seed=1).sum() == 300
    with pytest.raises(ValueError):
        top_k_mask(scores, 0.0)


# ---- ranking_metrics: equal to the per-query sklearn computation ----------------------
# (its speed-up over the per-query loop is measured by benchmarks/metrics.py)


def _random_holdout(n_groups, seed, ties=True):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 25, size=n_groups)
    groups = np.repeat([f"q{i}" for i in range(n_groups)], sizes)
    rng.shuffle(groups)  # groups need not be contiguous
    grades = rng.integers(0, 4, size=len(groups)) * (rng.random(len(groups)) < 0.6)
    scores = rng.integers(0, 5, size=len(groups)).astype(float) if ties else rng.normal(size=len(groups))
    return groups, grades, scores


@pytest.mark.parametrize("ties", [True, False])
def test_ranking_metrics_equal_per_query_reference(ties):
    groups, grades, scores = _random_holdout(300, seed=3, ties=ties)
    got = ranking_metrics(groups, grades, scores)
    want = ranking_metrics_per_query(groups, grades, scores)
    assert got["n_queries"] == want["n_queries"]
    assert got["ndcg_at_10"] == pytest.approx(want["ndcg_at_10"], abs=1e-12)
    assert got["mrr"] == pytest.approx(want["mrr"], abs=1e-12)


def test_ranking_metrics_needs_an_evaluable_group():
    with pytest.raises(ValueError):
        ranking_metrics(np.array([0, 1]), np.array([1, 1]), np.array([0.1, 0.2]))


# ---- noise detection, statistics, stratified selection ---------------------------------


def test_noise_detection_low_scores_flag_noise():
    from sie.bench.metrics import noise_detection

    is_noise = np.array([1, 1, 0, 0, 0, 0], dtype=bool)
    perfect = noise_detection(np.array([0.1, 0.2, 0.5, 0.6, 0.7, 0.9]), is_noise, roc_points=11)
    assert perfect["auroc"] == pytest.approx(1.0) and perfect["ap"] == pytest.approx(1.0)
    assert perfect["tpr"][0] == pytest.approx(1.0) and len(perfect["fpr"]) == 11
    inverted = noise_detection(np.array([0.9, 0.8, 0.5, 0.4, 0.3, 0.1]), is_noise)
    assert inverted["auroc"] == pytest.approx(0.0)
    rng = np.random.default_rng(0)
    y = rng.random(20000) < 0.2
    chance = noise_detection(rng.random(20000), y)
    assert chance["auroc"] == pytest.approx(0.5, abs=0.02) and chance["ap"] == pytest.approx(0.2, abs=0.02)
    assert np.all(np.diff(chance["tpr"]) >= 0) and chance["tpr"][-1] == 1.0
    assert np.isnan(noise_detection(np.ones(3), np.zeros(3, bool))["auroc"])


def test_mean_ci_and_paired_comparison():
    from scipy import stats

    from sie.bench.metrics import holm, mean_ci, paired_comparison

    mean, half, n = mean_ci([1.0, 2.0, 3.0])
    assert (mean, n) == (2.0, 3) and half == pytest.approx(stats.t.ppf(0.975, 2) * 1.0 / np.sqrt(3))
    assert np.isnan(mean_ci([1.0])[1])
    a, b = np.array([0.70, 0.72, 0.71, 0.73]), np.array([0.60, 0.61, 0.605, 0.62])
    comp = paired_comparison(a, b)
    assert comp["diff"] == pytest.approx((a - b).mean())
    assert comp["p_value"] == pytest.approx(stats.ttest_rel(a, b).pvalue) and comp["p_value"] < 0.05
    assert paired_comparison(a, a)["p_value"] == 1.0
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, np.nan]), [0.03, 0.06, 0.06, np.nan])


def test_stratified_mask_keeps_the_ratio_within_every_stratum():
    from sie.selection.masks import selection_mask, stratified_mask

    strata = np.repeat(["a", "b", "c", "d"], [100, 40, 7, 3])
    mask = stratified_mask(strata, 0.3, seed=1)
    assert mask.sum() == int(np.ceil(0.3 * len(strata)))
    for s, n in (("a", 100), ("b", 40), ("c", 7), ("d", 3)):
        assert abs(mask[strata == s].sum() - 0.3 * n) < 1.0 + 1e-9
    assert not np.array_equal(mask, stratified_mask(strata, 0.3, seed=2))
    assert selection_mask("full", 0.3, 0, n=5).all()
    assert selection_mask("random", 0.4, 0, n=10).sum() == 4
    assert selection_mask("loss", 0.5, 0, n=4, scores=np.array([4.0, 3, 2, 1])).tolist() == [True, True, False, False]
    with pytest.raises(ValueError):
        selection_mask("loss", 0.5, 0, n=4)


def test_per_query_ndcg_averages_to_ranking_metrics():
    from sie.selection.metrics import per_query_ndcg

    rng = np.random.default_rng(3)
    queries = np.repeat([f"q{i}" for i in range(12)], 7)
    grades, scores = rng.integers(0, 4, len(queries)), rng.random(len(queries))
    grades[:7] = 0  # a query without relevant items is not evaluable in either
    per_query = per_query_ndcg(queries, grades, scores)
    assert len(per_query) == 11 and "q0" not in per_query
    assert np.mean(list(per_query.values())) == pytest.approx(ranking_metrics(queries, grades, scores)["ndcg_at_10"])


def test_min_detectable_difference_is_the_paired_power_formula():
    from scipy import stats

    from sie.bench.metrics import min_detectable_difference

    d = np.random.default_rng(0).normal(0.01, 0.05, 150)
    out = min_detectable_difference(d, alpha=0.05, power=0.8)
    z = stats.norm.ppf(0.975) + stats.norm.ppf(0.8)  # 1.960 + 0.842
    assert out["mde"] == pytest.approx(z * d.std(ddof=1) / np.sqrt(150))
    assert out["p_value"] == pytest.approx(stats.ttest_1samp(d, 0).pvalue) and out["n"] == 150
    # four times the queries halve it; more power or a stricter alpha raise it
    assert min_detectable_difference(np.tile(d, 4))["mde"] == pytest.approx(out["mde"] / 2, rel=0.01)
    assert min_detectable_difference(d, power=0.9)["mde"] > out["mde"]
    assert min_detectable_difference(d, alpha=0.01)["mde"] > out["mde"]
    assert np.isnan(min_detectable_difference(d[:1])["mde"])


def test_clean_click_metrics_drop_the_oracle_noise():
    """Clean-click metrics = the raw ones without noise; without the noisy clicks they differ."""
    from sie.selection.retrain import held_out_click_metrics

    rng = np.random.default_rng(1)
    n = 400
    relevant = rng.random(n) < 0.3
    noise = rng.random(n) < 0.3  # noisy impressions click at random
    clicks = np.where(noise, rng.random(n) < 0.5, relevant).astype(np.float32)
    logits = np.where(relevant, 1.0, -1.0) + rng.normal(0, 0.5, n)

    raw = held_out_click_metrics(clicks, logits, None)  # no oracle (real logs): raw metrics only
    assert set(raw) == {"click_auc", "click_logloss"}
    none = held_out_click_metrics(clicks, logits, np.zeros(n, bool))
    assert none == raw | {"clean_click_auc": raw["click_auc"], "clean_click_logloss": raw["click_logloss"]}
    some = held_out_click_metrics(clicks, logits, noise)
    assert some["click_auc"] == raw["click_auc"] and some["clean_click_auc"] > raw["click_auc"] + 0.1
    assert some["clean_click_auc"] == pytest.approx(click_metrics(clicks[~noise], logits[~noise])["click_auc"])
