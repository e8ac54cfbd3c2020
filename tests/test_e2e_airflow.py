"""End to end: the real `sie_daily` DAG under `airflow dags test` on a temporary SQLite home.

Runs two days through the ds param (so the second trains on a 2-day window), one run
with no param (the day comes from the data interval), then checks the tables with
`sie sql` exactly as a user would.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sie.dev.airflow_runner import airflow_env, dags_test, migrate

pytestmark = [pytest.mark.slow, pytest.mark.integration]

SMALL = {
    "SIE_SIMULATE__REQUESTS_PER_DAY": "300",
    "SIE_SIMULATE__N_ITEMS": "300",
    "SIE_SIMULATE__N_USERS": "200",
    "SIE_SIMULATE__N_INTENTS": "60",
    "SIE_TRAIN__EPOCHS": "3",
    "SIE_TRAIN__WINDOW_DAYS": "2",
    "SIE_INGEST__SHUFFLE_PARTITIONS": "2",
}


def sie_sql(warehouse: Path, statement: str) -> list[dict]:
    sie = Path(sys.executable).parent / "sie"
    out = subprocess.run(
        [str(sie), "--warehouse", str(warehouse), "sql", statement, "--format", "json"],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def airflow_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    warehouse = root / "warehouse"
    env = airflow_env(root / "airflow_home", warehouse, SMALL)
    migrate(env)
    logs = {
        "2026-11-20": dags_test("sie_daily", env, conf={"ds": "2026-11-20"}, stream=False).stdout,
        "2026-11-21": dags_test("sie_daily", env, conf={"ds": "2026-11-21"}, stream=False).stdout,
        "no_param": dags_test("sie_daily", env, logical_date="2026-11-25T02:00:00+00:00", stream=False).stdout,
    }
    return warehouse, logs


def test_importance_scores_cover_every_training_sample(airflow_run):
    warehouse, _ = airflow_run
    from sie.config import SieConfig

    methods = SieConfig().importance.methods
    rows = sie_sql(
        warehouse,
        "SELECT ds, method, count(*) AS n, count(DISTINCT sample_id) AS n_ids, "
        "count(DISTINCT sample_ds) AS n_days FROM importance_scores GROUP BY ALL ORDER BY ds, method",
    )
    by_day = {}
    for r in rows:
        by_day.setdefault(r["ds"], {})[r["method"]] = r
    assert set(by_day["2026-11-20"]) == set(methods) and set(by_day["2026-11-21"]) == set(methods)
    for day, n_days in (("2026-11-20", 1), ("2026-11-21", 2)):
        counts = {r["n"] for r in by_day[day].values()}
        assert len(counts) == 1, f"methods disagree on the sample count: {by_day[day]}"
        assert all(r["n"] == r["n_ids"] and r["n_days"] == n_days for r in by_day[day].values())
    # every scored sample exists in `samples`, and the validation split is not scored
    orphans = sie_sql(
        warehouse,
        "SELECT count(*) AS n FROM importance_scores i ANTI JOIN samples s "
        "ON i.sample_id = s.sample_id AND i.sample_ds = s.ds",
    )
    assert orphans == [{"n": 0}]


def test_benchmark_results_hold_every_method_and_baseline(airflow_run):
    warehouse, _ = airflow_run
    from sie.config import SieConfig

    cfg = SieConfig()
    rows = sie_sql(
        warehouse,
        "SELECT run_id, method, keep_ratio, value FROM benchmark_results WHERE metric = 'ndcg_at_10' ORDER BY ALL",
    )
    got = {(r["run_id"], r["method"], r["keep_ratio"]) for r in rows}
    for day in ("2026-11-20", "2026-11-21"):
        assert (f"daily-{day}", "full", 1.0) in got
        for method in set(cfg.importance.methods) | {"random"}:
            for ratio in cfg.evaluate.keep_ratios:
                assert (f"daily-{day}", method, ratio) in got
    assert all(0.0 < r["value"] <= 1.0 for r in rows)


def test_no_param_run_processes_the_data_interval_start(airflow_run):
    warehouse, logs = airflow_run
    match = re.search(r"processing day ds=(\d{4}-\d{2}-\d{2}) \(from data_interval_start=([^)]+)\)", logs["no_param"])
    assert match, logs["no_param"][-3000:]
    day, interval_start = match.groups()
    assert interval_start.startswith(day)
    rows = sie_sql(warehouse, f"SELECT count(*) AS n FROM samples WHERE ds = '{day}'")
    assert rows[0]["n"] > 0
    rows = sie_sql(warehouse, f"SELECT count(*) AS n FROM benchmark_results WHERE run_id = 'daily-{day}'")
    assert rows[0]["n"] > 0


def test_analysis_queries_run(airflow_run):
    warehouse, _ = airflow_run
    for name in ("importance_distribution.sql", "lowest_scoring_queries.sql", "benchmark_leaderboard.sql"):
        sie = Path(sys.executable).parent / "sie"
        out = subprocess.run(
            [str(sie), "--warehouse", str(warehouse), "sql", "-f", f"sql/{name}", "--format", "json"],
            check=True,
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        assert json.loads(out.stdout), f"{name} returned no rows"
