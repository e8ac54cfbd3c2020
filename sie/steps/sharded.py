"""Row-sharded scoring under ``torchrun``: each rank scores its share of the training samples.

    torchrun --nproc_per_node=2 jobs/score_sharded.py --ds 2026-11-20 --methods loss,grad_norm,tracin

Every rank reads the window and the model version, scores its contiguous shard of the
training samples (:func:`shard_rows`, boundaries on multiples of ``importance.batch_size``
so that the shard's batches are exactly those one process would form), and writes ONE
Parquet part into a staging folder inside ``importance_scores``; once every rank has
reported its part, rank 0 commits all parts as the (ds, method) partition in one commit
(sie.store.Warehouse.commit_partition) and writes the cost. Readers see the previous
scores until that commit.

Only methods whose score of a sample depends on that sample alone (given the model, its
checkpoints, its recorded dynamics and the validation set) shard: :data:`ROW_LOCAL`. The
others are refused with a one-line error: their scores need all samples at once
(KNN-Shapley ranks every training point against each validation point; data_oob trains
its learners on all samples; ensembles, forgetting, tce/rce and the group aggregates
rank or pool over all samples; input_grad_share normalises by the sum over all
samples; random draws one sequence for all). Score them with ``jobs/score.py``.

With a group objective (listwise / pairwise) or ``importance.aum_mode=pairwise`` a
sample's score depends on its query request, so shards then hold whole requests
(contiguous blocks of requests in order of first appearance) instead of aligned rows.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from sie.config import SieConfig
from sie.ds import Ds
from sie.files import write_json_atomic
from sie.importance.base import checked_scores, get_estimator
from sie.model.distributed import World, all_gather_objects, broadcast_object, init_from_env, shard_rows
from sie.model.features import SampleTensors
from sie.model.objective import Objective
from sie.model.window import TrainingWindow
from sie.steps.models import LoadedModel, index_rows, load_model
from sie.steps.scoring import KEYS, model_fingerprint, reusable_scores, score_table, scoring_context
from sie.steps.window import load_trained_window
from sie.store import TABLES, Warehouse, conform

log = logging.getLogger(__name__)

TABLE = "importance_scores"

#: methods whose score of a sample is a function of that sample (and of what every rank holds whole:
#: the model, checkpoints, dynamics, validation set), so a shard's scores equal one process's
ROW_LOCAL = frozenset({"loss", "el2n", "aum", "grad_norm", "grad_norm_neg", "tracin", "tracin_self"})


def check_shardable(method: str) -> None:
    if method not in ROW_LOCAL:
        raise ValueError(
            f"{method} cannot be scored sharded by rows (its scores need all samples at once); "
            f"sharded methods: {', '.join(sorted(ROW_LOCAL))}; score {method} with jobs/score.py"
        )


def whole_requests(cfg: SieConfig, method: str, train: SampleTensors) -> bool:
    """Whether ``method``'s score of a sample depends on the other samples of its query request."""
    return Objective.of(cfg.train, train).is_group or (method == "aum" and cfg.importance.aum_mode == "pairwise")


def shard_indices(cfg: SieConfig, method: str, train: SampleTensors, world: World) -> np.ndarray:
    """The training rows (positions in the window's training order) that this rank scores."""
    n = len(train)
    if not whole_requests(cfg, method, train):
        return np.arange(n)[shard_rows(n, world.rank, world.size, align=int(cfg.importance.batch_size))]
    group = train.group.numpy()
    _, first = np.unique(group, return_index=True)
    request_order = np.argsort(np.argsort(first))  # request number in order of first appearance
    mine = shard_rows(len(first), world.rank, world.size)
    _, inverse = np.unique(group, return_inverse=True)
    position = request_order[inverse]
    return np.nonzero((position >= mine.start) & (position < mine.stop))[0]


def score_sharded(cfg: SieConfig, ds: Ds, methods: list[str], world: World | None = None) -> dict[str, dict]:
    """Score each method for ``ds``'s model on this rank's shard and publish all ranks' parts (rank 0).

    Every rank returns ``{method: published cost}``. With one process (not under ``torchrun``)
    the single shard is every sample, published the same way.
    """
    ds = Ds(ds)
    for method in methods:
        check_shardable(method)
    world = world or init_from_env()
    window, loaded = load_trained_window(cfg, ds), load_model(cfg, ds)
    return {method: score_shard(cfg, window, loaded, method, world) for method in methods}


def score_shard(cfg: SieConfig, window: TrainingWindow, loaded: LoadedModel, method: str, world: World) -> dict:
    """One method: this rank's shard scored and written as its part; rank 0 publishes; the cost on every rank."""
    rows = shard_indices(cfg, method, window.train, world)
    ctx = scoring_context(cfg, window, loaded, rows)
    given, given_seconds = reusable_scores(cfg, window, loaded, get_estimator(method, cfg))
    ctx.given_scores.update({m: s[rows] for m, s in given.items()})
    start = time.perf_counter()
    scores = checked_scores(get_estimator(method, cfg), ctx)
    if ctx.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start + sum(given_seconds[m] for m in ctx.reused)
    log.info("rank %d/%d: %s scored %d samples in %.2f s", world.rank, world.size, method, len(rows), seconds)

    wh = Warehouse.from_config(cfg)
    partition, run_id = {"ds": str(window.ds), "method": method}, f"daily-{window.ds}"
    folder = broadcast_object(str(wh.staged_partition(TABLE, partition, run_id)) if world.is_main else None, world)
    part = write_part(
        folder,
        world.rank,
        conform(score_table(shard_keys(cfg, loaded, rows), loaded.meta, scores, run_id), TABLES[TABLE]),
    )
    parts = all_gather_objects({"rank": world.rank, "path": part, "rows": len(rows), "seconds": seconds}, world)
    cost = None
    if world.is_main:
        cost = publish_parts(wh, partition, run_id, folder, parts, len(window.train))
        cost |= {"device": str(ctx.device), "reused": list(ctx.reused), "model_fingerprint": model_fingerprint(loaded)}
        write_json_atomic(wh.cost_path(str(window.ds), method), cost, indent=None)
    return broadcast_object(cost, world)  # every rank waits for the commit


def shard_keys(cfg: SieConfig, loaded: LoadedModel, rows: np.ndarray) -> pa.Table:
    """The (sample_id, sample_ds) of this rank's rows, from the model's index: no rank holds every id."""
    return index_rows(loaded.index_path, KEYS, rows, cfg.train.read_batch_rows)


def write_part(folder: str, rank: int, table: pa.Table) -> str:
    path = f"{folder}/part-{rank:05d}.parquet"
    pq.write_table(table, path)
    return path


def publish_parts(wh: Warehouse, partition: dict, run_id: str, folder: str, parts: list[dict], n: int) -> dict:
    """Commit the ranks' parts as the partition once each is there and together they cover the window."""
    from pathlib import Path

    written = sum(pq.ParquetFile(p["path"]).metadata.num_rows for p in parts)
    if len(parts) != len({p["rank"] for p in parts}) or written != n:
        raise RuntimeError(f"{partition}: the ranks' parts hold {written} rows for {n} training samples; not published")
    wh.commit_partition(TABLE, partition, run_id, Path(folder))
    seconds = max(p["seconds"] for p in parts)  # the ranks run side by side: the step takes the slowest
    return {
        "method": partition["method"],
        "seconds": seconds,
        "n": n,
        "samples_per_second": n / max(seconds, 1e-9),
        "world_size": len(parts),
        "rank_seconds": [p["seconds"] for p in parts],
    }
