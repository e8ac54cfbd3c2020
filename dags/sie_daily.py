"""
### sie_daily: the nightly sample-importance pipeline

Runs at 02:00 UTC over the previous day's logs (`CronDataIntervalTimetable`: the data
interval is the 24 h before the run; the processing day `ds` is the interval's start
date). A manual trigger processes the day given as `{"ds": "YYYY-MM-DD"}`.

simulate (default set-up only) → ingest (Spark) → validate raw events and samples
(Great Expectations) → train (torch) → score (one mapped task per importance method) →
validate the scores (Great Expectations) → retrain + evaluate on the judged holdout →
report → vacuum (deletes what no snapshot within `store.retention_hours` needs).

Every task only calls `sie.steps.daily`; all logic lives in the `sie` package. Each task
that publishes a table declares it as an outlet Asset (`sie://warehouse/<table>`); the
`sie_score_drift` DAG runs on `importance_scores`. With `SIE_GPU_QUEUE` set, train and
score run on that (Celery) queue (docs/DEPLOY.md).
Params: `ds` (day to process), `methods` (importance methods, default from config),
`config` (nested overrides of `sie.config.SieConfig`, e.g. `{"train": {"epochs": 2}}`).
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import Asset, CronDataIntervalTimetable, Param, dag, task

from sie.assets import uris

TABLE = {name: Asset(uri=uri, name=name) for name, uri in uris().items()}
GPU = {"queue": os.environ["SIE_GPU_QUEUE"]} if os.environ.get("SIE_GPU_QUEUE") else {}
INGESTED = [TABLE[t] for t in ("events", "queries", "quarantine", "samples", "reconciliation", "ingest_days")]


@dag(
    dag_id="sie_daily",
    schedule=CronDataIntervalTimetable("0 2 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    # the delay between tries is Airflow configuration: [core] default_task_retry_delay (seconds)
    default_args={"retries": 2},
    tags=["sie", "nightly", "importance"],
    params={
        "ds": Param(
            None,
            type=["null", "string"],
            description="Day to process (YYYY-MM-DD); default: the data interval's start date.",
        ),
        "methods": Param(
            None, type=["null", "array", "string"], description="Importance methods to score (default: config)."
        ),
        "ranker": Param(
            None,
            type=["null", "string"],
            enum=[None, "mlp", "minilm_cross"],
            description="train.model: mlp (default) or minilm_cross (the MiniLM-L6 cross-encoder; GPU recommended).",
        ),
        "config": Param({}, type="object", description="Overrides of sie.config.SieConfig."),
    },
    doc_md=__doc__,
)
def sie_daily():
    @task
    def resolve_ds(params=None, data_interval_start=None) -> str:
        from sie.steps import daily

        return daily.resolve_day(params, data_interval_start)

    @task
    def simulate(day: str, params=None) -> dict:
        from sie.steps import daily, params_config

        return daily.simulate(params_config(params), day)

    @task(outlets=INGESTED)
    def ingest(day: str, params=None) -> dict:
        from sie.steps import daily, params_config

        return daily.ingest(params_config(params), day)

    @task
    def validate(day: str, params=None) -> dict:
        from sie.steps import daily, params_config

        return daily.validate(params_config(params), day)

    @task(outlets=[TABLE["models"]], **GPU)
    def train(day: str, params=None) -> dict:
        from sie.steps import daily, params_config

        return daily.train(params_config(params), day)

    @task
    def list_methods(params=None) -> list[str]:
        from sie.steps import params_config

        return params_config(params).importance.methods

    @task(outlets=[TABLE["importance_scores"]], **GPU)
    def score(method: str, day: str, params=None, outlet_events=None) -> dict:
        from sie.steps import daily, params_config

        cost = daily.score(params_config(params), day, method)
        outlet_events[TABLE["importance_scores"]].extra = {"ds": day, "method": method}
        return cost

    @task
    def validate_scores(day: str, params=None) -> dict:
        from sie.steps import daily, params_config

        return daily.validate(params_config(params), day, "importance_scores")

    @task(outlets=[TABLE["benchmark_results"]])
    def evaluate(day: str, params=None) -> dict:
        from sie.steps import daily, params_config

        return daily.evaluate(params_config(params), day)

    @task
    def report(day: str, params=None) -> str:
        from sie.steps import daily, params_config

        return daily.report(params_config(params), day)

    @task
    def vacuum(params=None) -> dict:
        from sie.steps import daily, params_config

        return daily.vacuum(params_config(params))

    # `day` (not `ds`, which is an Airflow context variable) is the processing day
    day = resolve_ds()
    trained = train(day)
    simulate(day) >> ingest(day) >> validate(day) >> trained
    scores = score.partial(day=day).expand(method=list_methods())
    trained >> scores
    evaluated = evaluate(day)
    scores >> validate_scores(day) >> evaluated >> report(day) >> vacuum()


sie_daily()
