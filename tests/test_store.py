"""The Delta Lake warehouse: one commit per write, the day manifest, concurrency, history, vacuum."""

import multiprocessing as mp
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sie.schemas import DAY_TABLES, IMPORTANCE_SCORES, INGEST_DAYS, TABLES, sample_id
from sie.store import ConcurrentIngestError, Warehouse, duckdb_connect

DS = "2026-11-20"


def _scores(n: int, value: float) -> pa.Table:
    return pa.table(
        {
            "sample_id": [sample_id(f"q{i}", "item") for i in range(n)],
            "sample_ds": [DS] * n,
            "run_id": ["r"] * n,
            "model_version": ["m"] * n,
            "score": [value] * n,
            "model_id": ["mlp"] * n,
        }
    )


def test_write_read_and_replace_partition(warehouse):
    wh = Warehouse(warehouse)
    part = {"ds": DS, "method": "loss"}
    wh.write_partition("importance_scores", part, _scores(3, 1.0))
    wh.write_partition("importance_scores", {"ds": DS, "method": "random"}, _scores(2, 0.5))
    wh.write_partition("importance_scores", part, _scores(4, 2.0))  # rerun replaces exactly
    table = wh.read_table("importance_scores", {"method": ["loss"]}).to_pandas()
    assert len(table) == 4 and set(table["score"]) == {2.0}
    assert set(table.columns) == set(IMPORTANCE_SCORES.columns) | {"ds", "method"}
    assert wh.partitions("importance_scores") == [{"ds": DS, "method": "loss"}, {"ds": DS, "method": "random"}]
    assert [c["version"] for c in wh.history("importance_scores")] == [3, 2, 1, 0]
    # time travel: version 1 is the first loss write
    old = wh.read_table("importance_scores", {"method": ["loss"]}, as_of=1).to_pandas()
    assert len(old) == 3 and set(old["score"]) == {1.0}
    # only the columns asked for (partition columns still last): what keeps a big window small
    some = wh.read_table("importance_scores", {"method": ["loss"]}, columns=["score", "sample_id"])
    assert some.column_names == ["sample_id", "score", "ds", "method"] and some.num_rows == 4


def test_a_column_added_to_the_schema_is_migrated_and_old_rows_read_as_null(warehouse):
    """A table created before ``model_id`` existed: the first write adds the column in one commit;
    the old files read as null in Python and in SQL (DuckDB), also when no file has the column."""
    from deltalake import DeltaTable

    from sie.store import _delta_schema

    wh = Warehouse(warehouse)
    old = _delta_schema(IMPORTANCE_SCORES)
    old = old.remove(old.get_field_index("model_id"))
    path = wh.table_dir("importance_scores")
    path.mkdir(parents=True)
    DeltaTable.create(str(path), old, partition_by=["ds", "method"])
    old_rows = _scores(2, 1.0).drop_columns(["model_id"])
    old_rows = old_rows.append_column("ds", pa.array([DS] * 2)).append_column("method", pa.array(["loss"] * 2))
    from deltalake import write_deltalake

    write_deltalake(str(path), old_rows, partition_by=["ds", "method"], mode="append")
    with duckdb_connect(wh) as con:  # no file has the column yet
        assert con.execute("SELECT count(*), count(model_id) FROM importance_scores").fetchone() == (2, 0)

    wh.write_partition("importance_scores", {"ds": DS, "method": "aum"}, _scores(3, 2.0))
    assert "model_id" in DeltaTable(str(path)).schema().to_arrow().names
    table = wh.read_table("importance_scores").to_pandas().set_index("method")
    assert table.loc["loss", "model_id"].isna().all() and (table.loc["aum", "model_id"] == "mlp").all()
    with duckdb_connect(wh) as con:
        rows = con.execute("SELECT method, count(model_id) FROM importance_scores GROUP BY 1 ORDER BY 1").fetchall()
    assert rows == [("aum", 3), ("loss", 0)]


def test_a_partition_written_in_batches_is_committed_whole_or_not_at_all(warehouse):
    """write_partition_batches: the batches' rows, in order, replace the partition in one commit;
    a batch that fails leaves the previous rows visible and no staged file behind."""
    wh = Warehouse(warehouse)
    part = {"ds": DS, "method": "loss"}
    wh.write_partition("importance_scores", part, _scores(3, 1.0))
    whole = _scores(10, 2.0).set_column(4, "score", pa.array([float(i) for i in range(10)]))
    assert wh.write_partition_batches("importance_scores", part, "r2", [whole.slice(0, 4), whole.slice(4)]) == 10
    table = wh.read_table("importance_scores", {"method": ["loss"]})
    assert table.column("score").to_pylist() == [float(i) for i in range(10)]
    assert table.column("sample_id").to_pylist() == whole.column("sample_id").to_pylist()

    def failing():
        yield _scores(5, 3.0)
        raise OSError("disk full")

    folders_before = sorted(p for p in (wh.table_dir("importance_scores") / f"ds={DS}").rglob("attempt=*"))
    with pytest.raises(OSError, match="disk full"):
        wh.write_partition_batches("importance_scores", part, "r3", failing())
    table = wh.read_table("importance_scores", {"method": ["loss"]})
    assert table.column("score").to_pylist() == [float(i) for i in range(10)]
    assert sorted(p for p in (wh.table_dir("importance_scores") / f"ds={DS}").rglob("attempt=*")) == folders_before


