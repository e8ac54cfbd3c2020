"""What a benchmark run is: its id, its own warehouse sub-root, its days and its grid.

One run is identified by ``run_id`` (default ``bench-<dataset>-<hash>``, the hash over
every setting that changes the data, the model or the scores, but *not* over the grid of
methods / keep ratios / seeds, so a grid can be extended and only the new cells are
computed). Its files live under ``<warehouse>/bench/<run_id>/``::

    warehouse/                 the run's own warehouse: raw logs, oracle, samples, model,
                               importance_scores (never mixed with the nightly tables)
    state/                     markers of finished steps (a rerun skips them)
    rows/_run.parquet          run-level rows: scale, settings, noise shares, epoch time
    rows/method-<m>.parquet    per-method rows: cost, noise-detection AUROC/AP/ROC, score
                               distribution by noise type
    cells/<m>-<ratio>-<seed>.parquet   one (method, keep ratio, seed) cell's metrics

A *replicated* run (``bench.world_seeds``, ``bench.model_seeds``, ``bench.folds``) is a set
of such runs, one per (world seed, scoring-model seed, query fold), each under its own
default run id; the replicated run's own id names the pooled ``benchmark_results``
partition (:class:`ReplicatedRun`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sie.bench.rows import RUN_METHOD
from sie.config import GridConfig, SieConfig
from sie.ds import Ds
from sie.selection.grid import Cell, Grid

DATASETS = ("synthetic", "esci")


@dataclass
class BenchRun:
    cfg: SieConfig  # the main config (its warehouse receives benchmark_results and reports)
    data_cfg: SieConfig  # the run's own config (warehouse = root/warehouse)
    run_id: str
    root: Path
    days: list[Ds]
    grid: Grid

    @property
    def dataset(self) -> str:
        return self.cfg.bench.dataset

    @property
    def last_day(self) -> Ds:
        return self.days[-1]

    def state(self, name: str) -> Path:
        return self.root / "state" / name

    def method_rows_path(self, method: str) -> Path:
        return self.root / "rows" / f"method-{method}.parquet"

    @property
    def run_rows_path(self) -> Path:
        return self.root / "rows" / f"{RUN_METHOD}.parquet"

    @property
    def score_model(self) -> str:
        """The ranker that is trained and scored on the whole window."""
        return self.data_cfg.train.model

    @property
    def retrain_model(self) -> str:
        """The ranker the cells retrain (the scoring one unless ``bench.retrain_model`` names another)."""
        return self.cfg.bench.retrain_model or self.score_model

    @property
    def retrain_cfg(self) -> SieConfig:
        """The run's config with ``train.model`` = the retrained ranker (it encodes the window for it)."""
        train = dataclasses.replace(self.data_cfg.train, model=self.retrain_model)
        return dataclasses.replace(self.data_cfg, train=train)

    def cell_path(self, cell: Cell) -> Path:
        return self.root / "cells" / f"{cell.key()}.parquet"

    def cells(self) -> list[Cell]:
        return self.grid.cells()

    def roots(self) -> list[Path]:
        return [self.root]

    def plan(self) -> dict[str, Any]:
        """JSON-able summary (the DAG passes it between tasks)."""
        return {
            "run_id": self.run_id,
            "dataset": self.dataset,
            "days": list(self.days),
            "methods": list(self.grid.methods),
            "baselines": list(self.grid.baselines),
            "keep_ratios": list(self.grid.keep_ratios),
            "seeds": list(self.grid.seeds),
            "score_model": self.score_model,
            "retrain_model": self.retrain_model,
            "cells": [dataclasses.asdict(c) for c in self.cells()],
            "root": str(self.root),
        }


def run_key(cfg: SieConfig) -> dict[str, Any]:
    """The settings that determine the run's data, model and scores (hashed into run_id)."""
    b = cfg.bench
    sim = dataclasses.asdict(cfg.simulate) | {"world": b.dataset}
    if not cfg.simulate.holdout_folds:  # the fixed holdout: ids of runs made before k-fold existed stay valid
        sim = {k: v for k, v in sim.items() if k not in ("holdout_folds", "holdout_fold")}
    ingest = {
        k: v
        for k, v in dataclasses.asdict(cfg.ingest).items()
        if k not in ("spark_master", "shuffle_partitions", "landed_bytes_per_partition", "rows_per_file")
    }
    train = {k: v for k, v in dataclasses.asdict(cfg.train).items() if k != "device"} | {"window_days": b.days}
    if cfg.train.model == "mlp" and b.retrain_model in ("", "mlp"):
        # the default ranker: ids of runs made before there was a choice of models stay valid
        train = {k: v for k, v in train.items() if k not in ("model", "transformer")}
    elif b.retrain_model not in ("", cfg.train.model):
        train["retrain_model"] = b.retrain_model
    importance = {k: v for k, v in dataclasses.asdict(cfg.importance).items() if k not in ("methods", "batch_size")}
    key = {
        "dataset": b.dataset,
        "start": b.start,
        "days": b.days,
        "simulate": sim,
        "ingest": ingest,
        "train": train,
        "importance": importance,
    }
    if b.grid.max_train_samples != GridConfig.max_train_samples:  # the default: ids made before it stay valid
        key["retrain_max_train_samples"] = b.grid.max_train_samples
    return key


