"""`sie sql`: run SQL on DuckDB over the Delta tables' snapshots, strictly read-only.

Two locks: exactly one statement per call, and only a query (SELECT, WITH, DESCRIBE,
EXPLAIN), so COPY, EXPORT, INSTALL, LOAD, SET, ATTACH and DDL never run; the connection is
in memory with file access limited to the warehouse and its configuration locked, so no
query can read other files, load extensions or lift the limits. Each view lists the files
of its table's snapshot (:func:`sie.store.catalog_sql`), optionally ``--as-of`` a time or
version.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
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


def query(cfg: SieConfig, sql: str, as_of: str | None = None) -> pd.DataFrame:
    """Run one read-only query over the tables as they are now, or ``as_of`` a version or time."""
    check_read_only(sql)
    wh = Warehouse.from_config(cfg)
    con = duckdb_connect(wh, as_of=resolve_as_of(sql, as_of) if as_of else None)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def resolve_as_of(sql: str, as_of: str) -> dict[str, int] | datetime:
    """``--as-of``: a version number (of the one table the query reads, see `sie history`) or an
    ISO-8601 time (every table as it was then)."""
    if as_of.isdigit():
        read = sorted(t for t in TABLES if re.search(rf"\b{t}\b", sql, re.IGNORECASE))
        if len(read) != 1:
            raise ValueError(
                f"--as-of {as_of}: a version number belongs to one table, the query reads {read or 'none'};"
                " give a time instead (e.g. --as-of 2026-12-01T10:00:00Z)"
            )
        return {read[0]: int(as_of)}
    try:
        when = datetime.fromisoformat(as_of.replace("z", "Z").replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--as-of {as_of!r}: not a version number nor an ISO-8601 time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def query_file(cfg: SieConfig, path: str | Path, as_of: str | None = None) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        candidate = default_sql_dir() / path.name
        if not candidate.exists():
            raise FileNotFoundError(f"SQL file not found: {path}")
        path = candidate
    return query(cfg, path.read_text(), as_of)


def ddl(using: str = "DELTA") -> str:
    """CREATE TABLE statements for every table (Spark SQL flavour), from sie.schemas.

    The tables are Delta tables at ``<warehouse>/tables/<name>``; on a Spark cluster with the
    delta-spark connector, add ``LOCATION '<warehouse>/tables/<name>'`` (docs/DEPLOY.md).
    """
    out = ["-- Generated from sie/schemas.py by `sie ddl`; do not edit by hand.", ""]
    for name, schema in TABLES.items():
        cols = [
            f"    `{f.name}` " + spark.split(" ", 1)[1] + _comment(schema.comments.get(f.name))
            for f, spark in zip(schema.schema, schema.spark_ddl().split(", "))
        ]
        cols += [f"    `{k}` STRING" for k in schema.partition_by]
        out.append(f"-- {schema.description}")
        out.append(f"CREATE TABLE IF NOT EXISTS {name} (\n" + ",\n".join(cols) + "\n)")
        out.append(f"USING {using} PARTITIONED BY ({', '.join(schema.partition_by)});")
        out.append("")
    return "\n".join(out)


def _comment(text: str | None) -> str:
    return "" if not text else " COMMENT '" + text.replace("'", "''") + "'"
