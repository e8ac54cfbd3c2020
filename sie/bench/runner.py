"""A benchmark run: prepare (simulate → ingest → validate) → train → score → cells → assemble.

Each step reuses the daily steps (``sie.steps``) on the run's own warehouse, and the one
retrain grid of ``sie.selection``. A step's output is a file under the run's root written
atomically when the step finishes; a rerun skips every step and cell whose file exists.
``assemble`` publishes all rows of the current grid as the ``benchmark_results`` partition
``run_id=<run_id>`` of the main warehouse in one atomic swap, and ``sie.bench.report``
renders the report from that partition alone.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from sie.bench.rows import (
    NO_FOLD,
    QUERY_NDCG,
    cost_rows,
    noise_rows,
    pooled_rows,
    power_rows,
    rows_frame,
    run_rows,
    run_settings,
)
from sie.bench.run import BenchRun, ReplicatedRun, is_replicated, resolve, resolve_replicated
from sie.config import SieConfig
from sie.files import atomic_path, write_json_atomic
from sie.model.training import train_ranker
from sie.model.window import TrainingWindow
from sie.selection.grid import Cell
from sie.selection.retrain import CellData, EvalSet, cell_rows, within_budget
from sie.selection.retrain import run_cell as retrain_cell
from sie.steps import daily
from sie.steps.scoring import publish_scores, read_scores, score_method
from sie.steps.window import load_evalset, load_window, oracle_truth
from sie.store import Warehouse

log = logging.getLogger(__name__)


def _set_threads(run: BenchRun) -> None:
    """Apply bench.torch_threads, so that training, scoring and cells run under the same setting."""
    if run.cfg.bench.torch_threads > 0:
        import torch

        torch.set_num_threads(run.cfg.bench.torch_threads)


def _write_rows(path, rows: list[dict], **model_ids: str | None) -> None:
    """Write rows atomically; ``model_ids`` (model_id, score_model_id) fill those columns where unset."""
    for r in rows:
        for key, value in model_ids.items():
            r.setdefault(key, value)
    with atomic_path(path) as tmp:
        rows_frame(rows).to_parquet(tmp, index=False)


# ---- prepare and train ------------------------------------------------------------


def prepare(run: BenchRun) -> dict:
    """Simulate, ingest and validate every day of the run (in order; finished days are skipped)."""
    done = []
    for day in run.days:
        marker = run.state(f"day-{day}.json")
        if marker.exists():
            log.info("%s: day %s already prepared", run.run_id, day)
            done.append(json.loads(marker.read_text()))
            continue
        sim = daily.simulate(run.data_cfg, day)
        ing = daily.ingest(run.data_cfg, day)
        if run.cfg.bench.validate:
            daily.validate(run.data_cfg, day)
        summary = {"ds": day, "simulate": {k: v for k, v in sim.items() if k != "paths"}, "ingest": ing}
        write_json_atomic(marker, summary)
        done.append(summary)
    return {"run_id": run.run_id, "days": done}


def train(run: BenchRun) -> dict:
    """Train the scoring model on the whole run window; write the run-level rows."""
    marker = run.state("trained.json")
    if marker.exists() and run.run_rows_path.exists():
        log.info("%s: model already trained", run.run_id)
        return json.loads(marker.read_text())
    _set_threads(run)
    meta = daily.train(run.data_cfg, run.last_day)
    write_json_atomic(marker, meta)
    window = load_window(run.data_cfg, run.last_day)
    truth = oracle_for_training(run, window)
    rows = run_rows(
        days=len(run.days),
        n_train=meta["n_train"],
        n_validation=meta["n_validation"],
        train_seconds=meta["train_seconds"],
        epochs=meta["epochs"],
        seed=run.data_cfg.train.seed,
        settings=run_settings(run.data_cfg.simulate, run.data_cfg.train),
        noise_counts=None if truth is None else truth["noise_type"].value_counts().to_dict(),
        noise_rate=None if truth is None else truth["is_noise"].mean(),
        oracle_coverage=None if truth is None else truth["matched"].mean(),
    )
    if truth is not None:  # the random reference: uniform scores detect noise at chance level
        scores = np.random.default_rng(run.data_cfg.train.seed).random(len(truth))
        rows += _noise_rows(run, "random", scores, truth, meta["n_train"], 0.0)
    _write_rows(run.run_rows_path, rows, model_id=run.score_model)
    return meta


def oracle_for_training(run: BenchRun, window: TrainingWindow) -> pd.DataFrame | None:
    """Ground truth (noise_type, is_noise, matched) aligned with the window's training samples; None without an oracle."""
    return oracle_truth(Warehouse.from_config(run.data_cfg), list(run.days), window.train_frame)


