"""The nightly pipeline's steps. The sie_daily DAG, `sie run`, the jobs and the benchmark call these.

Every step is idempotent for its ``ds`` (a :class:`sie.ds.Ds`; a string that crossed a task
boundary is validated again on entry):
rerunning replaces that day's outputs whole. Each returns a small JSON-able summary
(what Airflow passes between tasks).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from sie import faults
from sie.config import SieConfig
from sie.ds import Ds
from sie.log import setup, timed
from sie.store import Warehouse
from sie.validate.suites import INGEST_SUITES  # run right after ingest; a day failing one gates training

if TYPE_CHECKING:  # pragma: no cover
    from sie.config import TrainConfig
    from sie.model.features import SampleTensors
    from sie.selection.grid import Cell
    from sie.selection.retrain import CellData

log = logging.getLogger(__name__)


def resolve_day(params: dict | None, data_interval_start) -> Ds:
    """The DAG run's day: the ``ds`` param when given, else the data interval's start date (logged)."""
    setup(target="stdout")  # a DAG task: the task log records stdout as info
    param = (params or {}).get("ds")
    ds = Ds.resolve(param, data_interval_start)
    source = "the ds param" if param else f"data_interval_start={data_interval_start}"
    log.info("processing day ds=%s (from %s)", ds, source)
    return ds


def simulate(cfg: SieConfig, ds: Ds) -> dict:
    ds = Ds(ds)
    if cfg.source != "simulator":
        log.info("source=%s: not simulating ds=%s", cfg.source, ds)
        return {"skipped": True}
    from sie.simulate import simulate_day

    with timed(log, f"simulate ds={ds}"):
        return simulate_day(cfg, ds)


def ingest(cfg: SieConfig, ds: Ds) -> dict:
    ds = Ds(ds)
    from sie.ingest import ingest_day
    from sie.validate import forget_results

    with timed(log, f"ingest ds={ds}"):
        out = ingest_day(cfg, ds)
    forget_results(cfg, ds, INGEST_SUITES)  # new data: the old verdicts no longer apply until validated
    return out


def validate(cfg: SieConfig, ds: Ds, suites: str | tuple[str, ...] | list[str] = INGEST_SUITES) -> dict:
    """Run Great Expectations suites on ``ds`` in order, in one process (GX imports once)."""
    ds = Ds(ds)
    from sie.validate import validate as run_suite

    out = {}
    for name in [suites] if isinstance(suites, str) else list(suites):
        with timed(log, f"validate[{name}] ds={ds}"):
            out[name] = run_suite(cfg, ds, name)
    return out


def train(cfg: SieConfig, ds: Ds) -> dict:
    """Train the ranker on the window ending ``ds``; publish the model version.

    Under ``torchrun`` the ranks train data-parallel (sie.model.training) and rank 0 publishes.
    """
    ds = Ds(ds)
    from sie.model.distributed import all_gather_objects, init_from_env
    from sie.model.training import train_ranker
    from sie.steps.models import save_model
    from sie.steps.window import load_window, window_source

    faults.point("train.start")
    world = init_from_env()
    with timed(log, f"train ds={ds}"):
        source = window_source(cfg, ds)  # before the read (see window_source)
        window = load_window(cfg, ds)
        log.info(
            "train ds=%s: %d samples from %s (%d held out)", ds, len(window.train), window.days, window.n_validation
        )
        result = train_ranker(window.train, cfg.train, progress=world.is_main, world=world)
        meta = save_model(cfg, window, result, source) | {"world_size": world.size} if world.is_main else None
        return all_gather_objects(meta, world)[0]  # also keeps every rank until the version is published


def score(cfg: SieConfig, ds: Ds, method: str) -> dict:
    """One method's scores for ``ds``'s model, published (checked for shape and finiteness; the
    importance_scores suite runs once over all methods afterwards, see ``validate``)."""
    return score_all(cfg, ds, [method])[method].cost


def score_all(cfg: SieConfig, ds: Ds, methods: list[str]) -> dict:
    """Score and publish each method over one loaded window and model; ``{method: ScoredMethod}``."""
    ds = Ds(ds)
    from sie.steps.models import load_model
    from sie.steps.scoring import publish_scores, score_method
    from sie.steps.window import load_trained_window

    window, loaded = load_trained_window(cfg, ds), load_model(cfg, ds)
    out = {}
    for method in methods:
        with timed(log, f"score[{method}] ds={ds}"):
            out[method] = score_method(cfg, ds, method, window, loaded)
            publish_scores(cfg, out[method])
    return out


def evaluate(cfg: SieConfig, ds: Ds, scores: dict[str, np.ndarray] | None = None) -> dict:
    """Retrain on every cell of ``cfg.evaluate``'s grid and publish ``benchmark_results/run_id=daily-<ds>``.

    ``scores`` ({method: scores aligned with the window}) when the caller has them in
    memory; otherwise each method's published scores for ``ds`` are read. Without a judged
    holdout (landed real logs carry no relevance judgments) the cells are evaluated on the
    window's held-out clicks only, and the result says so.
    """
    ds = Ds(ds)
    from sie.selection.grid import Grid
    from sie.selection.retrain import CellData, cell_rows, cells_in_time, run_cells, within_budget
    from sie.steps.scoring import read_cost, read_scores
    from sie.steps.window import load_evalset, load_trained_window

    faults.point("evaluate.start")
    with timed(log, f"retrain+evaluate ds={ds}"):
        window = load_trained_window(cfg, ds)
        wh = Warehouse.from_config(cfg)
        grid = Grid.from_config(cfg.evaluate, cfg.importance.methods)
        scores = dict(scores or {})
        for method in grid.methods:
            if method not in scores:
                scores[method] = read_scores(cfg, window, method)
        seconds = {m: read_cost(cfg, ds, m).get("seconds", float("nan")) for m in grid.methods}
        data = within_budget(
            CellData(window.train, window.train_frame["query_text"], scores), cfg.evaluate.max_train_samples
        )
        planned, budget_s = grid.cells(), cfg.evaluate.max_seconds
        if wh.holdout_path.exists():
            evalset = load_evalset(cfg, window)
            cells = run_cells(planned, data.train, data.strata, evalset, cfg.train, data.scores, budget_s)
            note = None
        else:
            note = no_holdout_note(wh)
            log.warning("evaluate ds=%s: %s", ds, note)
            cells = click_only_cells(cells_in_time(planned, budget_s), window.validation, data, cfg.train)
        rows, done = [], 0
        for cell, metrics in cells:
            done += 1
            rows += cell_rows(
                cell, metrics, 0.0 if cell.is_baseline else seconds[cell.method], model_id=cfg.train.model
            )
        dataset = cfg.simulate.world if cfg.source == "simulator" else cfg.source
        frame = pd.DataFrame(rows).assign(dataset=dataset, ds=ds, created_at=datetime.now(UTC))
        wh.write_partition(
            "benchmark_results", {"run_id": f"daily-{ds}"}, pa.Table.from_pandas(frame, preserve_index=False)
        )
    budget = {"cells": done, "cells_skipped": len(planned) - done, "n_train": int(len(data.train))}
    return (
        {"rows": len(frame)} | budget | ({"judged_holdout": False, "note": note} if note else {"judged_holdout": True})
    )


def no_holdout_note(wh: Warehouse) -> str:
    """What the nightly evaluation does and cannot do without a judged holdout."""
    return (
        f"no judged holdout at {wh.holdout_path} (landed logs carry no relevance judgments): NDCG@10 and MRR "
        "are not measured; every cell was retrained as usual and evaluated on the window's held-out clicks "
        "only (click AUC / log loss, which also reward label noise); noise detection needs the simulator's "
        "oracle and is not measured either. `sie report --no-oracle` summarises what the scores show."
    )


def click_only_cells(
    cells: Iterable[Cell], validation: SampleTensors, data: CellData, train_cfg: TrainConfig
) -> Iterator[tuple[Cell, dict[str, float]]]:
    """Each cell retrained from scratch on its kept samples and evaluated on held-out clicks alone."""
    from sie.model.training import predict, train_ranker
    from sie.selection.metrics import click_metrics
    from sie.selection.retrain import cell_mask

    for cell in cells:
        subset = data.train.subset(np.nonzero(cell_mask(cell, data.train, data.strata, data.scores))[0])
        result = train_ranker(subset, train_cfg, seed=cell.seed, keep_checkpoints=False)
        metrics = click_metrics(validation.click.numpy(), predict(result.model, validation))
        log.info("cell %12s keep=%.2f seed=%d: click metrics %s", cell.method, cell.keep_ratio, cell.seed, metrics)
        yield cell, metrics | {"train_seconds": result.seconds, "n_train": float(len(subset))}


def report(cfg: SieConfig, ds: Ds) -> str:
    ds = Ds(ds)
    from sie.steps.report import write_daily_report

    wh = Warehouse.from_config(cfg)
    path = write_daily_report(cfg, ds, [] if wh.holdout_path.exists() else [no_holdout_note(wh)])
    log.info("report for ds=%s: %s", ds, path)
    return str(path)


def vacuum(cfg: SieConfig) -> dict[str, int]:
    """Bound the warehouse's storage: delete what no snapshot within ``store.retention_hours`` needs."""
    deleted = Warehouse.from_config(cfg).vacuum(cfg.store.retention_hours)
    log.info("vacuum (retention %s h): files deleted per table %s", cfg.store.retention_hours, deleted)
    return deleted


def run_day(cfg: SieConfig, ds: Ds) -> dict:
    """All steps for one day, in order, in this process (scores reach evaluate in memory)."""
    ds = Ds(ds)
    out: dict = {"ds": ds}
    out["simulate"] = simulate(cfg, ds)
    out["ingest"] = ingest(cfg, ds)
    out["validate"] = validate(cfg, ds)
    out["train"] = train(cfg, ds)
    scored = score_all(cfg, ds, cfg.importance.methods)
    out["score"] = {m: s.cost for m, s in scored.items()}
    out["validate_scores"] = validate(cfg, ds, "importance_scores")
    out["evaluate"] = evaluate(cfg, ds, {m: s.scores for m, s in scored.items()})
    out["report"] = report(cfg, ds)
    return out
