"""Retrain from scratch on the cells of a grid and evaluate each on the holdout (no I/O).

Shared by the nightly ``evaluate`` step and the benchmark: the caller brings the training
window's tensors, the evaluation set and each method's scores (aligned with the window).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sie.config import TrainConfig
from sie.model.features import SampleTensors
from sie.model.training import predict, train_ranker
from sie.selection.grid import Cell
from sie.selection.masks import selection_mask
from sie.selection.metrics import QUERY_NDCG, click_metrics, per_query_ndcg, ranking_metrics

log = logging.getLogger(__name__)

#: per-cell values that are columns of benchmark_results, not metrics
COST_KEYS = ("train_seconds", "n_train")


@dataclass
class EvalSet:
    """What a retrained model is judged on: the judged holdout and held-out clicks.

    ``validation_noise`` (the oracle's is_noise per held-out click sample, simulator worlds
    only) adds the clean-click metrics: the held-out clicks with the injected noise removed,
    which measure relevance where the raw clicks reward the noise. ``holdout_queries`` (the
    query text per holdout row) adds NDCG@10 per held-out query.
    """

    holdout: SampleTensors
    validation: SampleTensors
    validation_noise: np.ndarray | None = None
    holdout_queries: np.ndarray | None = None


def held_out_click_metrics(clicks: np.ndarray, logits: np.ndarray, noise: np.ndarray | None) -> dict[str, float]:
    """click_auc / click_logloss on all held-out clicks and, when the oracle's ``noise`` flags are
    known, clean_click_auc / clean_click_logloss on the clicks it marks clean."""
    metrics = click_metrics(clicks, logits)
    if noise is not None:
        clean = ~np.asarray(noise, dtype=bool)
        metrics.update({f"clean_{k}": v for k, v in click_metrics(clicks[clean], logits[clean]).items()})
    return metrics


def evaluate_cell(
    train: SampleTensors, mask: np.ndarray, evalset: EvalSet, train_cfg: TrainConfig, seed: int
) -> dict[str, float | dict[str, float]]:
    """Train a fresh ranker on ``train[mask]``; its holdout and click metrics plus train_seconds / n_train
    (and ``{query: NDCG@10}`` under :data:`QUERY_NDCG` when the eval set names the holdout's queries)."""
    subset = train.subset(np.nonzero(mask)[0])
    result = train_ranker(subset, train_cfg, seed=seed, keep_checkpoints=False)
    holdout = evalset.holdout
    holdout_scores = predict(result.model, holdout)
    metrics: dict[str, float | dict[str, float]] = {}
    metrics.update(ranking_metrics(holdout.group.numpy(), holdout.label.numpy(), holdout_scores))
    clicks = evalset.validation.click.numpy()
    metrics.update(held_out_click_metrics(clicks, predict(result.model, evalset.validation), evalset.validation_noise))
    if evalset.holdout_queries is not None:
        metrics[QUERY_NDCG] = per_query_ndcg(evalset.holdout_queries, holdout.label.numpy(), holdout_scores)
    metrics["train_seconds"] = result.seconds
    metrics["n_train"] = float(len(subset))
    return metrics


@dataclass
class CellData:
    """What every cell of a grid selects from: the training tensors, their strata and each method's scores."""

    train: SampleTensors
    strata: pd.Series
    scores: Mapping[str, np.ndarray]


def within_budget(data: CellData, max_samples: int, seed: int = 0) -> CellData:
    """``data`` cut to a seeded uniform subsample of ``max_samples`` rows (kept in order); all of it
    when ``max_samples`` is 0 or not smaller. Every cell then selects within the same subsample."""
    n = len(data.train)
    if max_samples <= 0 or n <= max_samples:
        return data
    keep = np.sort(np.random.default_rng(seed).choice(n, size=max_samples, replace=False))
    log.info("evaluate budget: cells retrain on %d of %d training samples (uniform, seed %d)", max_samples, n, seed)
    return CellData(
        data.train.subset(keep),
        data.strata.iloc[keep].reset_index(drop=True),
        {m: np.asarray(s)[keep] for m, s in data.scores.items()},
    )


def cell_mask(cell: Cell, train: SampleTensors, strata: pd.Series, scores: Mapping[str, np.ndarray]) -> np.ndarray:
    """The samples ``cell`` keeps (baselines need no scores)."""
    return selection_mask(
        cell.method,
        cell.keep_ratio,
        cell.seed,
        n=len(train),
        scores=None if cell.is_baseline else scores[cell.method],
        strata=strata,
    )


def run_cell(
    cell: Cell,
    train: SampleTensors,
    strata: pd.Series,
    evalset: EvalSet,
    train_cfg: TrainConfig,
    scores: Mapping[str, np.ndarray],
) -> dict[str, float]:
    """Select, retrain and evaluate one cell; logs its NDCG@10."""
    start = time.perf_counter()
    metrics = evaluate_cell(train, cell_mask(cell, train, strata, scores), evalset, train_cfg, cell.seed)
    log.info(
        "cell %12s keep=%.2f seed=%d: ndcg@10=%.4f (%.1fs)",
        cell.method,
        cell.keep_ratio,
        cell.seed,
        metrics["ndcg_at_10"],
        time.perf_counter() - start,
    )
    return metrics


def run_cells(
    cells: list[Cell],
    train: SampleTensors,
    strata: pd.Series,
    evalset: EvalSet,
    train_cfg: TrainConfig,
    scores: Mapping[str, np.ndarray],
    max_seconds: float = 0.0,
) -> Iterator[tuple[Cell, dict[str, float]]]:
    """Each cell run in order; those not started within ``max_seconds`` (0 = no limit) are skipped."""
    for n, cell in enumerate(cells_in_time(cells, max_seconds), 1):
        log.info("[%d/%d]", n, len(cells))
        yield cell, run_cell(cell, train, strata, evalset, train_cfg, scores)


def cells_in_time(cells: list[Cell], max_seconds: float) -> Iterator[Cell]:
    """``cells`` in order until ``max_seconds`` (0 = no limit) have passed since the first started
    (the first always runs); the cells not started are logged."""
    start = time.monotonic()
    for n, cell in enumerate(cells):
        if n and max_seconds and time.monotonic() - start > max_seconds:
            left = [f"{c.method}@{c.keep_ratio:g}/{c.seed}" for c in cells[n:]]
            log.warning("evaluate budget of %.0f s spent: %d cells skipped: %s", max_seconds, len(left), left)
            return
        yield cell


def cell_rows(
    cell: Cell, metrics: dict, score_seconds: float = 0.0, *, model_id: str = "mlp", score_model_id: str | None = None
) -> list[dict]:
    """One cell's metrics as benchmark_results rows (dataset, ds, run_id and created_at are added by the writer).

    ``model_id`` is the ranker retrained on the cell, ``score_model_id`` the one whose scores chose
    the data (default: the same; none for the baselines). A metric whose value is a mapping
    (per-query NDCG) gives one row per key, the key in ``subset``.
    """
    common = {
        "model_id": model_id,
        "score_model_id": None if cell.is_baseline else (score_model_id or model_id),
        "method": cell.method,
        "keep_ratio": cell.keep_ratio,
        "seed": cell.seed,
        "at": None,
        "n_train": int(metrics["n_train"]),
        "train_seconds": metrics["train_seconds"],
        "score_seconds": score_seconds,
    }
    rows = []
    for metric, value in metrics.items():
        if metric in COST_KEYS:
            continue
        parts = value.items() if isinstance(value, Mapping) else [(None, value)]
        rows += [{**common, "metric": metric, "subset": subset, "value": v} for subset, v in parts]
    return rows
