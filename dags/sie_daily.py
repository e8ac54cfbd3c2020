"""
### sie_daily: the nightly sample-importance pipeline

Runs at 02:00 UTC over the previous day's logs (`CronDataIntervalTimetable`: the data
interval is the 24 h before the run; the processing day `ds` is the interval's start
date). A manual trigger processes the day given as `{"ds": "YYYY-MM-DD"}`.

simulate (default set-up only) → ingest (Spark) → validate raw events and samples
(Great Expectations) → train (torch) → score (one mapped task per importance method) →
validate the scores (Great Expectations) → retrain + evaluate on the judged holdout →
report.

Every task only calls `sie.steps.daily`; all logic lives in the `sie` package.
Params: `ds` (day to process), `methods` (importance methods, default from config),
`config` (nested overrides of `sie.config.SieConfig`, e.g. `{"train": {"epochs": 2}}`).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag, task


@dag(
    dag_id="sie_daily",
    schedule=CronDataIntervalTimetable("0 2 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
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

    @task
    def ingest(day: str, params=None) -> dict:
        from sie.steps import daily, params_config

        return daily.ingest(params_config(params), day)

    @task
    def validate(day: str, params=None) -> dict:
        from sie.steps import daily, params_config

        return daily.validate(params_config(params), day)

    @task
    def train(day: str, params=None) -> dict:
        from sie.steps import daily, params_config

        return daily.train(params_config(params), day)

    @task
    def list_methods(params=None) -> list[str]:
        from sie.steps import params_config

        return params_config(params).importance.methods

    @task
    def score(method: str, day: str, params=None) -> dict:
        from sie.steps import daily, params_config

        return daily.score(params_config(params), day, method)

    @task
    def validate_scores(day: str, params=None) -> dict:
        from sie.steps import daily, params_config

        return daily.validate(params_config(params), day, "importance_scores")

    @task
    def evaluate(day: str, params=None) -> dict:
        from sie.steps import daily, params_config

        return daily.evaluate(params_config(params), day)

    @task
    def report(day: str, params=None) -> str:
        from sie.steps import daily, params_config

        return daily.report(params_config(params), day)

    # `day` (not `ds`, which is an Airflow context variable) is the processing day
    day = resolve_ds()
    trained = train(day)
    simulate(day) >> ingest(day) >> validate(day) >> trained
    scores = score.partial(day=day).expand(method=list_methods())
    trained >> scores
    evaluated = evaluate(day)
    scores >> validate_scores(day) >> evaluated >> report(day)


sie_daily()
