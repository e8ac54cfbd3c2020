"""The warehouse: Delta Lake tables (delta-rs, no JVM), the day manifest, and the DuckDB SQL catalog.

Layout under the warehouse root (a local folder by default)::

    raw/ubi_queries/ds=D/*                landed UBI queries (simulator or producer)
    raw/ubi_events/ds=D/*                 landed UBI events
    raw/catalog/catalog.parquet           item catalog (item_id, title, ...)
    oracle/ds=D/oracle.parquet            simulator ground truth (never read by training)
    benchmark/holdout/holdout.parquet     judged holdout (query_text, item_id, grade)
    tables/<table>/_delta_log/            one Delta table per schema in sie.schemas
    tables/<table>/<k>=<v>/.../*.parquet  its data files (only those in the log are the table)
    models/ds=D/                          checkpoints and training dynamics
    validation/<suite>/ds=D/              Great Expectations results (JSON + HTML)
    costs/ds=D/<method>.json              scoring cost of each method
    reports/                              benchmark reports

Every write is one Delta commit: a reader sees a table before or after it, never between,
and concurrent writers are serialised by the log (optimistic concurrency, retried on a
conflict). A day's five ingest tables (``DAY_TABLES``) are committed one by one and then the
day manifest ``ingest_days`` names the run that made them: readers (``read_table``,
``data_files``, ``sie sql``, Spark) see only the rows of that run, so a day is visible whole
or not at all. Rows of superseded runs stay until :meth:`Warehouse.vacuum` (retention), so a
reader that loaded the manifest just before a re-ingest still finds its run's files.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.parquet as pq

from sie.config import SieConfig
from sie.schemas import DAY_TABLES, TABLES, TableSchema

log = logging.getLogger(__name__)
MANIFEST = "ingest_days"
_COMMIT_RETRIES = 50


class ConcurrentIngestError(RuntimeError):
    """Another process is ingesting the same day right now; this one changed nothing."""


@dataclass(frozen=True)
class DataFile:
    """One Parquet file of a table snapshot: its partition values and the run that wrote it."""

    path: Path
    partition: dict[str, str]
    run_id: str | None
    rows: int


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

    def model_dir(self, ds: str) -> Path:
        return self.root / "models" / f"ds={ds}"

    def validation_dir(self, suite: str, ds: str) -> Path:
        return self.root / "validation" / suite / f"ds={ds}"

    def cost_path(self, ds: str, method: str) -> Path:
        return self.root / "costs" / f"ds={ds}" / f"{method}.json"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    @property
    def staging_dir(self) -> Path:
        """Folders being written outside the tables (model versions) before they are swapped in."""
        return self.root / "_staging"

    # ---- snapshots -----------------------------------------------------------
    def delta(self, table: str, as_of: int | datetime | None = None):
        """The table's Delta snapshot (latest, or at a version / time), or None before its first commit."""
        from deltalake import DeltaTable

        path = self.table_dir(table)
        if not DeltaTable.is_deltatable(str(path)):
            return None
        if isinstance(as_of, int):
            return DeltaTable(str(path), version=as_of)
        dt = DeltaTable(str(path))
        if as_of is not None:
            if _first_commit_time(dt) > as_of:
                return None
            dt.load_as_version(as_of)
        return dt

    def data_files(
        self,
        table: str,
        filters: Mapping[str, list[str]] | None = None,
        as_of: int | datetime | None = None,
        runs: Mapping[str, str] | None = None,
    ) -> list[DataFile]:
        """The files of the table's snapshot whose partition values are in ``filters``; for a day
        table only those of the run its day manifest names (what every reader must read).

        ``runs``: the manifest (:meth:`current_runs`) to honour; a reader of several day tables
        loads it once so that all of them show the same runs.
        """
        if table not in TABLES:
            raise KeyError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
        current = None
        if table in DAY_TABLES:  # the manifest first: its runs' files outlive any later commit
            when = _commit_time(self.delta(table), as_of) if isinstance(as_of, int) else as_of
            current = runs if runs is not None else self.current_runs(when)
        keep = []
        for f in _snapshot_files(self.delta(table, as_of), self.table_dir(table)):
            if filters and any(f.partition.get(k) not in set(v) for k, v in filters.items()):
                continue
            if current is not None and current.get(f.partition["ds"]) != f.run_id:
                continue
            keep.append(f)
        return keep

    def current_runs(self, as_of: datetime | None = None) -> dict[str, str]:
        """ds -> the run whose rows the day tables show (from the manifest)."""
        runs: dict[str, str] = {}
        for f in self.data_files(MANIFEST, as_of=as_of):
            for run_id in pq.read_table(f.path, columns=["run_id"]).column("run_id").to_pylist():
                runs[f.partition["ds"]] = run_id
        return runs

    def partitions(self, table: str) -> list[dict[str, str]]:
        """Visible partitions of ``table`` as dicts, sorted."""
        keys = TABLES[table].partition_by
        seen = {tuple(f.partition[k] for k in keys) for f in self.data_files(table)}
        return [dict(zip(keys, values)) for values in sorted(seen)]

    def read_table(
        self,
        table: str,
        filters: Mapping[str, list[str]] | None = None,
        as_of: int | datetime | None = None,
        runs: Mapping[str, str] | None = None,
        columns: list[str] | None = None,
    ) -> pa.Table:
        """The visible rows (optionally of the partitions in ``filters``), partition columns last;
        only the data ``columns`` given (all by default: reading fewer is what keeps a big window small)."""
        parts = list(self.read_batches(table, filters, as_of, runs, columns))
        if not parts:
            return _delta_schema(self._read_schema(table, columns)).empty_table()
        return pa.concat_tables(parts)

    def read_batches(
        self,
        table: str,
        filters: Mapping[str, list[str]] | None = None,
        as_of: int | datetime | None = None,
        runs: Mapping[str, str] | None = None,
        columns: list[str] | None = None,
        batch_rows: int | None = None,
    ) -> Iterator[pa.Table]:
        """:meth:`read_table`'s rows streamed: a table per file, or per Parquet record batch of at
        most ``batch_rows`` rows (one batch in memory at a time, whatever the partition's size)."""
        schema = self._read_schema(table, columns)
        for f in self.data_files(table, filters, as_of, runs):
            file = pq.ParquetFile(f.path)  # one footer read: the file's columns, then its data
            present = [c for c in schema.columns if c in file.schema_arrow.names]
            if batch_rows is None:
                chunks: Iterable[pa.Table] = [file.read(columns=present)]
            else:
                chunks = (pa.Table.from_batches([b]) for b in file.iter_batches(batch_size=batch_rows, columns=present))
            for data in chunks:
                data = conform(data, schema, missing_as_null=True)
                for k in schema.partition_by:
                    data = data.append_column(k, pa.repeat(pa.scalar(f.partition[k], pa.string()), data.num_rows))
                yield data

    @staticmethod
    def _read_schema(table: str, columns: list[str] | None) -> TableSchema:
        schema = TABLES[table]
        if columns is None:
            return schema
        fields = [schema.schema.field(c) for c in schema.columns if c in columns]
        return dataclasses.replace(schema, schema=pa.schema(fields))

    # ---- writes --------------------------------------------------------------
    def ensure_table(self, table: str):
        """Create the (empty) Delta table on first use; several processes racing to do it create it once."""
        from deltalake import DeltaTable

        path = self.table_dir(table)
        if not DeltaTable.is_deltatable(str(path)):
            schema = TABLES[table]
            path.mkdir(parents=True, exist_ok=True)
            with open(path.parent / f".{table}.create.lock", "a") as handle:  # one creator, not two commits
                fcntl.flock(handle, fcntl.LOCK_EX)
                if not DeltaTable.is_deltatable(str(path)):
                    DeltaTable.create(
                        str(path), _delta_schema(schema), partition_by=list(schema.partition_by), mode="ignore"
                    )
        table_obj = DeltaTable(str(path))
        if _missing_columns(table_obj, TABLES[table]):
            table_obj = self._add_columns(table)
        return table_obj

    def _add_columns(self, table: str):
        """Additive migration: a column added to the schema after the table was created is added to
        the table (null in the rows written before), in one commit, by one process."""
        from deltalake import DeltaTable
        from deltalake.schema import Field

        path = self.table_dir(table)
        with open(path.parent / f".{table}.create.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            current = DeltaTable(str(path))
            missing = _missing_columns(current, TABLES[table])
            if missing:
                current.alter.add_columns([Field.from_arrow(f) for f in missing])
                log.info("%s: added the column(s) %s", table, ", ".join(f.name for f in missing))
        return DeltaTable(str(path))

    def write_partition(self, table: str, partition: dict[str, str], data: pa.Table) -> Path:
        """Replace one partition with ``data`` in one commit (the rest of the table is untouched);
        returns the table's folder."""
        from deltalake import write_deltalake

        schema = TABLES[table]
        _check_partition(schema, partition)
        if table in DAY_TABLES:
            raise ValueError(f"{table} is a day table: write it with write_day (it needs the day manifest)")
        data = conform(data, schema)
        for k in schema.partition_by:
            data = data.append_column(k, pa.array([partition[k]] * data.num_rows, pa.string()))
        self.ensure_table(table)
        write_deltalake(
            str(self.table_dir(table)),
            data,
            partition_by=list(schema.partition_by),
            mode="overwrite",
            predicate=_predicate(partition),
            commit_properties=_commit_properties({"sie.partition": partition}),
        )
        return self.table_dir(table)

    @contextmanager
    def staged_day(self, ds: str, run_id: str) -> Iterator[dict[str, Path]]:
        """Fresh folders (inside each day table) for a run's files; removed again on an exception.

        Files written there are invisible until :meth:`publish_day` commits them; a killed
        writer's files are never committed and the vacuum deletes them after the retention.
        """
        attempt = f"{run_id}.{uuid.uuid4().hex[:8]}"
        folders = {t: self.table_dir(t) / f"ds={ds}" / f"attempt={attempt}" for t in DAY_TABLES}
        for folder in folders.values():
            folder.mkdir(parents=True)
        try:
            yield folders
        except BaseException:
            for table, folder in folders.items():
                if not self._committed(table, folder):  # committed files belong to the table's log now
                    shutil.rmtree(folder, ignore_errors=True)
            raise

    def _committed(self, table: str, folder: Path) -> bool:
        return any(f.path.parent == folder for f in _snapshot_files(self.delta(table), self.table_dir(table)))

    def publish_day(self, ds: str, run_id: str, folders: dict[str, Path], manifest: pa.Table, on_commit=None) -> None:
        """Commit each day table's staged files, then the manifest row that names this run: the one
        commit that makes the new day visible (readers see the previous run's rows until then).

        ``on_commit(table)`` runs after each table's commit (the fault points of the ingest).
        """
        for table in DAY_TABLES:
            self._commit_files(table, {"ds": ds}, run_id, folders[table])
            if on_commit:
                on_commit(table)
        self.write_partition(MANIFEST, {"ds": ds}, manifest)

    def write_day(self, ds: str, tables: Mapping[str, pa.Table], run_id: str) -> None:
        """Publish a day of (some of) the day tables from arrow tables, with its manifest row (for
        writers other than the Spark ingest: fixtures, imports). ``run_id`` replaces the rows' own."""
        from sie.schemas import INGEST_DAYS

        with self.staged_day(ds, run_id) as folders:
            for table, data in tables.items():
                data = conform(data, TABLES[table])
                data = data.set_column(data.column_names.index("run_id"), "run_id", pa.array([run_id] * len(data)))
                pq.write_table(data, folders[table] / "part-00000.parquet")
            row = {f.name: None for f in INGEST_DAYS.schema}
            row.update(run_id=run_id, committed_at=datetime.now(UTC), settings="{}")
            row.update({t: len(d) for t, d in tables.items() if t in INGEST_DAYS.schema.names})
            self.publish_day(ds, run_id, folders, pa.Table.from_pylist([row], schema=INGEST_DAYS.schema))

    def write_partition_batches(
        self, table: str, partition: dict[str, str], run_id: str, batches: Iterable[pa.Table]
    ) -> int:
        """:meth:`write_partition` for data that comes in batches: each is appended to one staged
        Parquet file as it comes (one batch in memory at a time), then that file replaces the
        partition in one commit; a failed batch commits nothing. Returns the rows written."""
        schema, rows = TABLES[table], 0
        folder = self.staged_partition(table, partition, run_id)
        try:
            with pq.ParquetWriter(folder / "part-00000.parquet", schema.schema) as writer:
                for data in batches:
                    writer.write_table(conform(data, schema))
                    rows += data.num_rows
            self.commit_partition(table, partition, run_id, folder)
        except BaseException:
            if not self._committed(table, folder):
                shutil.rmtree(folder, ignore_errors=True)
            raise
        return rows

    def staged_partition(self, table: str, partition: dict[str, str], run_id: str) -> Path:
        """A fresh folder inside ``table`` for Parquet parts written by several processes (one per rank
        of a sharded job), invisible until :meth:`commit_partition` commits them; a killed writer's
        files are never committed and the vacuum deletes them after the retention."""
        _check_partition(TABLES[table], partition)
        folder = self.table_dir(table).joinpath(*(f"{k}={v}" for k, v in partition.items()))
        folder = folder / f"attempt={run_id}.{uuid.uuid4().hex[:8]}"
        folder.mkdir(parents=True)
        return folder

    def commit_partition(self, table: str, partition: dict[str, str], run_id: str, folder: Path) -> None:
        """Replace the whole partition with ``folder``'s Parquet files (data columns of the table's
        schema, see :func:`conform`) in one commit: readers see all the old rows or all the new ones."""
        _check_partition(TABLES[table], partition)
        if table in DAY_TABLES:
            raise ValueError(f"{table} is a day table: publish it with publish_day (it needs the day manifest)")
        self._commit_files(table, dict(partition), run_id, folder, every_run=True)

    def _commit_files(
        self, table: str, partition: dict[str, str], run_id: str, folder: Path, every_run: bool = False
    ) -> None:
        """One commit: add ``folder``'s Parquet files and remove the partition's earlier files of the
        same run (a rerun or a killed attempt), or of every run with ``every_run``. Other runs' files
        stay for readers that loaded the manifest before this ingest; the vacuum drops them after the
        retention."""
        from deltalake.transaction import RemoveAction

        for junk in folder.iterdir():  # Spark's _SUCCESS and .crc files are not table data
            if not junk.name.endswith(".parquet"):
                junk.unlink()
        adds = [_add_action(self.table_dir(table), f, partition, run_id) for f in sorted(folder.glob("*.parquet"))]
        if not adds:  # nothing written for this table (write_day of some tables only)
            folder.rmdir()
            return
        schema = _delta_schema(TABLES[table])
        now = int(time.time() * 1000)
        for attempt in range(_COMMIT_RETRIES):
            dt = self.ensure_table(table)
            removes = [
                RemoveAction(str(f.path.relative_to(self.table_dir(table))), True, now, None, f.partition)
                for f in _snapshot_files(dt, self.table_dir(table))
                if f.partition == partition and (every_run or f.run_id == run_id)
            ]
            try:
                dt.create_write_transaction(
                    [*removes, *adds],
                    mode="append",
                    schema=schema,
                    partition_by=list(TABLES[table].partition_by),
                    commit_properties=_commit_properties({"sie.partition": partition, "sie.run_id": run_id}),
                )
                return
            except Exception as exc:  # a concurrent commit removed the same files: reload and retry
                if "conflict" not in str(exc).lower() or attempt == _COMMIT_RETRIES - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))

    @contextmanager
    def day_lock(self, ds: str) -> Iterator[None]:
        """One ingest of a day at a time: a second one fails at once with a clear error."""
        path = self.root / "_locks" / f"ingest-ds={ds}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ConcurrentIngestError(
                    f"ds={ds} is being ingested by another process (lock {path}); this run changed nothing"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # ---- folders outside the tables (model versions) -------------------------
    def publish_folder(self, staging: Path, final: Path) -> None:
        """Swap a complete folder in with two renames under a lock; a journal (paths relative to the
        warehouse, so a copied warehouse recovers itself) lets :meth:`recover` undo a half swap."""
        with self._publish_lock():
            self._recover_locked()
            final.parent.mkdir(parents=True, exist_ok=True)
            trash = self.staging_dir / f"trash-{uuid.uuid4().hex}"
            journal = self.staging_dir / f"publish-{uuid.uuid4().hex}.json"
            rel = {"final": str(final.relative_to(self.root)), "trash": str(trash.relative_to(self.root))}
            journal.write_text(json.dumps(rel))
            if final.exists():
                os.rename(final, trash)
            os.rename(staging, final)
            journal.unlink()
        shutil.rmtree(trash, ignore_errors=True)

    @contextmanager
    def _publish_lock(self) -> Iterator[None]:
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".publish.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def recover(self) -> None:
        """Undo folder swaps that a killed process left half done."""
        if self.staging_dir.exists():
            with self._publish_lock():
                self._recover_locked()

    def _recover_locked(self) -> None:
        for journal in self.staging_dir.glob("publish-*.json"):
            entry = json.loads(journal.read_text())
            final, trash = self.root / entry["final"], self.root / entry["trash"]
            if not final.exists() and trash.exists():
                os.rename(trash, final)  # killed between the renames: restore the old folder
            shutil.rmtree(trash, ignore_errors=True)
            journal.unlink()

    # ---- history and retention -----------------------------------------------
    def history(self, table: str, limit: int | None = None) -> list[dict]:
        """The table's commits, newest first: version, timestamp, operation, partition, run_id."""
        dt = self.delta(table)
        if dt is None:
            raise FileNotFoundError(f"table {table} has no commits yet under {self.table_dir(table)}")
        rows = []
        for c in dt.history(limit):
            rows.append(
                {
                    "version": c.get("version"),
                    "timestamp": datetime.fromtimestamp(c["timestamp"] / 1000, UTC).isoformat(),
                    "operation": c.get("operation"),
                    "partition": json.dumps(c.get("sie.partition")) if c.get("sie.partition") else None,
                    "run_id": c.get("sie.run_id"),
                }
            )
        return rows

    def vacuum(self, retention_hours: float, dry_run: bool = False) -> dict[str, int]:
        """Drop superseded runs' rows from the day tables, then delete files no snapshot younger than
        ``retention_hours`` needs (also those of killed writers) and old log entries."""
        summary: dict[str, int] = {}
        current = self.current_runs(None)
        for table in TABLES:
            dt = self.delta(table)
            if dt is None:
                continue
            if table in DAY_TABLES and not dry_run:
                self._drop_superseded(table, current, retention_hours)
                dt = self.delta(table)
            deleted = dt.vacuum(
                retention_hours=int(retention_hours), dry_run=dry_run, enforce_retention_duration=False, full=True
            )
            deleted += self._stale_attempts(table, retention_hours, dry_run)
            if not dry_run:
                dt.create_checkpoint()
                dt.cleanup_metadata()
            summary[table] = len(deleted)
        return summary

    def _drop_superseded(self, table: str, current: dict[str, str], retention_hours: float) -> None:
        from deltalake.transaction import RemoveAction

        cutoff = (time.time() - retention_hours * 3600) * 1000
        dt = self.delta(table)
        base = self.table_dir(table)
        stale = [
            f
            for f in _snapshot_files(dt, base)
            if current.get(f.partition["ds"]) != f.run_id and f.path.stat().st_mtime * 1000 < cutoff
        ]
        if stale:
            now = int(time.time() * 1000)
            removes = [RemoveAction(str(f.path.relative_to(base)), True, now, None, f.partition) for f in stale]
            dt.create_write_transaction(
                removes,
                mode="append",
                schema=_delta_schema(TABLES[table]),
                partition_by=list(TABLES[table].partition_by),
                commit_properties=_commit_properties({"sie.vacuum": "superseded runs"}),
            )

    def _stale_attempts(self, table: str, retention_hours: float, dry_run: bool) -> list[str]:
        """``attempt=`` folders left without table data (emptied by the vacuum, or holding only a killed
        writer's hidden files) and older than the retention."""
        cutoff = time.time() - retention_hours * 3600
        removed = []
        for folder in self.table_dir(table).glob("*=*/attempt=*"):
            if folder.stat().st_mtime < cutoff and not any(p.suffix == ".parquet" for p in folder.iterdir()):
                removed.append(str(folder))
                if not dry_run:
                    shutil.rmtree(folder, ignore_errors=True)
        return removed