def _noise_rows(run: BenchRun, method: str, scores: np.ndarray, truth: pd.DataFrame, n_train: int, seconds: float):
    return noise_rows(
        method,
        scores,
        truth,
        roc_points=run.cfg.bench.roc_points,
        seed=run.data_cfg.train.seed,
        n_train=n_train,
        score_seconds=seconds,
    )


# ---- score -------------------------------------------------------------------------


def score(run: BenchRun, method: str, keep: dict[str, np.ndarray] | None = None) -> dict:
    """Score the run's training samples with ``method``; publish them; write its cost and noise rows.

    ``keep``, when given, receives the scores in memory (``run_benchmark`` hands them to the cells).
    """
    path = run.method_rows_path(method)
    if path.exists():
        log.info("%s: %s already scored", run.run_id, method)
        return {"method": method, "cached": True}
    _set_threads(run)
    window = load_window(run.data_cfg, run.last_day)
    before = reference_epoch_seconds(window, run)
    scored = score_method(run.data_cfg, run.last_day, method, window)
    publish_scores(run.data_cfg, scored)
    if run.cfg.bench.validate:
        daily.validate(run.data_cfg, run.last_day, "importance_scores")
    epoch_seconds = (before + reference_epoch_seconds(window, run)) / 2
    seconds, n = float(scored.cost["seconds"]), scored.cost["n"]
    rows = cost_rows(
        method,
        score_seconds=seconds,
        samples_per_second=float(scored.cost["samples_per_second"]),
        reference_epoch_seconds=epoch_seconds,
        seed=run.data_cfg.train.seed,
        n_train=n,
    )
    truth = oracle_for_training(run, window)
    if truth is not None:
        rows += _noise_rows(run, method, scored.scores, truth, n, seconds)
    _write_rows(path, rows, model_id=run.score_model, score_model_id=run.score_model)
    if keep is not None:
        keep[method] = scored.scores
    log.info("%s: scored %s in %.1fs (%.2f epochs)", run.run_id, method, seconds, seconds / max(epoch_seconds, 1e-9))
    return {"method": method, **scored.cost}


def reference_epoch_seconds(window: TrainingWindow, run: BenchRun) -> float:
    """Wall time of one plain training epoch of a fresh ranker over the window's training samples.

    Timed in the same process and under the same thread setting as the scoring it is
    compared with (``score`` times it just before and just after, and uses the mean), so
    ``cost_vs_epoch`` is not skewed by load that varies between steps. For a transformer,
    whose epoch costs as much as several methods, the mean epoch of its own training is used.
    """
    cfg = run.data_cfg
    if cfg.train.model != "mlp":
        meta = json.loads(run.state("trained.json").read_text())
        return float(meta["train_seconds"]) / max(int(meta["epochs"]), 1)
    one = dataclasses.replace(cfg.train, epochs=1)
    return float(train_ranker(window.train, one, keep_checkpoints=False).seconds)


# ---- cells -------------------------------------------------------------------------


@dataclass
class CellInputs:
    """What every cell of a run shares, built once per process: the window, the eval set, scores."""

    run: BenchRun
    window: TrainingWindow
    evalset: EvalSet
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    score_seconds: dict[str, float] = field(default_factory=dict)

    def scores_for(self, method: str) -> dict[str, np.ndarray]:
        if method not in self.scores:
            self.scores[method] = read_scores(self.run.data_cfg, self.window, method)
            rows = self.run.method_rows_path(method)
            cost = pd.read_parquet(rows) if rows.exists() else None
            self.score_seconds[method] = float(cost["score_seconds"].iloc[0]) if cost is not None and len(cost) else 0.0
        return self.scores


