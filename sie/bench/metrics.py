"""Ranking and click metrics. Standard ones come from scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, ndcg_score, roc_auc_score

RELEVANT_GRADE = 2  # MRR counts the first item graded >= 2 (ESCI Exact or Substitute)


def ranking_metrics(groups: np.ndarray, grades: np.ndarray, scores: np.ndarray, k: int = 10) -> dict[str, float]:
    """Mean NDCG@k and MRR over query groups with at least two items and one graded > 0."""
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