# ---- Delta helpers -------------------------------------------------------------------


def _delta_schema(schema: TableSchema) -> pa.Schema:
    """The Delta table's schema: the data columns, then the partition columns (strings)."""
    return pa.schema([*schema.schema, *(pa.field(k, pa.string()) for k in schema.partition_by)])


def _missing_columns(table_obj, schema: TableSchema) -> list[pa.Field]:
    have = {f.name for f in table_obj.schema().fields}
    return [f for f in _delta_schema(schema) if f.name not in have]


def _check_partition(schema: TableSchema, partition: Mapping[str, str]) -> None:
    if tuple(partition) != schema.partition_by:
        raise ValueError(f"{schema.name} is partitioned by {schema.partition_by}, got {tuple(partition)}")


def _predicate(partition: Mapping[str, str]) -> str:
    return " AND ".join(f"{k} = '{str(v).replace(chr(39), chr(39) * 2)}'" for k, v in partition.items())


def _commit_properties(metadata: dict):
    from deltalake import CommitProperties

    return CommitProperties(custom_metadata=metadata, max_commit_retries=_COMMIT_RETRIES)


def _add_action(base: Path, file: Path, partition: dict[str, str], run_id: str):
    """An add action for a Parquet file written by Spark or pyarrow; its stats name the run."""
    from deltalake.transaction import AddAction

    rows = pq.ParquetFile(file).metadata.num_rows
    stats = {"numRecords": rows, "minValues": {"run_id": run_id}, "maxValues": {"run_id": run_id}}
    stat = file.stat()
    return AddAction(
        str(file.relative_to(base)), stat.st_size, dict(partition), int(stat.st_mtime * 1000), True, json.dumps(stats)
    )


