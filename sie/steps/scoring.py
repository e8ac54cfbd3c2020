"""The scoring step: one method's scores for one model version → ``importance_scores``.

Scores are computed in memory (``score_method``), then published; the nightly evaluate
step and the benchmark take them in memory when they run in the same process and read
them back (``read_scores``, aligned on (sample_id, sample_ds)) when they run as separate
tasks. A derived method (``loss@client``, ``ensemble``, ``grad_norm_neg``) reuses the
scores of the methods it reads that are already published for the same model version
(``reusable_scores``) instead of recomputing them; its cost includes theirs.

Memory: a score step over the saved window holds no per-sample string. The scores' keys
(sample_id, sample_ds) come from the model's index, read in batches of
``train.read_batch_rows`` rows as the scores are written (``publish_scores``) and as
published scores are matched to the model's order (``reusable_scores``).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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
from sie.steps.models import LoadedModel, index_batches, load_model, read_index
from sie.steps.window import load_trained_window
from sie.store import Warehouse, lean_pandas, rechunked

#: the columns that key a sample's scores
KEYS = ["sample_id", "sample_ds"]


@dataclass
class ScoredMethod:
    method: str
    scores: np.ndarray  # aligned with window.train_frame
    cost: dict  # method, seconds, n, samples_per_second, device
    window: TrainingWindow
    meta: dict
    index_path: Path  # the model's index: the scores' keys, in the same order


def scoring_context(
    cfg: SieConfig, window: TrainingWindow, loaded: LoadedModel, rows: np.ndarray | None = None
) -> ScoringContext:
    """Everything an estimator needs for the model trained on ``window``, in memory; with ``rows``
    (a shard, sie.steps.sharded) only those training samples are scored."""
    check_trained_on(cfg, window, loaded)
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


def check_trained_on(cfg: SieConfig, window: TrainingWindow, loaded: LoadedModel) -> None:
    """Refuse to score ``loaded`` over a window other than the one it was trained on. A window the
    same train step saved with the model is that window (no id is read); one read afresh is
    compared with the model's index, row by row."""
    if window.version_id is not None and window.version_id == loaded.meta.get("version_id"):
        return
    size, ids = cfg.train.read_batch_rows, ["sample_id"]
    trained = rechunked(index_batches(loaded.index_path, ids, size), size)
    pairs = itertools.zip_longest(frame_keys(window.train_frame, size, ids), trained)
    if not all(ours is not None and theirs is not None and _same_rows(ours, theirs, ids) for ours, theirs in pairs):
        raise RuntimeError(
            f"samples for the window ending {window.ds} changed since the model was trained; "
            f"rerun `sie train --ds {window.ds}`"
        )


def _same_rows(a: pa.Table, b: pa.Table, columns: list[str]) -> bool:
    """Whether two batches hold the same ``columns`` row by row (compared in Arrow: no Python str per id)."""
    if a.num_rows != b.num_rows:
        return False
    for k in columns:
        equal = pc.equal(a.column(k).cast(pa.string()), b.column(k).cast(pa.string()))
        if equal.null_count or not pc.all(equal).as_py():
            return False
    return True


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
    return ScoredMethod(method, scores, cost, window, loaded.meta, loaded.index_path)


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
        published = _published(cfg, window.ds, name, loaded.index_path)
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


def score_table(keys: pa.Table, meta: dict, scores: np.ndarray, run_id: str) -> pa.Table:
    """The ``importance_scores`` data columns for ``scores`` of the samples ``keys`` names (same order)."""
    n = len(scores)
    if keys.num_rows != n:
        raise RuntimeError(f"{n} scores for {keys.num_rows} samples")
    return pa.table(
        {
            "sample_id": keys.column("sample_id").cast(pa.string()),
            "sample_ds": keys.column("sample_ds").cast(pa.string()),
            "run_id": constant_strings(run_id, n),
            "model_version": constant_strings(meta["model_version"], n),
            "score": scores,
            "model_id": constant_strings(meta.get("model_id", "mlp"), n),
        }
    )


def constant_strings(value: str, n: int) -> pa.Array:
    """``value`` ``n`` times, straight in Arrow (``np.full`` would hold 4 bytes a character a row)."""
    return pa.repeat(pa.scalar(value, pa.string()), n)


