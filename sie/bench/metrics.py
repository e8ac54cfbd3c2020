"""Benchmark statistics: noise detection against the oracle, confidence intervals, paired tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve


def noise_detection(scores: np.ndarray, is_noise: np.ndarray, roc_points: int = 51) -> dict:
    """How well *low* importance flags injected noise: AUROC, AP and the ROC curve.

    The detector's score is ``-importance`` (higher importance = more valuable, so noise
    should score low). The ROC curve is returned at ``roc_points`` evenly spaced false
    positive rates, as the highest TPR reachable at or below each FPR (step function).
    """
    y = np.asarray(is_noise, dtype=bool)
    detector = -np.asarray(scores, dtype=np.float64)
    out: dict = {"noise_rate": float(y.mean()) if len(y) else float("nan"), "n": int(len(y))}
    if y.all() or not y.any():
        out.update(auroc=float("nan"), ap=float("nan"), fpr=np.zeros(0), tpr=np.zeros(0))
        return out
    out["auroc"] = float(roc_auc_score(y, detector))
    out["ap"] = float(average_precision_score(y, detector))
    fpr, tpr, _ = roc_curve(y, detector)
    grid = np.linspace(0.0, 1.0, roc_points)
    out["fpr"] = grid
    out["tpr"] = tpr[np.searchsorted(fpr, grid, side="right") - 1]
    return out


def rank_percentile(scores: np.ndarray) -> np.ndarray:
    """Each score's percentile in [0, 1] among all scores (ties get their mean rank)."""
    ranks = pd.Series(np.asarray(scores, dtype=np.float64)).rank(method="average").to_numpy()
    return (ranks - 1) / max(len(ranks) - 1, 1)


# ---- statistics over seeds -----------------------------------------------------


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float, int]:
    """(mean, half width of the Student-t confidence interval, n); half width NaN when n < 2."""
    from scipy import stats

    v = np.asarray([x for x in values if np.isfinite(x)], dtype=np.float64)
    n = len(v)
    if n == 0:
        return float("nan"), float("nan"), 0
    if n < 2:
        return float(v.mean()), float("nan"), 1
    half = stats.t.ppf(0.5 + confidence / 2, n - 1) * v.std(ddof=1) / np.sqrt(n)
    return float(v.mean()), float(half), n


def paired_comparison(a, b, confidence: float = 0.95) -> dict[str, float]:
    """Paired t-test of ``a - b`` over matched seeds: mean difference, its CI and the p-value.

    With all differences equal (including all zero) the test is undefined: p = 1 when
    the difference is 0, else p = 0 (a constant non-zero gap over every seed).
    """
    from scipy import stats

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length: {a.shape} vs {b.shape}")
    d = a - b
    mean, half, n = mean_ci(d, confidence)
    if n < 2:
        p = float("nan")
    elif np.allclose(d, d[0], rtol=0, atol=1e-15):
        p = 1.0 if abs(d[0]) < 1e-15 else 0.0
    else:
        p = float(stats.ttest_rel(a, b).pvalue)
    return {"diff": mean, "diff_ci": half, "p_value": p, "n": float(n)}


def min_detectable_difference(diffs, alpha: float = 0.05, power: float = 0.8) -> dict[str, float]:
    """Paired differences (one per unit, e.g. per held-out query): their mean, the paired t-test
    p-value and the minimum detectable difference ``(z_{1-alpha/2} + z_{power}) * sd / sqrt(n)``.

    The MDE is the smallest true mean difference a two-sided paired test at level ``alpha``
    finds with probability ``power`` given the observed spread of the differences (normal
    approximation); NaN with fewer than two units.
    """
    from scipy import stats

    d = np.asarray([x for x in diffs if np.isfinite(x)], dtype=np.float64)
    n = len(d)
    out = {"diff": float(d.mean()) if n else float("nan"), "n": float(n), "sd": float("nan")}
    out |= {"mde": float("nan"), "p_value": float("nan")}
    if n < 2:
        return out
    sd = float(d.std(ddof=1))
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    out |= {"sd": sd, "mde": float(z * sd / np.sqrt(n))}
    out["p_value"] = float(stats.ttest_1samp(d, 0.0).pvalue) if sd > 0 else float(out["diff"] == 0)
    return out


def holm(p_values) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (NaN stays NaN)."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if not len(ok):
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    running = 0.0
    for i, idx in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[idx]))
        out[idx] = running
    return out