def _snapshot_files(dt, base: Path) -> list[DataFile]:
    if dt is None:
        return []
    actions = pa.table(dt.get_add_actions(flatten=True))
    names = actions.column_names
    cols = {n: actions.column(n).to_pylist() for n in names}
    partition_keys = [n.removeprefix("partition.") for n in names if n.startswith("partition.")]
    run_ids = cols.get("min.run_id", [None] * actions.num_rows)
    records = cols.get("num_records", [0] * actions.num_rows)
    files = []
    for i, rel in enumerate(cols.get("path", [])):
        partition = {k: cols[f"partition.{k}"][i] for k in partition_keys}
        path = base / unquote(rel)  # the log holds URL-encoded paths
        files.append(DataFile(path, partition, run_ids[i], int(records[i] or 0)))
    return files


def _first_commit_time(dt) -> datetime:
    first = dt.history()[-1]
    return datetime.fromtimestamp(first["timestamp"] / 1000, UTC)


def _commit_time(dt, version: int) -> datetime | None:
    """When ``version`` of a table was committed (None for a table with no commits)."""
    if dt is None:
        return None
    for commit in dt.history():
        if commit.get("version") == version:
            return datetime.fromtimestamp(commit["timestamp"] / 1000, UTC)
    raise ValueError(f"{dt.table_uri}: no version {version} (history holds versions 0..{dt.version()})")


