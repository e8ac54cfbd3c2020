import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
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
    """Every CREATE TABLE in sql/ddl.sql runs in Spark SQL and gives the schema's columns (comments included)."""
    from sie.schemas import TABLES

    statements = [s.strip() for s in ddl().split(";") if "CREATE TABLE" in s]
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
