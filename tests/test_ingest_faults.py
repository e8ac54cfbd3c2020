"""The ingest day window and its fault points: a failure at any staging step publishes nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sie.config import SieConfig
from sie.store import Warehouse

DS = "2025-05-05"
TABLES = ("events", "queries", "quarantine", "samples", "reconciliation")


def test_day_window_bounds():
    from sie.ds import Ds
    from sie.ingest.day import DayWindow
    from sie.ingest.parse import day_window

    day = DayWindow.of("2025-03-01", 6)
    assert day.ds == Ds("2025-03-01") and isinstance(day.ds, Ds)
    assert day.start == datetime(2025, 2, 28, 18, tzinfo=UTC)
    assert day.end == datetime(2025, 3, 2, 6, tzinfo=UTC)
    assert day_window("2025-03-01", 6) == day.bounds  # the name sie.validate uses
    assert day.describe() == "[2025-02-28T18:00:00+00:00, 2025-03-02T06:00:00+00:00)"
    assert day.days_before(2) == ["2025-02-27", "2025-02-28"] and day.days_before(0) == []
    assert day.accepts_late_arrivals and not DayWindow.of(day.ds, 0).accepts_late_arrivals
    with pytest.raises(ValueError, match="ds must be"):
        DayWindow.of("2025-02-30", 6)


def test_bad_ds_fails_before_touching_the_warehouse(cfg):
    from sie.ingest import ingest_day

    with pytest.raises(ValueError, match="ds must be"):
        ingest_day(cfg, "20250505")
    assert not Path(cfg.warehouse, "_staging").exists()


def _land(root: Path, source: str, docs: list[dict]) -> None:
    d = root / "raw" / source / f"ds={DS}"
    d.mkdir(parents=True, exist_ok=True)
    (d / "part.ndjson").write_text("".join(json.dumps(doc) + "\n" for doc in docs))


@pytest.fixture(scope="module")
def published_day(tmp_path_factory, spark):
    from sie.ingest import ingest_day

    root = tmp_path_factory.mktemp("faults") / "warehouse"
    ts = f"{DS}T10:00:00Z"
    _land(root, "ubi_queries", [{"query_id": "q1", "user_query": "lamp", "client_id": "c1", "timestamp": ts}])
    impression = {
        "action_name": "impression",
        "query_id": "q1",
        "client_id": "c1",
        "timestamp": ts,
        "event_attributes": {"object": {"object_id": "i1"}, "position": {"ordinal": 1}},
    }
    _land(root, "ubi_events", [impression, {"action_name": "click", "timestamp": ts}])  # one quarantined
    cfg = SieConfig.load({"warehouse": str(root)})
    ingest_day(cfg, DS, spark=spark)
    return cfg


@pytest.mark.parametrize(
    "point",
    ["ingest.staged.events", "ingest.staged.reconciliation", "ingest.committed.events", "ingest.committed.samples"],
)
def test_fault_while_staging_or_committing_publishes_nothing(published_day, spark, monkeypatch, point):
    """A run dying after some of its tables are written (or committed) leaves the previous day
    visible in every table: the day manifest still names the previous run."""
    from sie import faults
    from sie.ingest import ingest_day

    wh = Warehouse.from_config(published_day)
    before = {t: wh.read_table(t) for t in TABLES}
    assert before["events"].num_rows == 1 and before["quarantine"].num_rows == 1
    monkeypatch.setenv(faults.ENV, f"{point}=fail")
    with pytest.raises(faults.InjectedFault, match=point):
        ingest_day(published_day, DS, spark=spark, run_id="another-run")  # would change every table
    for t in TABLES:
        assert wh.read_table(t).equals(before[t]), f"{t} changed by a failed run"
    committed = point.startswith("ingest.committed.")
    leftovers = [p for p in wh.root.glob(f"tables/*/ds={DS}/attempt=another-run.*") if any(p.glob("*.parquet"))]
    assert bool(leftovers) == committed, "uncommitted files left behind, or committed files deleted"


def test_ingest_settings_are_recorded_with_the_day_and_used_by_its_validation(tmp_path, spark):
    """A day ingested with `ingest.lateness_hours=12` keeps a 10-hours-late impression; its
    validation (run with the default 6 hours) judges the day by the settings it was ingested with."""
    from sie.ingest import ingest_day
    from sie.validate import validate

    root = tmp_path / "warehouse"
    late = "2025-05-04T16:00:00Z"  # 8 h before the day starts
    _land(root, "ubi_queries", [{"query_id": "q1", "user_query": "lamp", "client_id": "c1", "timestamp": late}])
    impression = {
        "action_name": "impression",
        "query_id": "q1",
        "client_id": "c1",
        "timestamp": late,
        "event_attributes": {"object": {"object_id": "i1"}, "position": {"ordinal": 1}},
    }
    _land(root, "ubi_events", [impression])
    ingest_day(SieConfig.load({"warehouse": str(root), "ingest": {"lateness_hours": 12}}), DS, spark=spark)
    wh = Warehouse(root)
    manifest = wh.read_table("ingest_days").to_pylist()
    assert len(manifest) == 1 and json.loads(manifest[0]["settings"])["lateness_hours"] == 12
    assert wh.read_table("events").num_rows == 1
    default = SieConfig.load({"warehouse": str(root)})
    assert default.ingest.lateness_hours == 6
    result = validate(default, DS, "raw_events", raise_on_failure=False)
    window = [r for r in result["results"] if "window" in json.dumps(r)]
    assert window and all(r["success"] for r in window), window
