import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet  # noqa: F401  (pa.parquet)
import pytest

from sie.sql import ddl
from sie.store import Warehouse

ROOT = Path(__file__).resolve().parent.parent
SIE = str(Path(sys.executable).parent / "sie")


def test_checked_in_ddl_matches_schemas():
    """sql/ddl.sql is generated from sie/schemas.py (`sie ddl > sql/ddl.sql`); they must agree."""
    assert (ROOT / "sql" / "ddl.sql").read_text().strip() == ddl().strip()


def test_sie_sql_cli_statement_file_and_errors(warehouse):
    wh = Warehouse(warehouse)
    wh.write_partition(
        "importance_scores",
        {"ds": "2026-11-20", "method": "loss"},
        pa.table(
            {
                "sample_id": ["a", "b"],
                "sample_ds": ["2026-11-20"] * 2,
                "run_id": ["r"] * 2,
                "model_version": ["m"] * 2,
                "score": [1.0, 3.0],
                "model_id": ["mlp"] * 2,
            }
        ),
    )
    out = subprocess.run(
        [
            SIE,
            "-w",
            str(warehouse),
            "sql",
            "SELECT method, avg(score) AS s FROM importance_scores GROUP BY 1",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == [{"method": "loss", "s": 2.0}]
    out = subprocess.run(
        [SIE, "-w", str(warehouse), "sql", "-f", "sql/importance_distribution.sql", "--format", "csv"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert out.stdout.splitlines()[0].startswith("method,n_samples")
    bad = subprocess.run(
        [SIE, "-w", str(warehouse), "sql", "SELECT * FROM no_such_table"], capture_output=True, text=True
    )
    assert bad.returncode == 1 and "no_such_table" in bad.stdout
    write = subprocess.run([SIE, "-w", str(warehouse), "sql", "DROP VIEW samples"], capture_output=True, text=True)
    assert write.returncode == 1 and "read-only" in write.stdout


@pytest.mark.integration
def test_ddl_is_valid_spark_sql(spark, tmp_path):
    """Every CREATE TABLE in sql/ddl.sql runs in Spark SQL and gives the schema's columns (comments included).

    The Delta connector jar cannot be fetched here, so the same statements are run ``USING PARQUET``:
    this checks the column and partition grammar; docs/DEPLOY.md shows the Delta form on a cluster.
    """
    from sie.schemas import TABLES

    statements = [s.strip() for s in ddl(using="PARQUET").split(";") if "CREATE TABLE" in s]
    assert len(statements) == len(TABLES)
    for stmt in statements:
        body = stmt[stmt.index("CREATE TABLE") :]
        name = body.split()[5]
        table = f"ddl_check_{name}"
        spark.sql(body.replace(f"IF NOT EXISTS {name} ", f"{table} ") + f" LOCATION '{tmp_path / name}'")
        try:
            described = spark.table(table).schema
            assert described.names == TABLES[name].columns + list(TABLES[name].partition_by)
            comments = {f.name: f.metadata.get("comment") for f in described.fields if f.metadata.get("comment")}
            assert comments == TABLES[name].comments
        finally:
            spark.sql(f"DROP TABLE IF EXISTS {table}")


def _scores_warehouse(warehouse) -> Warehouse:
    wh = Warehouse(warehouse)
    wh.write_partition(
        "importance_scores",
        {"ds": "2026-11-20", "method": "loss"},
        pa.table(
            {
                "sample_id": ["a"],
                "sample_ds": ["2026-11-20"],
                "run_id": ["r"],
                "model_version": ["m"],
                "score": [1.0],
                "model_id": ["mlp"],
            }
        ),
    )
    return wh


@pytest.mark.parametrize(
    "statement",
    [
        "COPY (SELECT * FROM importance_scores) TO '{root}/tables/importance_scores/ds=x/zz.parquet'",
        "EXPORT DATABASE '{root}/export'",
        "SELECT 1; SELECT 2",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "ATTACH '{root}/other.duckdb'",
        "CREATE TABLE t AS SELECT 1",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_parquet('{outside}/*.parquet')",
    ],
)
def test_sie_sql_refuses_every_write_and_every_file_outside_the_warehouse(warehouse, tmp_path, statement):
    from sie.config import SieConfig
    from sie.sql import query

    wh = _scores_warehouse(warehouse)
    outside = tmp_path / "outside"
    outside.mkdir()
    pa.parquet.write_table(pa.table({"x": [1]}), outside / "f.parquet")
    before = sorted(p.relative_to(wh.root) for p in wh.root.rglob("*") if "_catalog" not in p.parts)
    cfg = SieConfig.load({"warehouse": str(warehouse)})
    with pytest.raises(Exception) as err:
        query(cfg, statement.format(root=wh.root, outside=outside))
    assert "read-only" in str(err.value) or "one statement" in str(err.value) or "Permission" in str(err.value)
    after = sorted(p.relative_to(wh.root) for p in wh.root.rglob("*") if "_catalog" not in p.parts)
    assert after == before
    assert query(cfg, "SELECT count(*) AS n FROM importance_scores")["n"].iloc[0] == 1


def test_sie_sql_on_a_missing_warehouse_is_a_clear_error_and_creates_nothing(tmp_path):
    missing = tmp_path / "typo"
    out = subprocess.run([SIE, "-w", str(missing), "sql", "SELECT 1"], capture_output=True, text=True)
    assert out.returncode == 1 and "no warehouse at" in out.stdout + out.stderr
    assert not missing.exists()


def test_sql_as_of_a_version_or_a_time_and_history(warehouse):
    """`sie history` lists a table's commits; `sie sql --as-of` reads an earlier version or time."""
    import time

    wh = _scores_warehouse(warehouse)  # version 1: one row
    time.sleep(0.05)
    between = subprocess.run(["date", "-u", "+%Y-%m-%dT%H:%M:%S.%NZ"], capture_output=True, text=True).stdout.strip()
    time.sleep(0.05)
    wh.write_partition(
        "importance_scores",
        {"ds": "2026-11-21", "method": "loss"},
        pa.table(
            {
                "sample_id": ["b"],
                "sample_ds": ["d"],
                "run_id": ["r"],
                "model_version": ["m"],
                "score": [2.0],
                "model_id": ["mlp"],
            }
        ),
    )
    w = ["-w", str(warehouse)]
    count = "SELECT count(*) AS n FROM importance_scores"
    runs = {
        "now": [SIE, *w, "sql", "--format", "csv", count],
        "v1": [SIE, *w, "sql", "--format", "csv", "--as-of", "1", count],
        "time": [SIE, *w, "sql", "--format", "csv", "--as-of", between[:26] + "Z", count],
    }
    out = {k: subprocess.run(cmd, capture_output=True, text=True) for k, cmd in runs.items()}
    assert [o.stdout.split()[-1] for o in out.values()] == ["2", "1", "1"], {k: o.stderr for k, o in out.items()}
    hist = subprocess.run([SIE, *w, "history", "importance_scores", "--format", "csv"], capture_output=True, text=True)
    assert hist.returncode == 0 and hist.stdout.count("WRITE") == 2 and "2026-11-21" in hist.stdout
    two = subprocess.run(
        [SIE, *w, "sql", "--as-of", "1", "SELECT * FROM importance_scores, events"], capture_output=True, text=True
    )
    assert two.returncode == 1 and "belongs to one table" in two.stdout + two.stderr
    vacuum = subprocess.run([SIE, *w, "vacuum", "--retention-hours", "1"], capture_output=True, text=True)
    assert vacuum.returncode == 0 and "importance_scores: deleted 0 files (retention 1 h)" in vacuum.stdout
    too_short = subprocess.run([SIE, *w, "vacuum", "--retention-hours", "0"], capture_output=True, text=True)
    assert too_short.returncode == 1 and "store.retention_hours" in too_short.stderr


def test_benchmark_wide_view_has_the_raw_and_the_clean_click_metrics(cfg):
    """`benchmark_wide` (sql/views.sql) turns each cell's metric rows into columns, the clean-click ones included."""
    import pandas as pd

    from sie.bench.rows import rows_frame
    from sie.sql import query

    metrics = {"ndcg_at_10": 0.4, "click_auc": 0.43, "click_logloss": 2.6, "clean_click_auc": 0.51}
    rows = [{"method": "loss", "keep_ratio": 0.1, "seed": 0, "metric": m, "value": v} for m, v in metrics.items()]
    table = pa.Table.from_pandas(rows_frame(rows).assign(dataset="synthetic", ds="2026-11-01"), preserve_index=False)
    Warehouse.from_config(cfg).write_partition("benchmark_results", {"run_id": "bench-x"}, table)
    wide = query(cfg, "SELECT * FROM benchmark_wide").to_dict("records")
    assert len(wide) == 1
    assert {k: wide[0][k] for k in metrics} == metrics
    assert pd.isna(wide[0]["clean_click_logloss"])  # a metric the cell did not record stays null
