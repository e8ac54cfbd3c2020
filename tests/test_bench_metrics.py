import numpy as np
import pytest

from sie.bench.metrics import click_metrics, ranking_metrics
from sie.bench.select import random_mask, top_k_mask


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
