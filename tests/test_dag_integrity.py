"""Every DAG file imports cleanly and follows the project's conventions."""

import os
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parent.parent / "dags"


@pytest.fixture(scope="module")
def dagbag():
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert len(dagbag.dags) == len(list(DAGS.glob("*.py")))


def test_conventions(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md, f"{dag_id} has no docstring"
        assert dag.catchup is False, f"{dag_id} must not catch up"
        for t in dag.tasks:
            assert t.retries >= 1, f"{dag_id}.{t.task_id} has no retries"


def test_sie_daily_schedule(dagbag):
    from airflow.sdk import CronDataIntervalTimetable

    dag = dagbag.dags["sie_daily"]
    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    assert dag.timetable.expression == "0 2 * * *"
    assert {
        "resolve_ds",
        "simulate",
        "ingest",
        "validate",
        "train",
        "score",
        "validate_scores",
        "evaluate",
        "report",
    } <= set(dag.task_ids)


def test_publishing_tasks_declare_their_tables_as_assets(dagbag):
    from sie.assets import uri

    def outlets(dag_id, task_id):
        return {a.uri for a in dagbag.dags[dag_id].get_task(task_id).outlets}

    tables = ("events", "queries", "quarantine", "samples", "reconciliation", "ingest_days")
    assert outlets("sie_daily", "ingest") == {uri(t) for t in tables}
    assert outlets("sie_daily", "train") == {uri("models")}
    assert outlets("sie_daily", "score") == {uri("importance_scores")}
    assert outlets("sie_daily", "evaluate") == {uri("benchmark_results")}
    assert outlets("sie_benchmark", "publish") == {uri("benchmark_results")}
    assert outlets("sie_score_drift", "drift") == {uri("score_drift")}
    # tasks that publish nothing declare nothing
    for task_id in ("resolve_ds", "validate", "validate_scores", "report"):
        assert outlets("sie_daily", task_id) == set(), task_id


def test_score_drift_is_scheduled_on_importance_scores(dagbag):
    from sie.assets import uri

    dag = dagbag.dags["sie_score_drift"]
    assert [a.uri for a in dag.timetable.asset_condition.objects] == [uri("importance_scores")]
    assert dag.catchup is False


def test_dag_files_contain_no_business_logic():
    """DAG files only wire tasks: they import sie inside tasks and define no helpers."""
    for path in DAGS.glob("*.py"):
        text = path.read_text()
        assert "import pyspark" not in text and "import torch" not in text and "import great_expectations" not in text
