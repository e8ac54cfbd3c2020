"""Choosing which samples to keep."""

from __future__ import annotations

import numpy as np
import pandas as pd


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


def stratified_mask(strata: np.ndarray | pd.Series, keep_ratio: float, seed: int) -> np.ndarray:
    """Uniform random selection *within* each stratum (e.g. query text), same total as top-k.

    Each stratum of size n_g is shuffled and its j-th member gets the key
    ``(j + u_g) / n_g`` with one random offset ``u_g`` per stratum; keeping the
    ``ceil(keep_ratio * N)`` lowest keys keeps ``keep_ratio * n_g`` members of every
    stratum, rounded up or down at random, so query frequencies match the full data.
    """
    if not 0.0 < keep_ratio <= 1.0:
        raise ValueError(f"keep_ratio must be in (0, 1], got {keep_ratio}")
    codes = pd.factorize(pd.Series(np.asarray(strata, dtype=object)))[0]
    n = len(codes)
    rng = np.random.default_rng(seed)
    shuffle = rng.permutation(n)
    order = shuffle[np.argsort(codes[shuffle], kind="stable")]  # grouped by stratum, random within
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]) if n else np.zeros(0, int)
    sizes = np.diff(np.r_[starts, n])
    position = np.arange(n) - np.repeat(starts, sizes)
    offset = rng.random(len(starts))
    key = np.empty(n)
    key[order] = (position + np.repeat(offset, sizes)) / np.repeat(sizes, sizes)
    return top_k_mask(-key, keep_ratio, tie_seed=seed)


def selection_mask(
    baseline_or_method: str,
    keep_ratio: float,
    seed: int,
    *,
    n: int,
    scores: np.ndarray | None = None,
    strata: np.ndarray | pd.Series | None = None,
) -> np.ndarray:
    """The kept-sample mask of one benchmark cell.

    ``full`` keeps everything; ``random`` / ``stratified`` are seeded baselines; any other
    name keeps the top ``keep_ratio`` of ``scores`` (ties broken with ``seed``).
    """
    if baseline_or_method == "full":
        return np.ones(n, dtype=bool)
    if baseline_or_method == "random":
        return random_mask(n, keep_ratio, seed)
    if baseline_or_method == "stratified":
        if strata is None:
            raise ValueError("stratified selection needs strata")
        return stratified_mask(strata, keep_ratio, seed)
    if scores is None or len(scores) != n:
        raise ValueError(f"{baseline_or_method}: need {n} scores, got {None if scores is None else len(scores)}")
    return top_k_mask(scores, keep_ratio, tie_seed=seed)
