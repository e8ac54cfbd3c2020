"""The README's first command: a few simulated days through the real `sie_daily` DAG."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from sie.config import SieConfig
from sie.dev.airflow_runner import airflow_env, dags_test, migrate
from sie.ds import Ds

log = logging.getLogger(__name__)


def run_demo(cfg: SieConfig, start: str, days: int, output: Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    env = airflow_env(output / "airflow_home", cfg.warehouse_path)
    t0 = time.perf_counter()
    log.info("demo: airflow db migrate (SQLite at %s)", output / "airflow_home")
    migrate(env)
    for ds in Ds.span(start, days):
        t = time.perf_counter()
        log.info('demo: airflow dags test sie_daily -c \'{"ds": "%s"}\'', ds)
        dags_test("sie_daily", env, conf={"ds": ds})
        log.info("demo: ds=%s done in %.0fs", ds, time.perf_counter() - t)
    log.info("demo: %d day(s) in %.0fs", days, time.perf_counter() - t0)
