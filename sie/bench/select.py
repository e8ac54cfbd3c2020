"""Choosing which samples to keep."""

from __future__ import annotations

import numpy as np


def top_k_mask(scores: np.ndarray, keep_ratio: float, tie_seed: int = 0) -> np.ndarray:
    """Boolean mask keeping the ``ceil(keep_ratio * N)`` highest scores (ties broken at random)."""
    if not 0.0 < keep_ratio <= 1.0:
        raise ValueError(f"keep_ratio must be in (0, 1], got {keep_ratio}")
    n = len(scores)
    k = int(np.ceil(keep_ratio * n))
    tiebreak = np.random.default_rng(tie_seed).random(n)
    order = np.lexsort((tiebreak, -np.asarray(scores, dtype=np.float64)))
    mask = np.zeros(n, dtype=bool)
    mask[order[:k]] = True
    return mask


def random_mask(n: int, keep_ratio: float, seed: int) -> np.ndarray:
    return top_k_mask(np.random.default_rng(seed).random(n), keep_ratio, tie_seed=seed)