def cell_inputs(run: BenchRun) -> CellInputs:
    """The window and eval set encoded for the retrained ranker (scores align by sample, not encoding)."""
    window = load_window(run.retrain_cfg, run.last_day)
    return CellInputs(run, window, load_evalset(run.retrain_cfg, window, per_query=True))


def run_cell(run: BenchRun, cell: Cell, inputs: CellInputs | None = None) -> dict:
    """Select, retrain from scratch and evaluate one cell; skipped when its file exists."""
    path = run.cell_path(cell)
    if path.exists():
        log.info("%s: cell %s keep=%.2f seed=%d already done", run.run_id, cell.method, cell.keep_ratio, cell.seed)
        return {**dataclasses.asdict(cell), "cached": True}
    _set_threads(run)
    inputs = inputs or cell_inputs(run)
    scores = {} if cell.is_baseline else inputs.scores_for(cell.method)
    w = inputs.window
    train_cfg = run.retrain_cfg.train
    budget = run.retrain_cfg.bench.grid.max_train_samples
    data = within_budget(CellData(w.train, w.train_frame["query_text"], scores), budget)
    metrics = retrain_cell(cell, data.train, data.strata, inputs.evalset, train_cfg, data.scores)
    seconds = inputs.score_seconds.get(cell.method, 0.0)
    _write_rows(path, cell_rows(cell, metrics, seconds, model_id=run.retrain_model, score_model_id=run.score_model))
    return {**dataclasses.asdict(cell), "cached": False, "ndcg_at_10": metrics["ndcg_at_10"]}


# ---- assemble and the whole run -------------------------------------------------------


def run_results(run: BenchRun) -> pd.DataFrame:
    """Every row of the run's current grid (run, method and cell rows); an error when a step is missing."""
    missing = [c for c in run.cells() if not run.cell_path(c).exists()]
    missing_methods = [m for m in run.grid.methods if not run.method_rows_path(m).exists()]
    if missing or missing_methods or not run.run_rows_path.exists():
        raise RuntimeError(
            f"run {run.run_id} is incomplete: {len(missing)} cells missing (e.g. {missing[:3]}), "
            f"methods not scored: {missing_methods}, run rows: {run.run_rows_path.exists()}"
        )
    paths = [run.run_rows_path] + [run.method_rows_path(m) for m in run.grid.methods]
    paths += [run.cell_path(c) for c in run.cells()]
    return pd.concat([rows_frame(pd.read_parquet(p).to_dict("records")) for p in paths], ignore_index=True)


def _publish(cfg: SieConfig, run_id: str, dataset: str, ds: str, rows: pd.DataFrame) -> Path:
    result = rows.assign(dataset=dataset, ds=ds, created_at=datetime.now(UTC))
    table = pa.Table.from_pandas(result, preserve_index=False)
    path = Warehouse.from_config(cfg).write_partition("benchmark_results", {"run_id": run_id}, table)
    log.info("%s: published %d rows to %s", run_id, len(result), path)
    return path


def assemble(run: BenchRun) -> dict:
    """Publish every row of the current grid, plus the per-query power rows, as
    ``benchmark_results/run_id=<run_id>`` (atomically)."""
    result = run_results(run)
    query_cells = _with_replica(result[result["metric"] == QUERY_NDCG], run)
    power = power_rows(query_cells, run.cfg.bench.alpha, run.cfg.bench.power)
    if power:  # none for cells made before per-query NDCG existed
        result = pd.concat([result, rows_frame(power)], ignore_index=True)
    path = _publish(run.cfg, run.run_id, run.dataset, run.last_day, result)
    write_json_atomic(run.root / "plan.json", run.plan())
    return {"run_id": run.run_id, "rows": len(result), "cells": len(run.cells()), "path": str(path)}


def _with_replica(rows: pd.DataFrame, run: BenchRun) -> pd.DataFrame:
    """``rows`` with the sub-run's world seed, scoring-model seed and query fold as columns."""
    sim = run.data_cfg.simulate
    fold = sim.holdout_fold if sim.holdout_folds else NO_FOLD
    return rows.assign(world_seed=sim.seed, model_seed=run.data_cfg.train.seed, fold=fold)


