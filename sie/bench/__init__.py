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
    """The benchmark run a sie_benchmark task's params describe."""
    from sie.bench.run import resolve

    return resolve(params_config(params))
