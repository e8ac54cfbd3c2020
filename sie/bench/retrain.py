"""Retrain from scratch on importance-downsampled data and evaluate on the holdout."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa

from sie.bench.holdout import holdout_tensors, load_holdout
from sie.bench.metrics import click_metrics, ranking_metrics
from sie.bench.select import random_mask, top_k_mask
from sie.config import SieConfig
from sie.features import SampleTensors, encode_frame
from sie.store import Warehouse
from sie.train import is_validation, load_window, predict, train_ranker


def evaluate_cell(
    train: SampleTensors,
    mask: np.ndarray,
    holdout: SampleTensors,
    validation: SampleTensors,
    cfg: SieConfig,
    seed: int,
) -> dict[str, float]:
    """Train a fresh ranker on ``train[mask]`` and return its holdout and click metrics."""
    subset = train.subset(np.nonzero(mask)[0])
    result = train_ranker(subset, cfg.train, seed=seed, keep_checkpoints=False)
    metrics = ranking_metrics(holdout.group.numpy(), holdout.label.numpy(), predict(result.model, holdout))
    metrics.update(click_metrics(validation.click.numpy(), predict(result.model, validation)))
    metrics["train_seconds"] = result.seconds
    metrics["n_train"] = float(len(subset))
    return metrics


def retrain_evaluate_day(cfg: SieConfig, ds: str, progress: bool = True) -> pd.DataFrame:
    """For each method × keep ratio × seed (plus random and full baselines) retrain and evaluate.

    Scores come from the published `importance_scores` partitions of ``ds``. Results are
    published as the `benchmark_results` partition ``run_id=daily-<ds>``.
    """
    from sie.importance.scoring import load_cost

    wh = Warehouse.from_config(cfg)
    frame = load_window(wh, ds, cfg.train.window_days)
    val_mask = is_validation(frame["query_id"])
    train_frame = frame[~val_mask].reset_index(drop=True)
    train = encode_frame(train_frame, cfg.train)
    validation = encode_frame(frame[val_mask].reset_index(drop=True), cfg.train)
    holdout = holdout_tensors(load_holdout(wh), frame, cfg.train)

    scores = wh.read_table("importance_scores", {"ds": [ds]}).to_pandas()
    cells: list[tuple[str, float, int, np.ndarray, float]] = []
    for seed in cfg.bench.seeds:
        if "full" in cfg.bench.baselines:
            cells.append(("full", 1.0, seed, np.ones(len(train), bool), 0.0))
        for ratio in cfg.bench.keep_ratios:
            if "random" in cfg.bench.baselines and "random" not in cfg.importance.methods:
                cells.append(("random", ratio, seed, random_mask(len(train), ratio, seed), 0.0))
            for method in cfg.importance.methods:
                part = scores[scores["method"] == method].set_index("sample_id")["score"]
                if part.empty:
                    raise FileNotFoundError(f"no importance_scores for ds={ds} method={method}; run `sie score` first")
                aligned = part.reindex(train_frame["sample_id"]).to_numpy()
                if np.isnan(aligned).any():
                    raise RuntimeError(f"{method} scores do not cover the training window of ds={ds}")
                cost = load_cost(cfg, ds, method).get("seconds", float("nan"))
                cells.append((method, ratio, seed, top_k_mask(aligned, ratio, tie_seed=seed), cost))

    rows = []
    created = datetime.now(UTC)
    for n, (method, ratio, seed, mask, score_seconds) in enumerate(cells, 1):
        start = time.perf_counter()
        metrics = evaluate_cell(train, mask, holdout, validation, cfg, seed)
        if progress:
            print(
                f"  [{n}/{len(cells)}] {method:>12} keep={ratio:.2f} seed={seed}: "
                f"ndcg@10={metrics['ndcg_at_10']:.4f} ({time.perf_counter() - start:.1f}s)",
                flush=True,
            )
        for metric, value in metrics.items():
            if metric in ("train_seconds", "n_train"):
                continue
            rows.append(
                {
                    "dataset": cfg.simulate.world,
                    "ds": ds,
                    "method": method,
                    "keep_ratio": ratio,
                    "seed": seed,
                    "metric": metric,
                    "value": value,
                    "n_train": int(metrics["n_train"]),
                    "train_seconds": metrics["train_seconds"],
                    "score_seconds": score_seconds,
                    "created_at": created,
                }
            )
    result = pd.DataFrame(rows)
    wh.write_partition(
        "benchmark_results", {"run_id": f"daily-{ds}"}, pa.Table.from_pandas(result, preserve_index=False)
    )
    return result