def assemble_replicated(rep: ReplicatedRun) -> dict:
    """Publish the pooled rows of every sub-run (:func:`sie.bench.rows.pooled_rows`) as
    ``benchmark_results/run_id=<replicated run id>`` (each sub-run has its own partition too)."""
    results = pd.concat([_with_replica(run_results(run), run) for _, run in rep.runs], ignore_index=True)
    b = rep.cfg.bench
    rows = pooled_rows(results, b.alpha, b.power)
    last_day = max(run.last_day for _, run in rep.runs)
    path = _publish(rep.cfg, rep.run_id, rep.dataset, last_day, rows)
    plan = {"run_id": rep.run_id, "sub_runs": [{**dataclasses.asdict(r), "run_id": run.run_id} for r, run in rep.runs]}
    write_json_atomic(rep.root / "plan.json", plan)
    return {"run_id": rep.run_id, "rows": len(rows), "sub_runs": len(rep.runs), "path": str(path)}


_WORKER_INPUTS: dict[str, CellInputs] = {}


def _cell_worker(cfg_dict: dict, cell: dict) -> dict:
    """A pool worker's cell: the run's inputs are built once per worker process."""
    run = resolve(SieConfig.load(json.loads(json.dumps(cfg_dict))))
    inputs = _WORKER_INPUTS.get(run.run_id) or _WORKER_INPUTS.setdefault(run.run_id, cell_inputs(run))
    return run_cell(run, Cell(**cell), inputs)


def _run_cells(run: BenchRun, cfg: SieConfig, todo: list[Cell], workers: int, scores: dict) -> None:
    if workers > 1 and len(todo) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
            list(pool.map(_cell_worker, [cfg.to_dict()] * len(todo), [dataclasses.asdict(c) for c in todo]))
        return
    inputs = cell_inputs(run)
    for method, values in scores.items():  # scored in this process: no read back
        inputs.scores[method] = values
        inputs.score_seconds[method] = float(pd.read_parquet(run.method_rows_path(method))["score_seconds"].iloc[0])
    for n, cell in enumerate(todo, 1):
        log.info("[%d/%d]", n, len(todo))
        run_cell(run, cell, inputs)


def run_benchmark(cfg: SieConfig, workers: int = 1, report: bool = True) -> dict:
    """The whole benchmark run in this process (``sie bench``); finished steps are skipped.

    A replicated setting runs every sub-run in turn (each published as its own run too) and
    publishes and reports the pooled run.
    """
    if not is_replicated(cfg):
        return _run_and_report(cfg, resolve(cfg), workers, report)
    rep = resolve_replicated(cfg)
    start = time.perf_counter()
    log.info("replicated run %s: %d sub-runs %s", rep.run_id, len(rep.runs), [r for r, _ in rep.runs])
    sub_runs = [_run_and_report(run.cfg, run, workers, report=False) for _, run in rep.runs]
    out = assemble_replicated(rep) | {"sub_run_ids": [s["run_id"] for s in sub_runs]}
    if report:
        from sie.bench.report import build_report

        out["report"] = str(build_report(cfg, rep.run_id))
    out["seconds"] = time.perf_counter() - start
    return out


def _run_and_report(cfg: SieConfig, run: BenchRun, workers: int, report: bool) -> dict:
    start = time.perf_counter()
    g = run.grid
    log.info(
        "run %s: %s, days %s..%s, methods %s, baselines %s, keep ratios %s, seeds %s: %d cells under %s",
        run.run_id, run.dataset, run.days[0], run.last_day, list(g.methods), list(g.baselines),
        list(g.keep_ratios), list(g.seeds), len(run.cells()), run.root,
    )  # fmt: skip
    prepare(run)
    train(run)
    scores: dict[str, np.ndarray] = {}
    for method in g.methods:
        score(run, method, keep=scores)
    todo = [c for c in run.cells() if not run.cell_path(c).exists()]
    log.info("%d of %d cells already done; %d to run", len(run.cells()) - len(todo), len(run.cells()), len(todo))
    _run_cells(run, cfg, todo, workers, scores)
    out = assemble(run)
    if report:
        from sie.bench.report import build_report

        out["report"] = str(build_report(cfg, run.run_id))
    out["seconds"] = time.perf_counter() - start
    return out
