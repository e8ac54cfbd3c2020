"""The scoring step: one method's scores for one model version → ``importance_scores``.

Scores are computed in memory (``score_method``), then published; the nightly evaluate
step and the benchmark take them in memory when they run in the same process and read
them back (``read_scores``, aligned on (sample_id, sample_ds)) when they run as separate
tasks. A derived method (``loss@client``, ``ensemble``, ``grad_norm_neg``) reuses the
scores of the methods it reads that are already published for the same model version
(``reusable_scores``) instead of recomputing them; its cost includes theirs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import torch

from sie import faults
from sie.config import SieConfig
from sie.ds import Ds
from sie.files import write_json_atomic
from sie.importance.base import Estimator, ScoringContext, checked_scores, get_estimator
from sie.model.ranker import resolve_device
from sie.model.window import TrainingWindow
from sie.steps.models import LoadedModel, load_model
from sie.steps.window import load_trained_window
from sie.store import Warehouse, lean_pandas


@dataclass
class ScoredMethod:
    method: str
    scores: np.ndarray  # aligned with window.train_frame
    cost: dict  # method, seconds, n, samples_per_second, device
    window: TrainingWindow
    meta: dict


def scoring_context(
    cfg: SieConfig, window: TrainingWindow, loaded: LoadedModel, rows: np.ndarray | None = None
) -> ScoringContext:
    """Everything an estimator needs for the model trained on ``window``, in memory; with ``rows``
    (a shard, sie.steps.sharded) only those training samples are scored."""
    if not same_ids(window.train_frame["sample_id"], loaded.index["sample_id"]):
        raise RuntimeError(
            f"samples for the window ending {window.ds} changed since the model was trained; "
            f"rerun `sie train --ds {window.ds}`"
        )
    return ScoringContext(
        cfg=cfg,
        ds=window.ds,
        model=loaded.model,
        train=window.train if rows is None else window.train.subset(rows),
        validation=window.validation,
        dynamics_loss=loaded.dynamics_loss if rows is None else loaded.dynamics_loss[:, rows],
        dynamics_logit=loaded.dynamics_logit if rows is None else loaded.dynamics_logit[:, rows],
        checkpoint_states=loaded.checkpoint_states,
        learning_rates=list(loaded.meta.get("learning_rates", [])),
        device=resolve_device(cfg.train.device),
        seed=cfg.train.seed,
    )


def same_ids(ours: pd.Series, trained: pd.Series) -> bool:
    """Whether two id columns are equal row by row (compared in Arrow: no Python str per id)."""
    if len(ours) != len(trained):
        return False
    equal = pc.equal(pa.array(ours), pa.array(trained))
    return equal.null_count == 0 and pc.all(equal).as_py()


@contextmanager
def scratch_files(wh: Warehouse) -> Iterator:
    """A :attr:`ScoringContext.scratch` that stores arrays as memory-mapped ``.npy`` files in a
    private staging folder (e.g. `trak`'s projected gradients, [N, k] floats: disk, not RAM),
    removed when scoring ends; a killed run's folder is left to the staging clean-up."""
    folder = wh.staging_dir / f"scratch-{uuid.uuid4().hex}"

    def scratch(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        folder.mkdir(parents=True, exist_ok=True)
        return np.lib.format.open_memmap(folder / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)

    try:
        yield scratch
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def score_method(
    cfg: SieConfig, ds: Ds, method: str, window: TrainingWindow | None = None, loaded: LoadedModel | None = None
) -> ScoredMethod:
    """Score every training sample of ``ds``'s model with ``method`` (in memory, nothing published).

    ``window`` and ``loaded`` (the model version) are read when not given; pass them to score
    several methods over one read.
    """
    faults.point("score.start")
    estimator = get_estimator(method, cfg)
    window = window or load_trained_window(cfg, ds)
    loaded = loaded or load_model(cfg, ds)
    ctx = scoring_context(cfg, window, loaded)
    given, given_seconds = reusable_scores(cfg, window, loaded, estimator)
    ctx.given_scores.update(given)
    start = time.perf_counter()
    with scratch_files(Warehouse.from_config(cfg)) as ctx.scratch:
        scores = checked_scores(estimator, ctx)
    if ctx.device.type == "cuda":
        torch.cuda.synchronize()
    # a derived method costs what its reused inputs cost plus its own arithmetic
    seconds = time.perf_counter() - start + sum(given_seconds[m] for m in ctx.reused)
    cost = {
        "method": method,
        "seconds": seconds,
        "n": len(scores),
        "samples_per_second": len(scores) / max(seconds, 1e-9),
        "device": str(ctx.device),
        "reused": list(ctx.reused),
        "model_fingerprint": model_fingerprint(loaded),
    }
    return ScoredMethod(method, scores, cost, window, loaded.meta)


def reusable_scores(
    cfg: SieConfig, window: TrainingWindow, loaded: LoadedModel, estimator: Estimator
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """({method: scores}, {method: seconds}) of the methods ``estimator`` reads, directly or through
    other derived methods, that are already published for this window and this very model."""
    wanted, todo = set(), list(estimator.uses())
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(get_estimator(name, cfg).uses())
    scores, seconds = {}, {}
    fingerprint = model_fingerprint(loaded)
    for name in sorted(wanted):
        cost = read_cost(cfg, window.ds, name)
        if cost.get("model_fingerprint") != fingerprint:  # none published, or for another training run
            continue
        published = _published(cfg, window, name)
        if published is not None:
            scores[name] = published
            seconds[name] = float(cost.get("seconds", 0.0))
    return scores, seconds


def model_fingerprint(loaded: LoadedModel) -> str:
    """Identifies one training run: ``model_version`` is only ``ranker-<ds>``, the same after a retrain,
    while the recorded per-sample dynamics differ between any two runs that differ at all."""
    digest = hashlib.sha256(str(loaded.meta.get("model_version")).encode())
    for array in (loaded.dynamics_loss, loaded.dynamics_logit):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def score_table(frame, meta: dict, scores: np.ndarray, run_id: str) -> pa.Table:
    """The ``importance_scores`` data columns for ``scores`` of the samples in ``frame`` (same order)."""
    n = len(scores)
    return pa.table(
        {
            "sample_id": arrow_strings(frame["sample_id"]),
            "sample_ds": arrow_strings(frame["sample_ds"]),
            "run_id": constant_strings(run_id, n),
            "model_version": constant_strings(meta["model_version"], n),
            "score": scores,
            "model_id": constant_strings(meta.get("model_id", "mlp"), n),
        }
    )


def constant_strings(value: str, n: int) -> pa.Array:
    """``value`` ``n`` times, straight in Arrow (``np.full`` would hold 4 bytes a character a row)."""
    return pa.repeat(pa.scalar(value, pa.string()), n)


def arrow_strings(column: pd.Series) -> pa.Array:
    """``column`` as an Arrow string array (not a Python str per value: a 10M-sample window)."""
    return pa.array(column).cast(pa.string())


def publish_scores(cfg: SieConfig, scored: ScoredMethod) -> None:
    """Write one method's scores as the ``importance_scores`` partition (ds, method), and its cost."""
    ds = scored.window.ds
    table = score_table(scored.window.train_frame, scored.meta, scored.scores, f"daily-{ds}")
    wh = Warehouse.from_config(cfg)
    wh.write_partition("importance_scores", {"ds": ds, "method": scored.method}, table)
    write_json_atomic(_cost_path(wh, ds, scored.method), scored.cost, indent=None)


def read_scores(cfg: SieConfig, window: TrainingWindow, method: str) -> np.ndarray:
    """``method``'s published scores for ``window.ds``, aligned with the window's training samples."""
    table = _read_partition(cfg, window.ds, method)
    if table.empty:
        raise FileNotFoundError(f"no importance_scores for ds={window.ds} method={method}; run `sie score` first")
    return _aligned(table, window, method)


def _read_partition(cfg: SieConfig, ds: str, method: str):
    """The method's published (sample_id, sample_ds, score) rows (strings Arrow-backed: a 10M-sample day)."""
    table = Warehouse.from_config(cfg).read_table(
        "importance_scores", {"ds": [ds], "method": [method]}, columns=["sample_id", "sample_ds", "score"]
    )
    return lean_pandas(table)


def _published(cfg: SieConfig, window: TrainingWindow, method: str) -> np.ndarray | None:
    """``method``'s published scores aligned with ``window``; None when they do not cover it."""
    table = _read_partition(cfg, window.ds, method)
    if table.empty:
        return None
    try:
        return _aligned(table, window, method)
    except RuntimeError:  # published for another set of samples: recompute
        return None


def _aligned(table, window: TrainingWindow, method: str) -> np.ndarray:
    indexed = table.set_index(["sample_id", "sample_ds"])["score"]
    aligned = indexed.reindex(window.sample_keys()).to_numpy(dtype=np.float64)
    if np.isnan(aligned).any():
        raise RuntimeError(f"{method} scores do not cover the training window of ds={window.ds}")
    return aligned


def read_cost(cfg: SieConfig, ds: Ds, method: str) -> dict:
    path = _cost_path(Warehouse.from_config(cfg), ds, method)
    return json.loads(path.read_text()) if path.exists() else {}


def _cost_path(wh: Warehouse, ds: str, method: str):
    return wh.cost_path(ds, method)
