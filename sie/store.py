"""Warehouse layout, atomic partition publish, and the DuckDB SQL catalog.

Layout under the warehouse root (a local folder by default)::

    raw/ubi_queries/ds=D/*.ndjson[.gz]   landed UBI queries (simulator or producer)
    raw/ubi_events/ds=D/*.ndjson[.gz]    landed UBI events
    raw/catalog/catalog.parquet          item catalog (item_id, title, ...)
    oracle/ds=D/oracle.parquet           simulator ground truth (never read by training)
    benchmark/holdout/holdout.parquet    judged holdout (query_text, item_id, grade)
    tables/<table>/<k>=<v>/.../*.parquet the published tables (sie.schemas)
    models/ds=D/                         checkpoints and training dynamics
    validation/<suite>/ds=D/             Great Expectations results (JSON + HTML)
    reports/                             benchmark reports
    _staging/                            partitions being written (invisible to readers)

Publishing a partition = write it completely under ``_staging`` and then swap it in
with renames. A journal file makes the swap recoverable: if a process dies between
the two renames, the next publish (or :func:`recover`) restores the previous partition.
Publishes and recoveries take an OS file lock on the warehouse, so concurrent writers on
one machine never roll back each other's swaps. (Readers can still meet a partition
between the two renames; the move to a table format with snapshot reads, issue 11,
removes that window.)
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from sie.config import SieConfig
from sie.files import atomic_path
from sie.schemas import TABLES, TableSchema


class Warehouse:
    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()

    @classmethod
    def from_config(cls, cfg: SieConfig) -> Warehouse:
        return cls(cfg.warehouse_path)

    # ---- paths -------------------------------------------------------------
    def raw_dir(self, source: str, ds: str) -> Path:
        return self.root / "raw" / source / f"ds={ds}"

    @property
    def catalog_path(self) -> Path:
        return self.root / "raw" / "catalog" / "catalog.parquet"

    @property
    def holdout_path(self) -> Path:
        return self.root / "benchmark" / "holdout" / "holdout.parquet"

    def oracle_path(self, ds: str) -> Path:
        return self.root / "oracle" / f"ds={ds}" / "oracle.parquet"

    def table_dir(self, table: str) -> Path:
        return self.root / "tables" / table

    def partition_dir(self, table: str, partition: dict[str, str]) -> Path:
        schema = TABLES[table]
        if tuple(partition) != schema.partition_by:
            raise ValueError(f"{table} is partitioned by {schema.partition_by}, got {tuple(partition)}")
        path = self.table_dir(table)
        for key, value in partition.items():
            path = path / f"{key}={value}"
        return path

    def model_dir(self, ds: str) -> Path:
        return self.root / "models" / f"ds={ds}"

    def validation_dir(self, suite: str, ds: str) -> Path:
        return self.root / "validation" / suite / f"ds={ds}"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def staging_dir(self) -> Path:
        return self.root / "_staging"

    def partitions(self, table: str) -> list[dict[str, str]]:
        """Published partitions of ``table`` as dicts, sorted."""
        schema = TABLES[table]
        base = self.table_dir(table)
        found: list[dict[str, str]] = []
        if not base.exists():
            return found
        pattern = "/".join(f"{k}=*" for k in schema.partition_by)
        for path in sorted(base.glob(pattern)):
            parts = path.relative_to(base).parts
            found.append(dict(p.split("=", 1) for p in parts))
        return found

    # ---- atomic publish ----------------------------------------------------
    @contextmanager
    def staged_partition(self, table: str, partition: dict[str, str]) -> Iterator[Path]:
        """Yield an empty staging folder; on clean exit publish it as the partition.

        On an exception the staging folder is removed and the previous partition
        stays visible untouched.
        """
        final = self.partition_dir(table, partition)  # validates the partition keys
        staging = self.staging_dir / f"{table}-{uuid.uuid4().hex}"
        staging.mkdir(parents=True)
        try:
            yield staging
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self.publish(staging, final)

    @contextmanager
    def _publish_lock(self) -> Iterator[None]:
        """One publisher or recoverer at a time on this warehouse (an advisory lock the OS drops
        when its holder dies), so ``recover`` only ever sees the journals of killed writers."""
        import fcntl

        self.staging_dir.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".publish.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def publish(self, staging: Path, final: Path) -> None:
        with self._publish_lock():
            self._recover_locked()
            final.parent.mkdir(parents=True, exist_ok=True)
            journal = self.staging_dir / f"publish-{uuid.uuid4().hex}.json"
            trash = self.staging_dir / f"trash-{uuid.uuid4().hex}"
            journal.write_text(json.dumps({"final": str(final), "trash": str(trash)}))
            if final.exists():
                os.rename(final, trash)
            os.rename(staging, final)
            journal.unlink()
        shutil.rmtree(trash, ignore_errors=True)

    def recover(self) -> None:
        """Finish or roll back publishes that a killed process left half done."""
        if self.staging_dir.exists():
            with self._publish_lock():
                self._recover_locked()

    def _recover_locked(self) -> None:
        for journal in self.staging_dir.glob("publish-*.json"):
            entry = json.loads(journal.read_text())
            final, trash = Path(entry["final"]), Path(entry["trash"])
            if not final.exists() and trash.exists():
                os.rename(trash, final)  # killed between the renames: restore the old partition
            shutil.rmtree(trash, ignore_errors=True)
            journal.unlink()

    def clean_staging(self, older_than_s: float = 86_400.0) -> list[Path]:
        """Remove staging folders a killed writer left behind (older than ``older_than_s``); returns them.

        Journals are left to :meth:`recover`; young folders may belong to a running writer.
        """
        import time

        removed: list[Path] = []
        if not self.staging_dir.exists():
            return removed
        now = time.time()
        for path in self.staging_dir.iterdir():
            if path.is_dir() and not path.name.startswith("trash-") and now - path.stat().st_mtime > older_than_s:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        return removed

    def write_partition(self, table: str, partition: dict[str, str], data: pa.Table) -> Path:
        """Write an arrow table as one published partition (replacing any previous one)."""
        schema = TABLES[table]
        data = conform(data, schema)
        with self.staged_partition(table, partition) as staging:
            pq.write_table(data, staging / "part-00000.parquet")
        return self.partition_dir(table, partition)

    def read_table(self, table: str, filters: dict[str, list[str]] | None = None) -> pa.Table:
        """Read published partitions (optionally only those whose keys are in ``filters``)."""
        schema = TABLES[table]
        tables = []
        for part in self.partitions(table):
            if filters and any(part.get(k) not in v for k, v in filters.items()):
                continue
            path = self.partition_dir(table, part)
            files = sorted(path.rglob("*.parquet"))
            if not files:
                continue
            t = pq.read_table(files[0].parent if len(files) > 1 else files[0])
            t = conform(t, schema)
            for k in schema.partition_by:
                t = t.append_column(k, pa.array([part[k]] * t.num_rows, pa.string()))
            tables.append(t)
        if not tables:
            empty = schema.empty()
            for k in schema.partition_by:
                empty = empty.append_column(k, pa.array([], pa.string()))
            return empty
        return pa.concat_tables(tables)


def conform(data: pa.Table, schema: TableSchema) -> pa.Table:
    """Select and cast to the table's columns; fail clearly on missing columns."""
    missing = [c for c in schema.columns if c not in data.column_names]
    if missing:
        raise ValueError(f"{schema.name}: missing columns {missing}")
    return data.select(schema.columns).cast(schema.schema)


