"""A benchmark run: simulate → ingest → validate → train → score → cells → publish.

One run is identified by ``run_id`` (default ``bench-<dataset>-<hash>``, the hash over
every setting that changes the data, the model or the scores, but *not* over the grid
of methods / keep ratios / seeds, so a grid can be extended and only the new cells are
computed). Its files live under ``<warehouse>/bench/<run_id>/``::

    warehouse/                 the run's own warehouse: raw logs, oracle, samples, model,
                               importance_scores (never mixed with the nightly tables)
    state/                     markers of finished steps (a rerun skips them)
    rows/_run.parquet          run-level rows: scale, settings, noise shares, epoch time
    rows/method-<m>.parquet    per-method rows: cost, noise-detection AUROC/AP/ROC, score
                               distribution by noise type
    cells/<m>-<ratio>-<seed>.parquet   one (method, keep ratio, seed) cell's metrics

A cell file is written atomically when the cell finishes; a rerun skips every cell
whose file exists. ``assemble`` publishes all rows of the current grid as the
``benchmark_results`` partition ``run_id=<run_id>`` of the main warehouse in one
atomic swap, and ``sie.bench.report`` renders the report from that partition alone.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sie.config import SieConfig
from sie.schemas import BENCHMARK_RESULTS

BASELINES = ("random", "stratified", "full")
RUN_METHOD = "_run"  # the `method` of run-level rows
# numeric settings copied into the run rows, so the report can state the scale from the table alone
SIM_KEYS = (
    "seed",
    "n_items",
    "n_users",
    "n_intents",
    "requests_per_day",
    "impressions_per_request",
    "bot_rate",
    "accidental_click_rate",
    "clickbait_item_rate",
    "duplicate_event_rate",
    "label_flip_rate",
)
TRAIN_KEYS = ("epochs", "batch_size", "lr", "embedding_dim", "hidden_dim", "vocab_size", "seed")
SCORE_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def _log(msg: str) -> None:
    print(f"[sie] bench: {msg}", flush=True)


# ---- the run ------------------------------------------------------------------


@dataclass
class BenchRun:
    cfg: SieConfig  # the main config (its warehouse receives benchmark_results and reports)
    data_cfg: SieConfig  # the run's own config (warehouse = root/warehouse)
    run_id: str
    root: Path
    days: list[str]
    methods: list[str]  # scored importance methods
    baselines: list[str]
    keep_ratios: list[float]  # ratios < 1 (1.0 is the `full` baseline)
    seeds: list[int]

    @property
    def dataset(self) -> str:
        return self.cfg.bench.dataset

    @property
    def last_day(self) -> str:
        return self.days[-1]

    def state(self, name: str) -> Path:
        return self.root / "state" / name

    def method_rows_path(self, method: str) -> Path:
        return self.root / "rows" / f"method-{method}.parquet"

    @property
    def run_rows_path(self) -> Path:
        return self.root / "rows" / f"{RUN_METHOD}.parquet"

    def cell_path(self, method: str, keep_ratio: float, seed: int) -> Path:
        return self.root / "cells" / f"{method}-{keep_ratio:.4f}-{seed}.parquet"

    def cells(self) -> list[dict[str, Any]]:
        """Every (method, keep_ratio, seed) cell of the grid, seed-major."""
        out = []
        for seed in self.seeds:
            if "full" in self.baselines:
                out.append({"method": "full", "keep_ratio": 1.0, "seed": seed})
            for ratio in self.keep_ratios:
                for name in [b for b in self.baselines if b != "full"] + self.methods:
                    out.append({"method": name, "keep_ratio": ratio, "seed": seed})
        return out

    def plan(self) -> dict[str, Any]:
        """JSON-able summary (the DAG passes it between tasks)."""
        return {
            "run_id": self.run_id,
            "dataset": self.dataset,
            "days": self.days,
            "methods": self.methods,
            "baselines": self.baselines,
            "keep_ratios": self.keep_ratios,
            "seeds": self.seeds,
            "cells": self.cells(),
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
    """The benchmark run that ``cfg.bench`` describes (validates the grid)."""
    from sie.importance import REGISTRY
    from sie.train import window_days

    b = cfg.bench
    if b.dataset not in ("synthetic", "esci"):
        raise ValueError(f"bench.dataset must be synthetic or esci, got {b.dataset!r}")
    if b.days < 1:
        raise ValueError(f"bench.days must be >= 1, got {b.days}")
    run_id = b.run_id or default_run_id(cfg)
    if not run_id.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ValueError(f"run_id may hold only letters, digits, '-', '_' and '.', got {run_id!r}")
    methods = [m for m in (b.methods or cfg.importance.methods) if m not in BASELINES]
    methods = list(dict.fromkeys(methods))
    unknown = [m for m in methods if m not in REGISTRY]
    if unknown:
        raise ValueError(f"unknown importance methods {unknown}; known: {sorted(REGISTRY)}")
    baselines = list(dict.fromkeys(b.grid_baselines))
    if any(x not in BASELINES for x in baselines):
        raise ValueError(f"bench.grid_baselines must be among {BASELINES}, got {baselines}")
    # "random" in the methods list means the random baseline
    if "random" in (b.methods or []) and "random" not in baselines:
        baselines.insert(0, "random")
    ratios = sorted({float(r) for r in b.grid_keep_ratios})
    if any(not 0.0 < r <= 1.0 for r in ratios):
        raise ValueError(f"keep ratios must be in (0, 1], got {ratios}")
    if 1.0 in ratios and "full" not in baselines:
        baselines.append("full")
    seeds = list(dict.fromkeys(int(s) for s in b.grid_seeds))
    if not seeds:
        raise ValueError("bench.grid_seeds is empty")
    root = cfg.warehouse_path / "bench" / run_id
    try:
        first = date.fromisoformat(str(b.start))
    except ValueError as exc:
        raise ValueError(f"bench.start must be YYYY-MM-DD, got {b.start!r}") from exc
    days = window_days((first + timedelta(days=b.days - 1)).isoformat(), b.days)
    data_cfg = dataclasses.replace(
        cfg,
        warehouse=str(root / "warehouse"),
        source="simulator",
        simulate=dataclasses.replace(cfg.simulate, world=b.dataset),
        train=dataclasses.replace(cfg.train, window_days=b.days),
    )
    return BenchRun(cfg, data_cfg, run_id, root, days, methods, baselines, [r for r in ratios if r < 1.0], seeds)


def config_from_params(params: dict | None) -> SieConfig:
    """The DAG run's config: defaults + env + ``config`` overrides + the grid params."""
    params = json.loads(json.dumps(params or {}))
    overrides = params.get("config") or {}
    bench = overrides.setdefault("bench", {})
    if params.get("model"):  # the ranker's TrainConfig overrides, e.g. {"epochs": 4, "hidden_dim": 64}
        overrides.setdefault("train", {}).update(params["model"])

    def listed(value):
        return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else list(value)

    mapping = {
        "dataset": "dataset",
        "start": "start",
        "days": "days",
        "methods": "methods",
        "keep_ratios": "grid_keep_ratios",
        "seeds": "grid_seeds",
        "baselines": "grid_baselines",
        "run_id": "run_id",
    }
    for param, key in mapping.items():
        value = params.get(param)
        if value is None or value == "" or value == []:
            continue
        if key in ("methods", "grid_keep_ratios", "grid_seeds", "grid_baselines"):
            value = listed(value)
            if key == "grid_keep_ratios":
                value = [float(v) for v in value]
            if key == "grid_seeds":
                value = [int(v) for v in value]
        bench[key] = value
    return SieConfig.load(overrides)


