import os

import pyarrow as pa
import pytest

from sie.schemas import IMPORTANCE_SCORES, sample_id
from sie.store import Warehouse


def _scores(n: int, value: float) -> pa.Table:
    return pa.table(
        {
            "sample_id": [sample_id(f"q{i}", "item") for i in range(n)],
            "sample_ds": ["2026-11-20"] * n,
            "run_id": ["r"] * n,
            "model_version": ["m"] * n,
            "score": [value] * n,
        }
    )


def test_write_read_and_replace_partition(warehouse):
    wh = Warehouse(warehouse)
    part = {"ds": "2026-11-20", "method": "loss"}
    wh.write_partition("importance_scores", part, _scores(3, 1.0))
    wh.write_partition("importance_scores", {"ds": "2026-11-20", "method": "random"}, _scores(2, 0.5))
    wh.write_partition("importance_scores", part, _scores(4, 2.0))  # rerun replaces exactly
    table = wh.read_table("importance_scores", {"method": ["loss"]}).to_pandas()
    assert len(table) == 4 and set(table["score"]) == {2.0}
    assert set(table.columns) == set(IMPORTANCE_SCORES.columns) | {"ds", "method"}
    assert wh.partitions("importance_scores") == [
        {"ds": "2026-11-20", "method": "loss"},
        {"ds": "2026-11-20", "method": "random"},
    ]
    assert not list(wh.staging_dir.iterdir())


def test_failed_write_publishes_nothing_and_keeps_previous(warehouse):
    wh = Warehouse(warehouse)
    part = {"ds": "2026-11-20", "method": "loss"}
    wh.write_partition("importance_scores", part, _scores(3, 1.0))
    with pytest.raises(RuntimeError):
        with wh.staged_partition("importance_scores", part) as staging:
            (staging / "part-00000.parquet").write_bytes(b"half written")
            raise RuntimeError("killed")
    assert len(wh.read_table("importance_scores")) == 3
    assert not list(wh.staging_dir.iterdir())


def test_recover_after_kill_between_renames(warehouse):
    """Simulate a process killed after moving the old partition aside: recover() restores it."""
    wh = Warehouse(warehouse)
    part = {"ds": "2026-11-20", "method": "loss"}
    final = wh.write_partition("importance_scores", part, _scores(3, 1.0))
    trash = wh.staging_dir / "trash-x"
    (wh.staging_dir / "publish-x.json").write_text(f'{{"final": "{final}", "trash": "{trash}"}}')
    os.rename(final, trash)
    assert wh.read_table("importance_scores").num_rows == 0  # the torn state a crash would leave
    wh.recover()
    assert wh.read_table("importance_scores").num_rows == 3


def test_wrong_partition_keys_and_missing_columns_fail(warehouse):
    wh = Warehouse(warehouse)
    with pytest.raises(ValueError, match="partitioned by"):
        wh.partition_dir("importance_scores", {"ds": "2026-11-20"})
    with pytest.raises(ValueError, match="missing columns"):
        wh.write_partition("importance_scores", {"ds": "d", "method": "m"}, pa.table({"sample_id": ["a"]}))


def test_duckdb_views_are_read_only_and_typed(warehouse):
    wh = Warehouse(warehouse)
    from sie.store import duckdb_connect

    con = duckdb_connect(wh)
    assert con.execute("SELECT count(*) FROM importance_scores").fetchone() == (0,)  # empty table still has a view
    con.close()
    wh.write_partition("importance_scores", {"ds": "2026-11-20", "method": "loss"}, _scores(3, 1.0))
    con = duckdb_connect(wh)
    assert con.execute("SELECT ds, method, count(*) FROM importance_scores GROUP BY ALL").fetchall() == [
        ("2026-11-20", "loss", 3)
    ]
    with pytest.raises(Exception, match="read-only"):
        con.execute("CREATE TABLE t AS SELECT 1")
    con.close()


def _publish_many(args):
    root, method, n = args
    wh, failures = Warehouse(root), 0
    for i in range(n):
        table = pa.table(
            {"sample_id": ["a"], "sample_ds": ["d"], "run_id": ["r"], "model_version": ["v"], "score": [float(i)]}
        )
        try:
            wh.write_partition("importance_scores", {"ds": "2026-11-20", "method": method}, table)
        except Exception:
            failures += 1
    return failures


def test_concurrent_publishers_never_break_each_other(warehouse):
    """Parallel mapped score tasks publish side by side: the publish lock keeps each swap whole
    (without it, one writer's recovery rolled back another's swap in flight: 36% failures here)."""
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(4) as pool:
        failures = pool.map(_publish_many, [(str(warehouse), f"m{k}", 30) for k in range(4)])
    wh = Warehouse(warehouse)
    assert sum(failures) == 0 and list(wh.staging_dir.iterdir()) == []
    scores = wh.read_table("importance_scores").to_pandas()
    assert sorted(scores["method"]) == ["m0", "m1", "m2", "m3"] and set(scores["score"]) == {29.0}
