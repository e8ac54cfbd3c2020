"""The `sie_benchmark` DAG under the real `airflow dags test` on a tiny grid: simulate → Spark
ingest → Great Expectations → train → mapped scoring → mapped cells → publish → report; a rerun
recomputes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sie.dev.airflow_runner import airflow_env, dags_test, migrate

pytestmark = [pytest.mark.slow, pytest.mark.integration]

CONF = {
    "dataset": "synthetic",
    "days": 1,
    "start": "2026-11-20",
    "methods": ["loss"],
    "keep_ratios": [0.5, 1.0],
    "seeds": [0, 1],
    "model": {"epochs": 2, "batch_size": 256},
    "config": {
        "simulate": {"requests_per_day": 200, "n_items": 200, "n_users": 150, "n_intents": 40},
        "ingest": {"shuffle_partitions": 2},
    },
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


def test_sie_benchmark_dag_runs_the_grid_and_resumes(tmp_path):
    warehouse = tmp_path / "warehouse"
    env = airflow_env(tmp_path / "airflow_home", warehouse)
    migrate(env)
    first = dags_test("sie_benchmark", env, conf=CONF, stream=False).stdout

    rows = sie_sql(
        warehouse,
        "SELECT run_id, method, keep_ratio, seed, value FROM benchmark_results "
        "WHERE metric = 'ndcg_at_10' ORDER BY ALL",
    )
    cells = {(r["method"], r["keep_ratio"], r["seed"]) for r in rows}
    assert cells == {(m, 0.5, s) for m in ("random", "stratified", "loss") for s in (0, 1)} | {
        ("full", 1.0, 0),
        ("full", 1.0, 1),
    }
    assert all(0.0 < r["value"] <= 1.0 for r in rows)
    (run_id,) = {r["run_id"] for r in rows}
    assert run_id.startswith("bench-synthetic-")
    per_method = sie_sql(
        warehouse,
        "SELECT metric, value FROM benchmark_results WHERE method = 'loss' "
        "AND keep_ratio IS NULL AND metric IN ('noise_auroc', 'cost_vs_epoch')",
    )
    assert {r["metric"] for r in per_method} == {"noise_auroc", "cost_vs_epoch"}
    report = warehouse / "reports" / run_id
    assert (report / "report.md").exists() and (report / "report.html").exists()
    assert (report / "ndcg_vs_keep.png").exists() and (report / "noise_roc.png").exists()
    assert f"[sie] {run_id}: published" in first
    assert '"epochs": 2' in (warehouse / "bench" / run_id / "state" / "trained.json").read_text()

    cell_files = sorted((warehouse / "bench" / run_id / "cells").glob("*.parquet"))
    assert len(cell_files) == 8
    mtimes = {p: p.stat().st_mtime_ns for p in cell_files}
    second = dags_test("sie_benchmark", env, conf=CONF, stream=False).stdout
    assert {p: p.stat().st_mtime_ns for p in cell_files} == mtimes
    assert second.count("already done") >= 8 and "already trained" in second and "already prepared" in second
    assert "ingest ds=" not in second