def default_run_id(cfg: SieConfig) -> str:
    key = run_key(cfg)
    if is_replicated(cfg):
        b = cfg.bench
        key |= {"world_seeds": b.world_seeds, "model_seeds": b.model_seeds, "folds": b.folds}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"bench-{cfg.bench.dataset}-{digest}"


# ---- replication: world seeds x scoring-model seeds x query folds --------------------------


def is_replicated(cfg: SieConfig) -> bool:
    b = cfg.bench
    return b.folds >= 2 or bool(b.world_seeds) or bool(b.model_seeds)


@dataclass(frozen=True)
class Replica:
    """One sub-run of a replicated run: its world seed, scoring-model seed and held-out query fold."""

    world_seed: int
    model_seed: int
    fold: int | None  # None: the world's fixed holdout

    def config(self, cfg: SieConfig) -> SieConfig:
        """``cfg`` for this sub-run alone (replication settings cleared, so it is a plain run)."""
        folds = cfg.bench.folds if self.fold is not None else 0
        return dataclasses.replace(
            cfg,
            simulate=dataclasses.replace(
                cfg.simulate, seed=self.world_seed, holdout_folds=folds, holdout_fold=self.fold or 0
            ),
            train=dataclasses.replace(cfg.train, seed=self.model_seed),
            bench=dataclasses.replace(cfg.bench, folds=0, world_seeds=[], model_seeds=[], run_id=""),
        )


def replicas(cfg: SieConfig) -> list[Replica]:
    """Every (world seed, model seed, fold) of ``cfg.bench``, world-major."""
    b = cfg.bench
    worlds = list(dict.fromkeys(int(s) for s in b.world_seeds)) or [cfg.simulate.seed]
    models = list(dict.fromkeys(int(s) for s in b.model_seeds)) or [cfg.train.seed]
    folds: list[int | None] = list(range(b.folds)) if b.folds >= 2 else [None]
    return [Replica(w, m, f) for w in worlds for m in models for f in folds]


@dataclass
class ReplicatedRun:
    """Sub-runs (plain :class:`BenchRun` each) whose rows are pooled into the partition ``run_id``.

    Folds of one (world seed, model seed) are pooled over all their held-out queries; with
    more than one (world seed, model seed) *replicate* the published cells are one value per
    replicate (the mean over cell seeds), so CIs and paired tests run over replicates.
    """

    cfg: SieConfig
    run_id: str
    root: Path  # the replicated run's own folder (its plan)
    runs: list[tuple[Replica, BenchRun]]

    @property
    def dataset(self) -> str:
        return self.cfg.bench.dataset

    def roots(self) -> list[Path]:
        return [self.root] + [run.root for _, run in self.runs]


def resolve_replicated(cfg: SieConfig) -> ReplicatedRun:
    run_id = cfg.bench.run_id or default_run_id(cfg)
    _check_run_id(run_id)
    runs = [(r, resolve(r.config(cfg))) for r in replicas(cfg)]
    return ReplicatedRun(cfg, run_id, cfg.warehouse_path / "bench" / run_id, runs)


def resolve_any(cfg: SieConfig) -> BenchRun | ReplicatedRun:
    """The replicated run when ``cfg.bench`` asks for replication, else the plain run."""
    return resolve_replicated(cfg) if is_replicated(cfg) else resolve(cfg)


def _check_run_id(run_id: str) -> None:
    if not run_id.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ValueError(f"run_id may hold only letters, digits, '-', '_' and '.', got {run_id!r}")


def resolve(cfg: SieConfig) -> BenchRun:
    """The benchmark run that ``cfg.bench`` describes (validates the settings and the grid).

    A replicated setting (``bench.world_seeds`` / ``model_seeds`` / ``folds``) is a set of
    runs: :func:`resolve_replicated`.
    """
    from sie.importance import REGISTRY

    b = cfg.bench
    if is_replicated(cfg):
        raise ValueError(
            "bench.world_seeds / bench.model_seeds / bench.folds describe several runs: "
            "use `sie bench` (sie.bench.runner.run_benchmark) or the sie_benchmark DAG (sie.bench.params_runs)"
        )
    if b.dataset not in DATASETS:
        raise ValueError(f"bench.dataset must be one of {DATASETS}, got {b.dataset!r}")
    run_id = b.run_id or default_run_id(cfg)
    _check_run_id(run_id)
    grid = Grid.from_config(b.grid, cfg.importance.methods)
    unknown = [m for m in grid.methods if m not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown importance methods {unknown}; known: {sorted(REGISTRY)}")
    try:
        days = Ds.span(b.start, b.days)
    except ValueError as exc:
        raise ValueError(f"bench.start/bench.days: {exc}") from exc
    root = cfg.warehouse_path / "bench" / run_id
    data_cfg = dataclasses.replace(
        cfg,
        warehouse=str(root / "warehouse"),
        source="simulator",
        simulate=dataclasses.replace(cfg.simulate, world=b.dataset),
        train=dataclasses.replace(cfg.train, window_days=b.days),
    )
    return BenchRun(cfg, data_cfg, run_id, root, days, grid)