# ---- DuckDB ----------------------------------------------------------------

_DUCK_TYPES = {
    "string": "VARCHAR",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "double": "DOUBLE",
    "float": "FLOAT",
    "timestamp[us, tz=UTC]": "TIMESTAMPTZ",
}


def _empty_view_sql(schema: TableSchema) -> str:
    cols = [f"CAST(NULL AS {_DUCK_TYPES.get(str(f.type), 'VARCHAR')}) AS {f.name}" for f in schema.schema]
    cols += [f"CAST(NULL AS VARCHAR) AS {k}" for k in schema.partition_by]
    return "SELECT " + ", ".join(cols) + " WHERE FALSE"


def catalog_sql(wh: Warehouse) -> list[str]:
    """CREATE VIEW statements exposing every table (and holdout/oracle/catalog) to DuckDB."""
    stmts = []
    for name, schema in TABLES.items():
        base = wh.table_dir(name)
        if any(base.rglob("*.parquet")) if base.exists() else False:
            glob = (base / "/".join("*" for _ in schema.partition_by) / "*.parquet").as_posix()
            body = (
                f"SELECT * FROM read_parquet('{glob}', hive_partitioning = true, "
                f"hive_types_autocast = false, union_by_name = true)"
            )
        else:
            body = _empty_view_sql(schema)
        stmts.append(f"CREATE OR REPLACE VIEW {name} AS {body}")
    extras = {
        "holdout": wh.holdout_path,
        "catalog": wh.catalog_path,
    }
    for name, path in extras.items():
        if path.exists():
            stmts.append(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet('{path.as_posix()}')")
    oracle_glob = wh.root / "oracle" / "*" / "oracle.parquet"
    if list(wh.root.glob("oracle/*/oracle.parquet")):
        stmts.append(
            f"CREATE OR REPLACE VIEW oracle AS SELECT * FROM read_parquet('{oracle_glob.as_posix()}', "
            "hive_partitioning = true, hive_types_autocast = false)"
        )
    return stmts


def duckdb_connect(wh: Warehouse, sql_dir: Path | None = None):
    """A read-only DuckDB connection whose catalog has a view per table.

    The catalog file is rebuilt (to a temporary file, then renamed into place) so that
    new tables appear; queries then run through ``read_only=True``, with file access
    limited to the warehouse and the configuration locked.
    """
    import duckdb

    if not wh.root.is_dir():
        raise FileNotFoundError(f"no warehouse at {wh.root} (set --warehouse / SIE_WAREHOUSE)")

    catalog = wh.root / "_catalog" / "sie.duckdb"
    with atomic_path(catalog) as tmp:
        con = duckdb.connect(str(tmp))
        try:
            for stmt in catalog_sql(wh):
                con.execute(stmt)
            views = (sql_dir or default_sql_dir()) / "views.sql"
            if views.exists():
                con.execute(views.read_text())
        finally:
            con.close()
    con = duckdb.connect(str(catalog), read_only=True)
    root = wh.root.as_posix().replace("'", "''")
    con.execute(f"SET allowed_directories = ['{root}/']")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def default_sql_dir() -> Path:
    """``sql/`` at the project root (next to the ``sie`` package)."""
    return Path(__file__).resolve().parent.parent / "sql"
