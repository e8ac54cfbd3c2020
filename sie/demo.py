"""The README's first command: a few simulated days through the real `sie_daily` DAG."""

from __future__ import annotations

import time
from datetime import date, timedelta
from pathlib import Path

from sie.airflow_runner import airflow_env, dags_test, migrate
from sie.config import SieConfig


def run_demo(cfg: SieConfig, start: str, days: int, output: Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    env = airflow_env(output / "airflow_home", cfg.warehouse_path)
    t0 = time.perf_counter()
    print(f"[demo] airflow db migrate (SQLite at {output / 'airflow_home'})", flush=True)
    migrate(env)
    first = date.fromisoformat(start)
    for k in range(days):
        ds = (first + timedelta(days=k)).isoformat()
        t = time.perf_counter()
        print(f'[demo] airflow dags test sie_daily -c \'{{"ds": "{ds}"}}\'', flush=True)
        dags_test("sie_daily", env, conf={"ds": ds})
        print(f"[demo] ds={ds} done in {time.perf_counter() - t:.0f}s", flush=True)
    print(f"[demo] {days} day(s) in {time.perf_counter() - t0:.0f}s", flush=True)
