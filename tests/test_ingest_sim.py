"""Ingest of simulated days: injected bad records, validation, and a real run killed mid-write."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sie.config import SieConfig
from sie.store import Warehouse

ROOT = Path(__file__).resolve().parent.parent
DS = "2025-01-02"
TABLES = ("events", "queries", "quarantine", "samples", "reconciliation", "ingest_days")


@pytest.fixture(scope="module")
def sim_day(tmp_path_factory, spark):
    from sie.ingest import ingest_day
    from sie.simulate import simulate_day

    root = tmp_path_factory.mktemp("sim") / "warehouse"
    cfg = SieConfig.load(
        {
            "warehouse": str(root),
            "simulate": {"requests_per_day": 300, "n_items": 300, "n_users": 200, "n_intents": 60, "bad_records": 2},
        }
    )
    simulate_day(cfg, DS)
    return cfg, ingest_day(cfg, DS, spark=spark)


def _snapshot(wh: Warehouse) -> dict:
    """Every table's rows of the day (the manifest without its commit time, which a rerun renews)."""
    tables = {t: wh.read_table(t, {"ds": [DS]}) for t in TABLES}
    tables["ingest_days"] = tables["ingest_days"].drop_columns(["committed_at"])
    return tables


def test_injected_bad_records_are_quarantined_and_nothing_else(sim_day):
    cfg, summary = sim_day
    wh = Warehouse.from_config(cfg)
    injected = json.loads((wh.root / "raw" / "_injected" / f"ds={DS}" / "bad_records.json").read_text())
    injected = injected if isinstance(injected, list) else injected["records"]
    q = wh.read_table("quarantine").to_pandas()
    assert sorted((r["source"], r["file"], r["line_no"]) for r in injected) == sorted(
        zip(q["source"], q["file"], q["line_no"].astype(int))
    )
    by_kind = {}
    reason = {(s, f, int(n)): r for s, f, n, r in zip(q["source"], q["file"], q["line_no"], q["reason"])}
    for r in injected:
        by_kind.setdefault(r["kind"], set()).add(reason[(r["source"], r["file"], r["line_no"])])
    assert by_kind["broken_json"] == {"invalid_json"}
    assert by_kind["duplicate_id"] == {"duplicate_query_id"}
    assert by_kind["impossible_position"] == {"bad_position"}
    assert by_kind["unknown_query_id"] == {"unknown_query_id"}
    assert by_kind["timestamp_out_of_range"] == {"out_of_window"}
    assert by_kind["wrong_type"] <= {"bad_timestamp", "bad_position"}
    assert by_kind["missing_required"] <= {
        "missing_query_id",
        "missing_user_query",
        "missing_timestamp",
        "missing_action_name",
    }
    for row in summary["reconciliation"]:
        assert row["raw_records"] == row["accepted"] + row["quarantined"] + row["dedup_dropped"]
    assert summary["dedup_dropped"] > 0  # the simulator's logging retries


def test_simulated_day_validates(sim_day):
    from sie.validate import validate

    cfg, _ = sim_day
    assert validate(cfg, DS, "raw_events")["success"]
    out = validate(cfg, DS, "samples")
    assert out["success"], out["failed_critical"]
    assert Path(out["data_docs"]).exists()


@pytest.mark.parametrize("point", ["ingest.staged.queries", "ingest.committed.samples"])
def test_kill_mid_write_keeps_previous_state_and_rerun_is_identical(sim_day, spark, tmp_path, point):
    """A real `spark-submit jobs/ingest.py` run is SIGKILLed after writing part of the day
    (paused at a fault point: after two tables are written, or after four are committed);
    nothing of it becomes visible, and a rerun gives the same tables."""
    from sie.ingest import ingest_day

    cfg, _ = sim_day
    wh = Warehouse.from_config(cfg)
    before = _snapshot(wh)
    faults_state = tmp_path / "faults"
    env = dict(
        os.environ,
        SIE_FAULTS=f"{point}=pause",
        SIE_FAULTS_STATE=str(faults_state),
        PYSPARK_PYTHON=sys.executable,
    )
    env.pop("SIE_CONFIG", None)
    paused = faults_state / f"{point}.paused"
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "spark-submit"),
            "--master",
            "local[2]",
            str(ROOT / "jobs" / "ingest.py"),
            "--ds",
            DS,
            "--warehouse",
            str(wh.root),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.time() + 400
        while not paused.exists():
            assert proc.poll() is None, "the ingest subprocess ended before it was killed"
            assert time.time() < deadline, "the ingest subprocess never reached the pause point"
            time.sleep(0.5)
        staged = {p.parts[-3] for p in wh.root.glob(f"tables/*/ds={DS}/attempt=*") if any(p.glob("*.parquet"))}
        assert {"events", "queries"} <= staged  # half the day is written to staging
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    after_kill = _snapshot(wh)
    for t in TABLES:
        assert after_kill[t].equals(before[t]), f"{t} changed after a killed run"
    summary = ingest_day(cfg, DS, spark=spark)
    rerun = _snapshot(wh)
    for t in TABLES:
        assert rerun[t].equals(before[t]), f"{t} differs after a rerun"
    assert summary["rows"]["samples"] == before["samples"].num_rows
