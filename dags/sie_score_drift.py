"""
### sie_score_drift: how importance moved since the previous model

Scheduled on the `importance_scores` Asset: runs whenever a `score` task of `sie_daily`
publishes a method's scores. For each (ds, method) the triggering events name, it compares
the new model's scores with the previous model's on the samples both scored (Spearman rank
correlation, overlap of the top deciles, mean shift) and writes the `score_drift`
partition (ds, method). Query it with `sie sql "SELECT * FROM score_drift ORDER BY ds"`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, dag, task

from sie.assets import uri

IMPORTANCE_SCORES = Asset(uri=uri("importance_scores"), name="importance_scores")
SCORE_DRIFT = Asset(uri=uri("score_drift"), name="score_drift")


@dag(
    dag_id="sie_score_drift",
    schedule=[IMPORTANCE_SCORES],
    start_date=pendulum.datetime(2026, 11, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2},
    tags=["sie", "importance", "monitoring"],
    doc_md=__doc__,
)
def sie_score_drift():
    @task(outlets=[SCORE_DRIFT])
    def drift(triggering_asset_events=None) -> list[dict]:
        from sie.steps import drift, params_config

        events = [e.extra for evs in (triggering_asset_events or {}).values() for e in evs]
        return drift.score_drift_for_events(params_config(None), events)

    drift()


sie_score_drift()
