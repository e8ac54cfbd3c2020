"""Ranking and click metrics of a retrained model on the holdout. The standard ones come from scikit-learn.

``ranking_metrics`` calls :func:`sklearn.metrics.ndcg_score` once per distinct query
group size (queries of equal size stacked into one matrix) instead of once per query;
``tests/test_bench_metrics.py`` checks it equals the per-query computation
(:func:`ranking_metrics_per_query`, ties included) and ``benchmarks/metrics.py``
measures the speed-up.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, ndcg_score, roc_auc_score

RELEVANT_GRADE = 2  # MRR counts the first item graded >= 2 (ESCI Exact or Substitute)
QUERY_NDCG = "query_ndcg_at_10"  # a cell's NDCG@10 of one held-out query (row subset = the query text)


def _grouped(groups: np.ndarray, *columns: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Sort rows by group (stable); return (starts, sizes, sorted columns)."""
    codes = pd.factorize(np.asarray(groups))[0]
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]) if len(codes) else np.zeros(0, int)
    sizes = np.diff(np.r_[starts, len(codes)])
    return starts, sizes, [np.asarray(c)[order] for c in columns]


def ranking_metrics(groups: np.ndarray, grades: np.ndarray, scores: np.ndarray, k: int = 10) -> dict[str, float]:
    """Mean NDCG@k and MRR over query groups with at least two items and one graded > 0."""
    starts, sizes, (y_all, s_all) = _grouped(groups, np.asarray(grades, dtype=float), np.asarray(scores, dtype=float))
    ndcg_sum, rr_sum, n_eval = 0.0, 0.0, 0
    for size in np.unique(sizes):
        if size < 2:
            continue
        first = starts[sizes == size]
        idx = first[:, None] + np.arange(size)[None, :]
        y, s = y_all[idx], s_all[idx]
        keep = y.max(axis=1) > 0
        if not keep.any():
            continue
        y, s = y[keep], s[keep]
        ndcg_sum += float(ndcg_score(y, s, k=k)) * len(y)
        order = np.argsort(-s, axis=1, kind="stable")
        hit = np.take_along_axis(y, order, axis=1) >= RELEVANT_GRADE
        has = hit.any(axis=1)
        rr_sum += float(np.where(has, 1.0 / (hit.argmax(axis=1) + 1), 0.0).sum())
        n_eval += len(y)
    if not n_eval:
        raise ValueError("no evaluable query groups in the holdout")
    return {f"ndcg_at_{k}": ndcg_sum / n_eval, "mrr": rr_sum / n_eval, "n_queries": float(n_eval)}


def ranking_metrics_per_query(
    groups: np.ndarray, grades: np.ndarray, scores: np.ndarray, k: int = 10
) -> dict[str, float]:
    """Reference for :func:`ranking_metrics`: one sklearn ``ndcg_score`` call per query group."""
    frame = pd.DataFrame({"g": groups, "y": grades, "s": scores})
    ndcgs, rrs = [], []
    for _, part in frame.groupby("g", sort=False):
        if len(part) < 2 or part["y"].max() <= 0:
            continue
        y = part["y"].to_numpy(dtype=float)[None, :]
        s = part["s"].to_numpy(dtype=float)[None, :]
        ndcgs.append(ndcg_score(y, s, k=k))
        order = np.argsort(-s[0], kind="stable")
        hits = np.nonzero(y[0][order] >= RELEVANT_GRADE)[0]
        rrs.append(1.0 / (hits[0] + 1) if len(hits) else 0.0)
    if not ndcgs:
        raise ValueError("no evaluable query groups in the holdout")
    return {f"ndcg_at_{k}": float(np.mean(ndcgs)), "mrr": float(np.mean(rrs)), "n_queries": float(len(ndcgs))}


def per_query_ndcg(queries: np.ndarray, grades: np.ndarray, scores: np.ndarray, k: int = 10) -> dict[str, float]:
    """NDCG@k of every evaluable held-out query (the groups :func:`ranking_metrics` averages), by query text."""
    frame = pd.DataFrame({"q": np.asarray(queries), "y": np.asarray(grades, float), "s": np.asarray(scores, float)})
    out = {}
    for query, part in frame.groupby("q", sort=True):
        if len(part) >= 2 and part["y"].max() > 0:
            out[str(query)] = float(ndcg_score(part["y"].to_numpy()[None, :], part["s"].to_numpy()[None, :], k=k))
    return out


def click_metrics(clicks: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    """AUC and log loss of predicted click probabilities on held-out clicks."""
    out: dict[str, float] = {}
    if len(clicks) == 0:
        return out
    prob = 1.0 / (1.0 + np.exp(-np.clip(logits, -30, 30)))
    if 0 < clicks.sum() < len(clicks):
        out["click_auc"] = float(roc_auc_score(clicks, prob))
    out["click_logloss"] = float(log_loss(clicks, np.clip(prob, 1e-7, 1 - 1e-7), labels=[0, 1]))
    return out