@pytest.mark.parametrize("rows", [1, 3, 7, 50])
def test_rechunked_cuts_any_stream_into_batches_of_the_same_rows(rows):
    """Two streams cut differently, rechunked to the same size, can be walked side by side."""
    import random

    from sie.store import rechunked

    values = list(range(40))
    rng, tables, start = random.Random(rows), [], 0
    while start < len(values):
        size = rng.choice([0, 1, 2, 5, 13])
        tables.append(pa.table({"v": pa.array(values[start : start + size], pa.int64())}))
        start += size
    out = list(rechunked(tables, rows))
    assert [t.num_rows for t in out[:-1]] == [rows] * (len(out) - 1) and 0 < out[-1].num_rows <= rows
    assert [v for t in out for v in t.column("v").to_pylist()] == values
    assert list(rechunked([], rows)) == []


def test_wrong_partition_keys_and_missing_columns_fail(warehouse):
    wh = Warehouse(warehouse)
    with pytest.raises(ValueError, match="partitioned by"):
        wh.write_partition("importance_scores", {"ds": DS}, _scores(1, 1.0))
    with pytest.raises(ValueError, match="missing columns"):
        wh.write_partition("importance_scores", {"ds": "d", "method": "m"}, pa.table({"sample_id": ["a"]}))


def test_duckdb_views_read_the_snapshot_and_refuse_writes(warehouse):
    wh = Warehouse(warehouse)
    con = duckdb_connect(wh)
    assert con.execute("SELECT count(*) FROM importance_scores").fetchone() == (0,)  # empty table still has a view
    con.close()
    wh.write_partition("importance_scores", {"ds": DS, "method": "loss"}, _scores(3, 1.0))
    con = duckdb_connect(wh)
    wh.write_partition("importance_scores", {"ds": DS, "method": "loss"}, _scores(5, 2.0))  # after the connect
    assert con.execute("SELECT ds, method, count(*) FROM importance_scores GROUP BY ALL").fetchall() == [
        (DS, "loss", 3)
    ]
    outside = warehouse.parent / "outside.csv"  # file access is limited to the warehouse
    with pytest.raises(Exception, match="(?i)permission|disabled|not allowed"):
        con.execute(f"COPY (SELECT 1) TO '{outside}'")
    assert not outside.exists()
    con.close()


# ---- day tables and the manifest ----------------------------------------------------------


def _day_rows(table: str, run_id: str, n: int) -> pa.Table:
    schema = TABLES[table].schema
    cols = {}
    for f in schema:
        if f.name == "run_id":
            cols[f.name] = pa.array([run_id] * n, f.type)
        else:
            cols[f.name] = pa.nulls(n, f.type)
    return pa.table(cols, schema=schema)


def _manifest(run_id: str, n: int) -> pa.Table:
    row = {f.name: None for f in INGEST_DAYS.schema}
    row.update(run_id=run_id, settings="{}", events=n)
    return pa.Table.from_pylist([row], schema=INGEST_DAYS.schema)


def _publish_day(wh: Warehouse, run_id: str, n: int, on_commit=None) -> None:
    with wh.staged_day(DS, run_id) as folders:
        for table in DAY_TABLES:
            pq.write_table(_day_rows(table, run_id, n), folders[table] / "part-00000.parquet")
        wh.publish_day(DS, run_id, folders, _manifest(run_id, n), on_commit=on_commit)


def _visible(wh: Warehouse) -> dict[str, int]:
    runs = wh.current_runs()  # one manifest for the five tables
    return {t: wh.read_table(t, {"ds": [DS]}, runs=runs).num_rows for t in DAY_TABLES}