def lean_pandas(data: pa.Table):
    """``data`` as pandas with Arrow-backed strings (no Python object per value: a 10M-row
    day's ids and texts would take several GB as objects); ``data`` is consumed."""
    import pandas as pd

    # (pandas writes its Arrow strings to Parquet as large_string: read back, they map here too)
    strings = {pa.string(): pd.StringDtype("pyarrow"), pa.large_string(): pd.StringDtype("pyarrow")}
    return data.to_pandas(types_mapper=strings.get, self_destruct=True)


def release_freed_memory() -> None:
    """Hand freed memory back to the OS: Arrow's allocator keeps freed buffers for reuse (after
    reading and sorting a window, about as much again as its data) and glibc keeps freed
    heap blocks; a process that reads a large day batch by batch otherwise grows with each."""
    import ctypes
    import gc

    gc.collect()
    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def rechunked(tables: Iterable[pa.Table], rows: int) -> Iterator[pa.Table]:
    """The rows of ``tables``, in order, again as tables of ``rows`` rows (the last one shorter):
    two streams cut into batches differently can then be walked side by side."""
    held: list[pa.Table] = []
    n = 0
    for table in tables:
        held.append(table)
        n += table.num_rows
        while n >= rows:
            whole = pa.concat_tables(held)
            yield whole.slice(0, rows)
            held, n = [whole.slice(rows)], n - rows
    if n:
        yield pa.concat_tables(held)


