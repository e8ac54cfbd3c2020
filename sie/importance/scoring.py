"""The daily scoring step: one method's scores for one model version → `importance_scores`."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from sie.config import SieConfig
from sie.features import encode_frame
from sie.importance.base import ScoringContext, get_estimator
from sie.models import resolve_device
from sie.store import Warehouse
from sie.train import ModelVersion, is_validation, load_model_version, load_window


def build_context(cfg: SieConfig, ds: str) -> tuple[ScoringContext, pd.DataFrame, dict]:
    """The scoring context for the model trained on the window ending ``ds``."""
    wh = Warehouse.from_config(cfg)
    model, meta, version = load_model_version(cfg, ds)
    index = pd.read_parquet(version.index_path)
    frame = load_window(wh, ds, cfg.train.window_days)
    val_mask = is_validation(frame["query_id"])
    train_frame = frame[~val_mask].reset_index(drop=True)
    if not np.array_equal(train_frame["sample_id"].to_numpy(), index["sample_id"].to_numpy()):
        raise RuntimeError(
            f"samples for the window ending {ds} changed since the model was trained; rerun `sie train --ds {ds}`"
        )
    device = resolve_device(cfg.train.device)
    ctx = ScoringContext(
        cfg=cfg,
        ds=ds,
        model=model,
        train=encode_frame(train_frame, cfg.train),
        validation=encode_frame(frame[val_mask].reset_index(drop=True), cfg.train),
        dynamics_loss=np.load(version.path / "dynamics_loss.npy"),
        dynamics_logit=np.load(version.path / "dynamics_logit.npy"),
        checkpoint_paths=[version.checkpoint_path(e) for e in range(meta["epochs"])],
        learning_rates=list(meta.get("learning_rates", [])),
        device=device,
        seed=cfg.train.seed,
    )
    return ctx, train_frame, meta


def score_day(cfg: SieConfig, ds: str, method: str, validate: bool = True) -> dict:
    """Score every training sample of ``ds``'s model with ``method``; publish the partition."""
    estimator = get_estimator(method, cfg)
    ctx, train_frame, meta = build_context(cfg, ds)
    start = time.perf_counter()
    scores = np.asarray(estimator.score(ctx), dtype=np.float64)
    if ctx.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    if scores.shape != (len(ctx.train),):
        raise RuntimeError(f"{method} returned {scores.shape} scores for {len(ctx.train)} samples")
    if not np.all(np.isfinite(scores)):
        raise RuntimeError(f"{method} returned {int((~np.isfinite(scores)).sum())} non-finite scores")
    table = pa.table(
        {
            "sample_id": train_frame["sample_id"].to_numpy(),
            "sample_ds": train_frame["sample_ds"].to_numpy(),
            "run_id": np.full(len(scores), f"daily-{ds}"),
            "model_version": np.full(len(scores), meta["model_version"]),
            "score": scores,
        }
    )
    wh = Warehouse.from_config(cfg)
    partition = {"ds": ds, "method": method}
    wh.write_partition("importance_scores", partition, table)
    cost = {
        "method": method,
        "seconds": seconds,
        "n": len(scores),
        "samples_per_second": len(scores) / max(seconds, 1e-9),
        "device": str(ctx.device),
    }
    (wh.partition_dir("importance_scores", partition).parent / f"_cost-{method}.json").write_text(json.dumps(cost))
    if validate:
        from sie.validate import validate as run_suite

        run_suite(cfg, ds, "importance_scores")
    return cost


def load_cost(cfg: SieConfig, ds: str, method: str) -> dict:
    wh = Warehouse.from_config(cfg)
    path = wh.table_dir("importance_scores") / f"ds={ds}" / f"_cost-{method}.json"
    return json.loads(path.read_text()) if path.exists() else {}


__all__ = ["ModelVersion", "build_context", "score_day", "load_cost"]