def test_a_day_is_visible_whole_or_not_at_all(warehouse):
    wh = Warehouse(warehouse)
    _publish_day(wh, "run-a", 3)
    assert _visible(wh) == dict.fromkeys(DAY_TABLES, 3)

    class Killed(Exception):
        pass

    for stop_after in DAY_TABLES:  # a re-ingest dying after each table's commit

        def die(table, stop_after=stop_after):
            if table == stop_after:
                raise Killed(table)

        with pytest.raises(Killed):
            _publish_day(wh, "run-b", 5, on_commit=die)
        assert _visible(wh) == dict.fromkeys(DAY_TABLES, 3), f"half a day visible after {stop_after}"
        con = duckdb_connect(wh)
        assert con.execute("SELECT count(*) FROM events").fetchone() == (3,)
        con.close()
    _publish_day(wh, "run-b", 5)  # the rerun completes: the new day, whole
    assert _visible(wh) == dict.fromkeys(DAY_TABLES, 5)
    _publish_day(wh, "run-b", 5)  # and once more: identical
    assert _visible(wh) == dict.fromkeys(DAY_TABLES, 5)
    assert wh.partitions("events") == [{"ds": DS}]


def test_two_ingests_of_one_day_give_one_clear_outcome(warehouse):
    wh = Warehouse(warehouse)
    with wh.day_lock(DS):
        with pytest.raises(ConcurrentIngestError, match=f"ds={DS} is being ingested by another process"):
            with wh.day_lock(DS):
                pass
    with wh.day_lock(DS):  # released: the next ingest proceeds
        pass


def test_vacuum_drops_superseded_runs_and_killed_writers_files(warehouse):
    wh = Warehouse(warehouse)
    _publish_day(wh, "run-a", 3)
    _publish_day(wh, "run-b", 4)
    with pytest.raises(RuntimeError):
        with wh.staged_day(DS, "run-c") as folders:
            pq.write_table(_day_rows("events", "run-c", 2), folders["events"] / "part-00000.parquet")
            raise RuntimeError("killed")
    stray = wh.table_dir("events") / f"ds={DS}" / "attempt=run-k.0" / "part-00000.parquet"
    stray.parent.mkdir(parents=True)  # what a kill -9 leaves: files never committed
    pq.write_table(_day_rows("events", "run-k", 2), stray)
    events_files = lambda: sorted(wh.table_dir("events").glob("ds=*/*/*.parquet"))  # noqa: E731
    assert len(events_files()) == 3  # run-a (superseded), run-b, the stray
    assert wh.vacuum(retention_hours=1)["events"] == 0  # all younger than the retention
    time.sleep(0.01)
    deleted = wh.vacuum(retention_hours=0)
    assert deleted["events"] >= 2 and [p.parent.name.split(".")[0] for p in events_files()] == ["attempt=run-b"]
    assert _visible(wh) == dict.fromkeys(DAY_TABLES, 4)
    assert wh.history("events")[0]["operation"] in ("VACUUM END", "WRITE", "VACUUM START", "DELETE")


# ---- concurrency ----------------------------------------------------------------------------


def _publish_many(args):
    root, method, n = args
    wh, failures = Warehouse(root), 0
    for i in range(n):
        try:
            wh.write_partition("importance_scores", {"ds": DS, "method": method}, _scores(2, float(i)))
        except Exception:
            failures += 1
    return failures


def test_concurrent_writers_to_different_partitions_never_fail(warehouse):
    """Parallel mapped score tasks commit side by side to one table (4 processes x 30 commits
    here; benchmarks/faults.py runs 4 x 100)."""
    with mp.get_context("spawn").Pool(4) as pool:
        failures = pool.map(_publish_many, [(str(warehouse), f"m{k}", 30) for k in range(4)])
    wh = Warehouse(warehouse)
    assert sum(failures) == 0
    scores = wh.read_table("importance_scores").to_pandas()
    assert sorted(set(scores["method"])) == ["m0", "m1", "m2", "m3"] and set(scores["score"]) == {29.0}
    assert len(scores) == 8 and wh.history("importance_scores")[0]["version"] == 120


def _read_many(args):
    root, seconds = args
    wh, bad, reads = Warehouse(root), [], 0
    deadline = time.time() + seconds
    while time.time() < deadline:
        rows = _visible(wh)
        reads += 1
        if set(rows.values()) not in ({3}, {5}):
            bad.append(rows)
    return reads, bad


def test_readers_during_republishing_see_old_or_new_day(warehouse):
    wh = Warehouse(warehouse)
    _publish_day(wh, "run-3", 3)
    with mp.get_context("spawn").Pool(2) as pool:
        pending = pool.map_async(_read_many, [(str(warehouse), 6.0)] * 2)
        for i in range(12):
            run = "run-5" if i % 2 == 0 else "run-3"
            _publish_day(wh, run, 5 if run == "run-5" else 3)
        results = pending.get()
    assert sum(r for r, _ in results) > 20
    assert [b for _, bad in results for b in bad] == []