def conform(data: pa.Table, schema: TableSchema, missing_as_null: bool = False) -> pa.Table:
    """Select and cast to the table's columns; fail clearly on missing columns, or (reading a file
    written before a column was added to the schema) read them as null."""
    missing = [c for c in schema.columns if c not in data.column_names]
    if missing and not missing_as_null:
        raise ValueError(f"{schema.name}: missing columns {missing}")
    for name in missing:
        data = data.append_column(name, pa.nulls(data.num_rows, schema.schema.field(name).type))
    return data.select(schema.columns).cast(schema.schema)


def _columns_in_files(schema: TableSchema, files: list[DataFile]) -> set[str]:
    """The schema's columns present in at least one file: footers are read newest first until
    every column is found (one footer, unless files predate a column added to the schema)."""
    found: set[str] = set()
    for f in sorted(files, key=lambda f: f.path.stat().st_mtime, reverse=True):
        found |= set(pq.read_schema(f.path).names) & set(schema.columns)
        if len(found) == len(schema.columns):
            break
    return found


# ---- DuckDB ----------------------------------------------------------------

_DUCK_TYPES = {
    "string": "VARCHAR",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "double": "DOUBLE",
    "float": "FLOAT",
    "binary": "BLOB",
    "timestamp[us, tz=UTC]": "TIMESTAMPTZ",
}