# ---- steps ----------------------------------------------------------------------


def _set_threads(run: BenchRun) -> None:
    """Apply bench.torch_threads, so that training, scoring and cells run under the same setting."""
    if run.cfg.bench.torch_threads > 0:
        import torch

        torch.set_num_threads(run.cfg.bench.torch_threads)


def _write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def _write_rows_atomic(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = rows_frame(rows)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def rows_frame(rows: list[dict]) -> pd.DataFrame:
    """Rows as a frame with exactly the benchmark_results columns (missing → null)."""
    frame = pd.DataFrame(rows)
    for col in BENCHMARK_RESULTS.columns:
        if col not in frame:
            frame[col] = None
    frame = frame[BENCHMARK_RESULTS.columns]
    for col in ("keep_ratio", "value", "train_seconds", "score_seconds"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    for col in ("seed", "n_train"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("Int64")
    return frame


def prepare(run: BenchRun) -> dict:
    """Simulate, ingest and validate every day of the run (in order; finished days are skipped)."""
    from sie import pipeline

    done = []
    for day in run.days:
        marker = run.state(f"day-{day}.json")
        if marker.exists():
            _log(f"{run.run_id}: day {day} already prepared")
            done.append(json.loads(marker.read_text()))
            continue
        sim = pipeline.simulate(run.data_cfg, day)
        ing = pipeline.ingest(run.data_cfg, day)
        if run.cfg.bench.validate:
            pipeline.validate(run.data_cfg, day)
        summary = {"ds": day, "simulate": {k: v for k, v in sim.items() if k != "paths"}, "ingest": ing}
        _write_json_atomic(marker, summary)
        done.append(summary)
    return {"run_id": run.run_id, "days": done}


def train(run: BenchRun) -> dict:
    """Train the scoring model on the whole run window; write the run-level rows."""
    from sie.train import train_day

    marker = run.state("trained.json")
    if marker.exists() and run.run_rows_path.exists():
        _log(f"{run.run_id}: model already trained")
        return json.loads(marker.read_text())
    _set_threads(run)
    meta = train_day(run.data_cfg, run.last_day, progress=True)
    _write_json_atomic(marker, meta)
    _write_run_rows(run, meta)
    return meta


def _write_run_rows(run: BenchRun, meta: dict) -> None:
    rows: list[dict] = []
    epoch_seconds = meta["train_seconds"] / max(meta["epochs"], 1)

    def add(metric: str, value: float, method: str = RUN_METHOD, **extra) -> None:
        rows.append(
            {
                "method": method,
                "metric": metric,
                "value": float(value),
                "seed": run.data_cfg.train.seed,
                "n_train": meta["n_train"],
                "train_seconds": meta["train_seconds"],
                **extra,
            }
        )

    add("days", len(run.days))
    add("n_train", meta["n_train"])
    add("n_validation", meta["n_validation"])
    add("epoch_seconds", epoch_seconds)
    add("train_seconds", meta["train_seconds"])
    for key in SIM_KEYS:
        add(f"simulate[{key}]", getattr(run.data_cfg.simulate, key))
    for key in TRAIN_KEYS:
        add(f"train[{key}]", getattr(run.data_cfg.train, key))
    truth = oracle_for_training(run)
    if truth is not None:
        add("noise_rate", truth["is_noise"].mean())
        add("oracle_coverage", truth["matched"].mean())
        for noise_type, count in truth["noise_type"].value_counts().items():
            add(f"n_samples[{noise_type}]", count)
        # the random reference: uniform scores detect noise at chance level
        scores = np.random.default_rng(run.data_cfg.train.seed).random(len(truth))
        rows += _noise_rows(run, "random", scores, truth, meta["n_train"], score_seconds=0.0)
    _write_rows_atomic(run.run_rows_path, rows)


def oracle_for_training(run: BenchRun) -> pd.DataFrame | None:
    """Ground truth (noise_type, is_noise) aligned with :func:`train_frame`; None without an oracle."""
    from sie.store import Warehouse

    wh = Warehouse.from_config(run.data_cfg)
    parts = []
    for day in run.days:
        path = wh.oracle_path(day)
        if path.exists():
            o = pd.read_parquet(path, columns=["sample_id", "noise_type", "is_noise"])
            parts.append(o.assign(sample_ds=day).drop_duplicates(["sample_id", "sample_ds"]))
    if not parts:
        return None
    oracle = pd.concat(parts, ignore_index=True)
    frame = train_frame(run)[["sample_id", "sample_ds"]]
    truth = frame.merge(oracle, on=["sample_id", "sample_ds"], how="left", validate="one_to_one")
    truth["matched"] = truth["noise_type"].notna()
    truth["noise_type"] = truth["noise_type"].fillna("unknown")
    truth["is_noise"] = truth["is_noise"].fillna(False).astype(bool)
    return truth


def _noise_rows(
    run: BenchRun, method: str, scores: np.ndarray, truth: pd.DataFrame, n_train: int, score_seconds: float
) -> list[dict]:
    """Noise-detection AUROC/AP, the ROC curve and the score distribution by noise type."""
    from sie.bench.metrics import noise_detection, rank_percentile

    rows: list[dict] = []
    seed = run.data_cfg.train.seed

    def add(metric: str, value: float) -> None:
        rows.append(
            {
                "method": method,
                "metric": metric,
                "value": float(value),
                "seed": seed,
                "n_train": n_train,
                "score_seconds": score_seconds,
            }
        )

    matched = truth["matched"].to_numpy()
    s, types = scores[matched], truth["noise_type"].to_numpy()[matched]
    det = noise_detection(s, truth["is_noise"].to_numpy()[matched], run.cfg.bench.roc_points)
    add("noise_auroc", det["auroc"])
    add("noise_ap", det["ap"])
    for fpr, tpr in zip(det["fpr"], det["tpr"]):
        add(f"noise_roc_tpr[fpr={fpr:.4f}]", tpr)
    clean = types == "none"
    for noise_type in sorted(set(types) - {"none", "unknown"}):
        this = types == noise_type
        sub = noise_detection(s[this | clean], this[this | clean], 2)
        add(f"noise_auroc[{noise_type}]", sub["auroc"])
    pct = rank_percentile(scores)[matched]
    for noise_type in sorted(set(types)):
        values = pct[types == noise_type]
        add(f"score_pct_mean[{noise_type}]", values.mean())
        for q, v in zip(SCORE_QUANTILES, np.quantile(values, SCORE_QUANTILES)):
            add(f"score_pct_q{int(round(q * 100)):02d}[{noise_type}]", v)
    return rows


def score(run: BenchRun, method: str) -> dict:
    """Score the run's training samples with ``method``; write its cost and noise rows."""
    from sie.importance.scoring import score_day

    path = run.method_rows_path(method)
    if path.exists():
        _log(f"{run.run_id}: {method} already scored")
        return {"method": method, "cached": True}
    _set_threads(run)
    before = reference_epoch_seconds(run)
    cost = score_day(run.data_cfg, run.last_day, method, validate=run.cfg.bench.validate)
    after = reference_epoch_seconds(run)
    epoch_seconds = (before + after) / 2
    seconds = float(cost["seconds"])
    rows = [
        {"method": method, "metric": "score_seconds", "value": seconds},
        {"method": method, "metric": "samples_per_second", "value": float(cost["samples_per_second"])},
        {"method": method, "metric": "reference_epoch_seconds", "value": epoch_seconds},
        {"method": method, "metric": "cost_vs_epoch", "value": seconds / max(epoch_seconds, 1e-9)},
    ]
    for r in rows:
        r.update(seed=run.data_cfg.train.seed, n_train=cost["n"], score_seconds=seconds)
    truth = oracle_for_training(run)
    if truth is not None:
        scores = method_scores(run, method)
        rows += _noise_rows(run, method, scores, truth, cost["n"], seconds)
    _write_rows_atomic(path, rows)
    _log(f"{run.run_id}: scored {method} in {seconds:.1f}s ({seconds / max(epoch_seconds, 1e-9):.2f} epochs)")
    return {"method": method, **cost}


def reference_epoch_seconds(run: BenchRun) -> float:
    """Wall time of one plain training epoch of a fresh ranker over all the run's training samples.

    Timed in the same process and under the same thread setting as the scoring it is
    compared with (``score`` times it just before and just after, and uses the mean), so
    ``cost_vs_epoch`` is not skewed by load that varies between steps.
    """
    from sie.train import train_ranker

    root = str(run.root)
    data = _cell_data(
        root,
        run.last_day,
        len(run.days),
        _samples_stamp(root, run.last_day),
        json.dumps(dataclasses.asdict(run.data_cfg.train)),
    )
    one = dataclasses.replace(run.data_cfg.train, epochs=1)
    return float(train_ranker(data.train, one, keep_checkpoints=False).seconds)


def method_scores(run: BenchRun, method: str) -> np.ndarray:
    """``method``'s published scores aligned with :func:`train_frame`."""
    from sie.store import Warehouse

    wh = Warehouse.from_config(run.data_cfg)
    table = wh.read_table("importance_scores", {"ds": [run.last_day], "method": [method]}).to_pandas()
    if table.empty:
        raise FileNotFoundError(f"no importance_scores for {method} in run {run.run_id}")
    frame = train_frame(run)
    key = pd.MultiIndex.from_frame(frame[["sample_id", "sample_ds"]])
    aligned = table.set_index(["sample_id", "sample_ds"])["score"].reindex(key).to_numpy(dtype=np.float64)
    if np.isnan(aligned).any():
        raise RuntimeError(f"{method} scores do not cover the training window of run {run.run_id}")
    return aligned


# ---- cells -----------------------------------------------------------------------


@dataclass
class _CellData:
    frame: pd.DataFrame  # training samples
    train: Any  # SampleTensors
    validation: Any
    holdout: Any


def _samples_stamp(root: str, last_day: str) -> float:
    path = Path(root) / "warehouse" / "tables" / "samples" / f"ds={last_day}"
    return path.stat().st_mtime if path.exists() else 0.0


@lru_cache(maxsize=1)
def _window(root: str, last_day: str, n_days: int, stamp: float) -> tuple[pd.DataFrame, np.ndarray]:
    """(window samples, validation mask); cached per process while the samples are unchanged."""
    from sie.store import Warehouse
    from sie.train import is_validation, load_window

    frame = load_window(Warehouse(Path(root) / "warehouse"), last_day, n_days)
    return frame, is_validation(frame["query_id"])


def window(run: BenchRun) -> tuple[pd.DataFrame, np.ndarray]:
    root = str(run.root)
    return _window(root, run.last_day, len(run.days), _samples_stamp(root, run.last_day))


def train_frame(run: BenchRun) -> pd.DataFrame:
    """The run window's training samples, in the order the model and the scores use."""
    frame, val_mask = window(run)
    return frame[~val_mask].reset_index(drop=True)


@lru_cache(maxsize=1)
def _cell_data(root: str, last_day: str, n_days: int, stamp: float, train_cfg_json: str) -> _CellData:
    from sie.bench.holdout import holdout_tensors, load_holdout
    from sie.config import TrainConfig
    from sie.features import encode_frame
    from sie.store import Warehouse

    tcfg = TrainConfig(**json.loads(train_cfg_json))
    frame, val_mask = _window(root, last_day, n_days, stamp)
    train_part = frame[~val_mask].reset_index(drop=True)
    return _CellData(
        frame=train_part,
        train=encode_frame(train_part, tcfg),
        validation=encode_frame(frame[val_mask].reset_index(drop=True), tcfg),
        holdout=holdout_tensors(load_holdout(Warehouse(Path(root) / "warehouse")), frame, tcfg),
    )


def run_cell(run: BenchRun, method: str, keep_ratio: float, seed: int) -> dict:
    """Select, retrain from scratch and evaluate one cell; skipped when its file exists."""
    from sie.bench.retrain import evaluate_cell
    from sie.bench.select import selection_mask

    path = run.cell_path(method, keep_ratio, seed)
    if path.exists():
        _log(f"{run.run_id}: cell {method} keep={keep_ratio:.2f} seed={seed} already done")
        return {"method": method, "keep_ratio": keep_ratio, "seed": seed, "cached": True}
    _set_threads(run)
    root = str(run.root)
    data = _cell_data(
        root,
        run.last_day,
        len(run.days),
        _samples_stamp(root, run.last_day),
        json.dumps(dataclasses.asdict(run.data_cfg.train)),
    )
    score_seconds = 0.0
    scores = None
    if method not in BASELINES:
        scores = method_scores(run, method)
        cost = pd.read_parquet(run.method_rows_path(method)) if run.method_rows_path(method).exists() else None
        if cost is not None and len(cost):
            score_seconds = float(cost["score_seconds"].iloc[0])
    mask = selection_mask(method, keep_ratio, seed, n=len(data.train), scores=scores, strata=data.frame["query_text"])
    start = time.perf_counter()
    metrics = evaluate_cell(data.train, mask, data.holdout, data.validation, run.data_cfg, seed)
    rows = [
        {
            "method": method,
            "keep_ratio": keep_ratio,
            "seed": seed,
            "metric": metric,
            "value": value,
            "n_train": int(metrics["n_train"]),
            "train_seconds": metrics["train_seconds"],
            "score_seconds": score_seconds,
        }
        for metric, value in metrics.items()
        if metric not in ("train_seconds", "n_train")
    ]
    _write_rows_atomic(path, rows)
    _log(
        f"{run.run_id}: cell {method} keep={keep_ratio:.2f} seed={seed}: ndcg@10={metrics['ndcg_at_10']:.4f} "
        f"({time.perf_counter() - start:.1f}s)"
    )
    return {
        "method": method,
        "keep_ratio": keep_ratio,
        "seed": seed,
        "cached": False,
        "ndcg_at_10": metrics["ndcg_at_10"],
    }


def assemble(run: BenchRun) -> dict:
    """Publish every row of the current grid as ``benchmark_results/run_id=<run_id>`` (atomically)."""
    import pyarrow as pa

    from sie.store import Warehouse

    missing = [c for c in run.cells() if not run.cell_path(c["method"], c["keep_ratio"], c["seed"]).exists()]
    missing_methods = [m for m in run.methods if not run.method_rows_path(m).exists()]
    if missing or missing_methods or not run.run_rows_path.exists():
        raise RuntimeError(
            f"run {run.run_id} is incomplete: {len(missing)} cells missing (e.g. {missing[:3]}), "
            f"methods not scored: {missing_methods}, run rows: {run.run_rows_path.exists()}"
        )
    parts = [pd.read_parquet(run.run_rows_path)]
    parts += [pd.read_parquet(run.method_rows_path(m)) for m in run.methods]
    parts += [pd.read_parquet(run.cell_path(c["method"], c["keep_ratio"], c["seed"])) for c in run.cells()]
    result = pd.concat([rows_frame(p.to_dict("records")) for p in parts], ignore_index=True)
    result["dataset"] = run.dataset
    result["ds"] = run.last_day
    result["created_at"] = datetime.now(UTC)
    wh = Warehouse.from_config(run.cfg)
    table = pa.Table.from_pandas(result, preserve_index=False)
    path = wh.write_partition("benchmark_results", {"run_id": run.run_id}, table)
    _write_json_atomic(run.root / "plan.json", run.plan())
    _log(f"{run.run_id}: published {len(result)} rows to {path}")
    return {"run_id": run.run_id, "rows": len(result), "cells": len(run.cells()), "path": str(path)}


# ---- everything, without Airflow ---------------------------------------------------


def _cell_worker(cfg_dict: dict, cell: dict) -> dict:
    cfg = SieConfig.load(_strip_for_load(cfg_dict))
    return run_cell(resolve(cfg), cell["method"], cell["keep_ratio"], cell["seed"])


def _strip_for_load(cfg_dict: dict) -> dict:
    return json.loads(json.dumps(cfg_dict))


def run_benchmark(cfg: SieConfig, workers: int = 1, report: bool = True) -> dict:
    """The whole benchmark run in this process (``sie bench``); finished steps are skipped."""
    run = resolve(cfg)
    start = time.perf_counter()
    _log(
        f"run {run.run_id}: {run.dataset}, days {run.days[0]}..{run.last_day}, methods {run.methods}, "
        f"baselines {run.baselines}, keep ratios {run.keep_ratios}, seeds {run.seeds}: "
        f"{len(run.cells())} cells under {run.root}"
    )
    prepare(run)
    train(run)
    for method in run.methods:
        score(run, method)
    cells = run.cells()
    todo = [c for c in cells if not run.cell_path(c["method"], c["keep_ratio"], c["seed"]).exists()]
    _log(f"{len(cells) - len(todo)} of {len(cells)} cells already done; {len(todo)} to run")
    if workers > 1 and len(todo) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
            for _ in pool.map(_cell_worker, [cfg.to_dict()] * len(todo), todo):
                pass
    else:
        for n, c in enumerate(todo, 1):
            _log(f"[{n}/{len(todo)}]")
            run_cell(run, c["method"], c["keep_ratio"], c["seed"])
    out = assemble(run)
    if report:
        from sie.bench.report import build_report

        out["report"] = str(build_report(cfg, run.run_id))
    out["seconds"] = time.perf_counter() - start
    return out
