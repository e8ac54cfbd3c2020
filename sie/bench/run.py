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
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sie.bench.rows import RUN_METHOD
from sie.config import SieConfig
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

    def cell_path(self, cell: Cell) -> Path:
        return self.root / "cells" / f"{cell.key()}.parquet"

    def cells(self) -> list[Cell]:
        return self.grid.cells()

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
            "cells": [dataclasses.asdict(c) for c in self.cells()],
            "root": str(self.root),
        }


def run_key(cfg: SieConfig) -> dict[str, Any]:
    """The settings that determine the run's data, model and scores (hashed into run_id)."""
    b = cfg.bench
    sim = dataclasses.asdict(cfg.simulate) | {"world": b.dataset}
    ingest = {
        k: v
        for k, v in dataclasses.asdict(cfg.ingest).items()
        if k not in ("spark_master", "shuffle_partitions", "landed_bytes_per_partition", "rows_per_file")
    }
    train = {k: v for k, v in dataclasses.asdict(cfg.train).items() if k != "device"} | {"window_days": b.days}
    importance = {k: v for k, v in dataclasses.asdict(cfg.importance).items() if k not in ("methods", "batch_size")}
    return {
        "dataset": b.dataset,
        "start": b.start,
        "days": b.days,
        "simulate": sim,
        "ingest": ingest,
        "train": train,
        "importance": importance,
    }


def default_run_id(cfg: SieConfig) -> str:
    digest = hashlib.sha256(json.dumps(run_key(cfg), sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"bench-{cfg.bench.dataset}-{digest}"


def resolve(cfg: SieConfig) -> BenchRun:
    """The benchmark run that ``cfg.bench`` describes (validates the settings and the grid)."""
    from sie.importance import REGISTRY

    b = cfg.bench
    if b.dataset not in DATASETS:
        raise ValueError(f"bench.dataset must be one of {DATASETS}, got {b.dataset!r}")
    run_id = b.run_id or default_run_id(cfg)
    if not run_id.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ValueError(f"run_id may hold only letters, digits, '-', '_' and '.', got {run_id!r}")
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
