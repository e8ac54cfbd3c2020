"""`sie sql`: run SQL on DuckDB over the Parquet tables, strictly read-only.

Three locks, each enough on its own for the common case: exactly one statement per call,
and only a query (SELECT, WITH, DESCRIBE, EXPLAIN); the connection opens the catalog
read-only; file access is limited to the warehouse and the configuration is locked, so
no statement can read other files, load extensions or lift the limits.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from sie.config import SieConfig
from sie.schemas import TABLES
from sie.store import Warehouse, default_sql_dir, duckdb_connect


class ReadOnlyError(ValueError):
    """A statement `sie sql` refuses: not exactly one query."""


def check_read_only(sql: str) -> str:
    """``sql`` when it is exactly one query statement; :class:`ReadOnlyError` otherwise."""
    import duckdb

    statements = duckdb.extract_statements(sql)
    if len(statements) != 1:
        raise ReadOnlyError(f"sie sql runs exactly one statement per call, got {len(statements)}")
    kind = statements[0].type
    if kind not in (duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN):
        raise ReadOnlyError(f"sie sql is read-only: {kind.name} statements are refused (queries only)")
    return sql


def query(cfg: SieConfig, sql: str) -> pd.DataFrame:
    check_read_only(sql)
    con = duckdb_connect(Warehouse.from_config(cfg))
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def query_file(cfg: SieConfig, path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        candidate = default_sql_dir() / path.name
        if not candidate.exists():
            raise FileNotFoundError(f"SQL file not found: {path}")
        path = candidate
    return query(cfg, path.read_text())


def ddl() -> str:
    """CREATE TABLE statements for every table (Spark SQL / DuckDB flavour), from sie.schemas."""
    out = ["-- Generated from sie/schemas.py by `sie ddl`; do not edit by hand.", ""]
    for name, schema in TABLES.items():
        cols = [
            f"    `{f.name}` " + spark.split(" ", 1)[1] + _comment(schema.comments.get(f.name))
            for f, spark in zip(schema.schema, schema.spark_ddl().split(", "))
        ]
        cols += [f"    `{k}` STRING" for k in schema.partition_by]
        out.append(f"-- {schema.description}")
        out.append(f"CREATE TABLE IF NOT EXISTS {name} (\n" + ",\n".join(cols) + "\n)")
        out.append(f"USING PARQUET PARTITIONED BY ({', '.join(schema.partition_by)});")
        out.append("")
    return "\n".join(out)


def _comment(text: str | None) -> str:
    return "" if not text else " COMMENT '" + text.replace("'", "''") + "'"