def frame_keys(frame: pd.DataFrame, size: int, columns: list[str] = KEYS) -> Iterator[pa.Table]:
    """A frame's key ``columns`` as Arrow strings, ``size`` rows at a time (not a Python str per
    value: a 10M-sample window)."""
    for start in range(0, len(frame), size):
        yield pa.table({k: pa.array(frame[k].iloc[start : start + size]).cast(pa.string()) for k in columns})


def publish_scores(cfg: SieConfig, scored: ScoredMethod) -> None:
    """Write one method's scores as the ``importance_scores`` partition (ds, method), and its cost;
    the keys are read from the model's index and written with their scores batch by batch."""
    ds, run_id, start = scored.window.ds, f"daily-{scored.window.ds}", 0

    def tables():
        nonlocal start
        for keys in index_batches(scored.index_path, KEYS, cfg.train.read_batch_rows):
            yield score_table(keys, scored.meta, scored.scores[start : start + keys.num_rows], run_id)
            start += keys.num_rows
        if start != len(scored.scores):
            raise RuntimeError(f"{scored.method}: {len(scored.scores)} scores for the model's {start} samples")

    wh = Warehouse.from_config(cfg)
    wh.write_partition_batches("importance_scores", {"ds": ds, "method": scored.method}, run_id, tables())
    write_json_atomic(_cost_path(wh, ds, scored.method), scored.cost, indent=None)


def read_scores(cfg: SieConfig, window: TrainingWindow, method: str) -> np.ndarray:
    """``method``'s published scores for ``window.ds``, aligned with the window's training samples."""
    frame = window.train_frame
    scores = _aligned(cfg, window.ds, method, frame_keys(frame, cfg.train.read_batch_rows), lambda: frame[KEYS])
    if scores is None:
        raise FileNotFoundError(f"no importance_scores for ds={window.ds} method={method}; run `sie score` first")
    return scores


def _published(cfg: SieConfig, ds: str, method: str, index_path: Path) -> np.ndarray | None:
    """``method``'s published scores in the order of the model's index; None when they do not cover it."""
    keys = index_batches(index_path, KEYS, cfg.train.read_batch_rows)
    try:
        return _aligned(cfg, ds, method, keys, lambda: read_index(index_path, KEYS))
    except RuntimeError:  # published for another set of samples: recompute
        return None


def _aligned(cfg: SieConfig, ds: str, method: str, keys: Iterator[pa.Table], whole_keys) -> np.ndarray | None:
    """``method``'s published scores in the order of ``keys`` (the samples' keys, in batches); None
    when none are published. Scores published by this step are in that order already and are
    matched batch by batch; any others are matched whole on (sample_id, sample_ds) (``whole_keys()``)."""
    wh, size = Warehouse.from_config(cfg), cfg.train.read_batch_rows
    where = {"ds": [ds], "method": [method]}
    if not wh.data_files("importance_scores", where):
        return None
    published = wh.read_batches("importance_scores", where, columns=[*KEYS, "score"], batch_rows=size)
    in_order = _in_order(rechunked(published, size), rechunked(keys, size))  # (files' row groups cut both)
    if in_order is not None:
        return in_order
    table = lean_pandas(wh.read_table("importance_scores", where, columns=[*KEYS, "score"]))
    aligned = table.set_index(KEYS)["score"].reindex(pd.MultiIndex.from_frame(whole_keys()))
    aligned = aligned.to_numpy(dtype=np.float64)
    if np.isnan(aligned).any():
        raise RuntimeError(f"{method} scores do not cover the training window of ds={ds}")
    return aligned


def _in_order(published: Iterator[pa.Table], keys: Iterator[pa.Table]) -> np.ndarray | None:
    """The scores of ``published`` when its rows have the keys of ``keys``'s rows, in the same order
    (the two streams cut into batches of the same size); None as soon as one row differs."""
    scores = []
    for got, want in itertools.zip_longest(published, keys):
        if got is None or want is None or not _same_rows(got, want, KEYS):
            return None
        scores.append(got.column("score").to_numpy())
    return np.concatenate(scores).astype(np.float64) if scores else np.zeros(0)


def read_cost(cfg: SieConfig, ds: Ds, method: str) -> dict:
    path = _cost_path(Warehouse.from_config(cfg), ds, method)
    return json.loads(path.read_text()) if path.exists() else {}


def _cost_path(wh: Warehouse, ds: str, method: str):
    return wh.cost_path(ds, method)