def _empty_view_sql(schema: TableSchema) -> str:
    cols = [f"CAST(NULL AS {_DUCK_TYPES.get(str(f.type), 'VARCHAR')}) AS {f.name}" for f in schema.schema]
    cols += [f"CAST(NULL AS VARCHAR) AS {k}" for k in schema.partition_by]
    return "SELECT " + ", ".join(cols) + " WHERE FALSE"


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _table_view_sql(schema: TableSchema, files: list[DataFile]) -> str:
    """A view over exactly the snapshot's visible files, partition values from the Delta log."""
    if not files:
        return _empty_view_sql(schema)
    listed = ", ".join(_sql_str(f.path.as_posix()) for f in files)
    values = ", ".join(
        "(" + ", ".join(_sql_str(v) for v in (f.path.as_posix(), *(f.partition[k] for k in schema.partition_by))) + ")"
        for f in files
    )
    keys = ", ".join(f'"{k}"' for k in schema.partition_by)  # quoted: `at` is a keyword
    present = _columns_in_files(schema, files)
    data = ", ".join(
        f'"{f.name}"' if f.name in present else f'CAST(NULL AS {_DUCK_TYPES.get(str(f.type), "VARCHAR")}) AS "{f.name}"'
        for f in schema.schema
    )
    return (
        f"SELECT {data}, {keys} FROM read_parquet([{listed}], filename = true, hive_partitioning = false, "
        f"union_by_name = true) JOIN (VALUES {values}) AS _parts(filename, {keys}) USING (filename)"
    )


