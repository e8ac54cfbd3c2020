"""The benchmark: a run of its own (simulate → ingest → train → score) and every cell of a retrain grid.

``run`` says what a run is, ``runner`` executes its steps on top of ``sie.steps``,
``rows`` is the vocabulary of its ``benchmark_results`` rows and ``report`` renders them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sie.config import BENCH_PARAMS, load_config
from sie.log import setup

if TYPE_CHECKING:
    from sie.bench.run import BenchRun
    from sie.config import SieConfig


def params_config(params: dict | None) -> SieConfig:
    """A sie_benchmark task's config from its DAG params (through the one adapter); routes ``sie`` logging."""
    setup(target="stdout")  # the task log records stdout as info
    return load_config(params, BENCH_PARAMS)


def params_run(params: dict | None) -> BenchRun:
    """The benchmark run a sie_benchmark task's params describe (a plain run: no replication settings)."""
    from sie.bench.run import resolve

    return resolve(params_config(params))


def params_runs(params: dict | None) -> list[BenchRun]:
    """The plain runs a sie_benchmark task works on: the run, or every sub-run of a replicated
    setting (``world_seeds`` / ``model_seeds`` / ``folds``), world-major."""
    from sie.bench.run import is_replicated, resolve, resolve_replicated

    cfg = params_config(params)
    return [run for _, run in resolve_replicated(cfg).runs] if is_replicated(cfg) else [resolve(cfg)]


def params_plan(params: dict | None) -> dict:
    """The plan the DAG maps over: methods and cells (the same grid in every sub-run) and ``run_id``,
    the run the report is built for (the pooled run when replicated, its ``sub_runs`` listed)."""
    from sie.bench.run import is_replicated, resolve_replicated

    cfg = params_config(params)
    if not is_replicated(cfg):
        return params_run(params).plan()
    rep = resolve_replicated(cfg)
    first = rep.runs[0][1].plan()
    return first | {"run_id": rep.run_id, "root": str(rep.root), "sub_runs": [run.run_id for _, run in rep.runs]}


def params_publish(params: dict | None) -> dict:
    """Publish the run's rows; a replicated setting publishes every sub-run and then the pooled run."""
    from sie.bench import runner
    from sie.bench.run import is_replicated, resolve_replicated

    cfg = params_config(params)
    if not is_replicated(cfg):
        return runner.assemble(params_run(params))
    rep = resolve_replicated(cfg)
    sub_runs = [runner.assemble(run)["run_id"] for _, run in rep.runs]
    return runner.assemble_replicated(rep) | {"sub_run_ids": sub_runs}