def catalog_sql(wh: Warehouse, as_of: Mapping[str, int | datetime] | datetime | None = None) -> list[str]:
    """CREATE VIEW statements exposing every table's visible snapshot (and holdout/oracle/catalog).

    ``as_of``: a time for every table, or ``{table: version}`` for some.
    """
    stmts = []
    runs = wh.current_runs(None if isinstance(as_of, Mapping) else as_of)  # one manifest for all day tables
    for name, schema in TABLES.items():
        when = as_of.get(name) if isinstance(as_of, Mapping) else as_of
        pinned = None if isinstance(when, int) else runs
        files = wh.data_files(name, as_of=when, runs=pinned)
        stmts.append(f"CREATE OR REPLACE VIEW {name} AS {_table_view_sql(schema, files)}")
    extras = {"holdout": wh.holdout_path, "catalog": wh.catalog_path}
    for name, path in extras.items():
        if path.exists():
            stmts.append(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet({_sql_str(path.as_posix())})")
    if list(wh.root.glob("oracle/*/oracle.parquet")):
        glob = (wh.root / "oracle" / "*" / "oracle.parquet").as_posix()
        stmts.append(
            f"CREATE OR REPLACE VIEW oracle AS SELECT * FROM read_parquet({_sql_str(glob)}, "
            "hive_partitioning = true, hive_types_autocast = false)"
        )
    return stmts


def duckdb_connect(wh: Warehouse, sql_dir: Path | None = None, as_of=None):
    """An in-memory DuckDB connection with a view per table over its Delta snapshot.

    The views list the snapshot's files, so a query sees each table as it was when the
    connection opened even while writers commit; file access is then limited to the
    warehouse and the configuration locked.
    """
    import duckdb

    if not wh.root.is_dir():
        raise FileNotFoundError(f"no warehouse at {wh.root} (set --warehouse / SIE_WAREHOUSE)")
    con = duckdb.connect(":memory:")
    for stmt in catalog_sql(wh, as_of):
        con.execute(stmt)
    views = (sql_dir or default_sql_dir()) / "views.sql"
    if views.exists():
        con.execute(views.read_text())
    root = wh.root.as_posix().replace("'", "''")
    con.execute(f"SET allowed_directories = ['{root}/']")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def default_sql_dir() -> Path:
    """``sql/`` at the project root (next to the ``sie`` package)."""
    return Path(__file__).resolve().parent.parent / "sql"
