"""`ingest_day`: raw UBI files of one ds -> events, queries, quarantine, samples, reconciliation.

All five tables' files are written first (invisible); only when every one is complete and
the reconciliation adds up are they committed to their Delta tables, and then the day
manifest ``ingest_days`` names this run (:meth:`sie.store.Warehouse.publish_day`): the day
becomes visible whole in that last commit. A failure or a kill before it leaves the
previous day visible; a rerun gives identical tables (the run_id is a fingerprint of the
landed bytes and settings; ids and row order are deterministic). Fault points (:mod:`sie.faults`):
``ingest.staged.<table>`` after each table's write, ``ingest.committed.<table>`` after
each table's commit.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from sie import faults
from sie.config import SieConfig
from sie.ds import Ds
from sie.ingest import parse
from sie.ingest.day import DayWindow
from sie.ingest.run import IngestRun
from sie.ingest.samples import build_samples, history_days
from sie.ingest.tally import Tally
from sie.schemas import EVENTS, INGEST_DAYS, QUARANTINE, QUERIES, RECONCILIATION, SAMPLES, TableSchema, _spark_type
from sie.store import Warehouse

log = logging.getLogger(__name__)

# Sort keys that make every written partition byte-for-byte reproducible in content order.
_ORDER = {
    "events": ("event_ts", "event_id", "file", "line_no"),
    "queries": ("request_ts", "query_id"),
    "quarantine": ("source", "file", "line_no"),
    "samples": ("request_ts", "query_id", "position", "sample_id"),
    "reconciliation": ("source",),
}


class ReconciliationError(RuntimeError):
    """Raw record counts do not add up to accepted + quarantined + dedup drops; nothing was published."""


def ingest_day(cfg: SieConfig, ds: str, spark=None, run_id: str | None = None) -> dict[str, Any]:
    """Ingest one day of raw UBI logs and publish its partitions; returns a summary.

    Raises ValueError for a ``ds`` that is not a day, FileNotFoundError when the day has
    not landed (no ``raw/ubi_events/ds=D`` folder), :class:`ReconciliationError` when the
    counts do not add up.
    """
    from sie.spark import get_spark

    started = time.time()
    day = DayWindow.of(Ds(ds), cfg.ingest.lateness_hours)
    wh, files = _landed_day(cfg, day.ds)
    spark = spark or get_spark(cfg)
    run = IngestRun(
        cfg=cfg,
        warehouse=wh,
        spark=spark,
        day=day,
        run_id=run_id or run_fingerprint(cfg, day.ds, files),
        files=files,
        history_days=history_days(wh, day, cfg.ingest.stats_window_days),
        started=started,
    )
    _configure_spark(spark, day.ds)
    partitions = _shuffle_partitions(cfg, files)
    log.info("ingest ds=%s: %d raw files, %d shuffle partitions", day.ds, sum(map(len, files.values())), partitions)
    previous = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", str(partitions))
    try:
        with wh.day_lock(day.ds):
            laps = _Laps(spark, day.ds)
            records = _classified_records(run)
            laps("classify")
            summary = _ingest(run, records, laps)
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", previous)
    summary["shuffle_partitions"] = partitions
    return summary


# ---- before Spark: the warehouse and the landed files ---------------------------------------


def _landed_day(cfg: SieConfig, ds: Ds) -> tuple[Warehouse, dict[str, list[Path]]]:
    """The recovered warehouse and the day's raw files per source; FileNotFoundError if not landed."""
    wh = Warehouse.from_config(cfg)
    events_dir, queries_dir = wh.raw_dir("ubi_events", ds), wh.raw_dir("ubi_queries", ds)
    if not events_dir.is_dir():
        raise FileNotFoundError(f"raw day not landed: no UBI events folder {events_dir} for ds={ds}")
    if not queries_dir.is_dir():
        log.warning("ds=%s: no UBI queries folder %s; requests come from the events only", ds, queries_dir)
    return wh, {"ubi_queries": parse.list_raw_files(queries_dir), "ubi_events": parse.list_raw_files(events_dir)}


# Ingest settings that change how the day is computed, not what rows it gives: not in the run id.
_HOW_IT_RUNS = ("spark_master", "shuffle_partitions", "landed_bytes_per_partition", "rows_per_file")


def run_fingerprint(cfg: SieConfig, ds: Ds, files: dict) -> str:
    """``ingest-<ds>-<12 hex>``: a digest of the landed files (names and bytes) and the ingest settings,
    so a rerun on the same inputs writes identical rows and a changed input a new run."""
    import hashlib
    import json
    from dataclasses import asdict

    rules = {k: v for k, v in asdict(cfg.ingest).items() if k not in _HOW_IT_RUNS}
    digest = hashlib.sha256(json.dumps(rules, sort_keys=True).encode())
    for source in sorted(files):
        for path in sorted(Path(p) for p in files[source]):
            digest.update(f"\0{source}\0{path.name}\0".encode())
            try:
                with open(path, "rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
            except OSError as exc:  # an unreadable file is quarantined by the landing pass, not fatal here
                digest.update(f"unreadable: {exc.strerror}".encode())
    return f"ingest-{ds}-{digest.hexdigest()[:12]}"


def _configure_spark(spark, ds: Ds) -> None:
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.sparkContext.setJobDescription(f"sie ingest ds={ds}")


def _shuffle_partitions(cfg: SieConfig, files: dict[str, list[Path]]) -> int:
    """Shuffle partitions scale with the day: a few for a small day (each partition costs task
    overhead), more for a large one (a partition must fit a task's memory)."""
    landed = sum(p.stat().st_size for paths in files.values() for p in paths)
    return max(cfg.ingest.shuffle_partitions, math.ceil(landed / max(1, cfg.ingest.landed_bytes_per_partition)))


# ---- parse and classify -------------------------------------------------------------------


def _classified_records(run: IngestRun):
    """Every raw line of the day, classified (:func:`sie.ingest.parse.classify`), materialised.

    The landed files are read through :func:`sie.ingest.landing.prepared` (sniffed, checked,
    safe names in a private folder under the warehouse's staging folder, where executors
    can read them); the folder is removed once the lines are materialised.
    """
    from sie.ingest import landing

    prev_known = _previous_day_requests(run) if run.day.accepts_late_arrivals else None
    with landing.prepared(run.files, run.warehouse.staging_dir) as files:
        lines = parse.read_lines(run.spark, files)
        cached: list = []
        records = parse.classify(lines, run.day, prev_known, cached, parse.file_faults(run.spark, files))
        # Materialise the classified lines and cut their lineage: every later plan then starts
        # from this table instead of re-planning the whole parse (plans of several MB otherwise
        # cost seconds of optimiser time per action).
        records = records.localCheckpoint(eager=True)
        for df in cached:  # the checkpoint now holds everything later steps read
            df.unpersist()
    return records


def _previous_day_requests(run: IngestRun):
    """query_ids of the previous day's published queries and impressions (for late interactions), or None."""
    from pyspark.sql import functions as F

    prev = run.ds.shift(-1)
    frames = []
    for table in ("queries", "events"):
        paths = [str(f.path) for f in run.warehouse.data_files(table, {"ds": [prev]})]
        if paths:
            df = run.spark.read.parquet(*paths)
            if table == "events":
                df = df.filter(F.col("action_name") == "impression")
            frames.append(df.select("query_id"))
    if not frames:
        return None
    out = frames[0]
    for f in frames[1:]:
        out = out.unionByName(f)
    return out.filter(F.col("query_id").isNotNull()).distinct()


# ---- the tables of the day ----------------------------------------------------------------


@dataclass
class DayTables:
    """The day's tables as Spark frames; ``all_samples`` includes samples without query text."""

    events: Any
    queries: Any
    quarantine: Any
    samples: Any
    all_samples: Any
    orphans: Any

    def staged(self) -> list[tuple[str, Any, TableSchema]]:
        """(table, frame, schema) in staging order (reconciliation follows them)."""
        return [
            ("events", self.events, EVENTS),
            ("queries", self.queries, QUERIES),
            ("quarantine", self.quarantine, QUARANTINE),
            ("samples", self.samples, SAMPLES),
        ]


def _day_tables(run: IngestRun, records) -> DayTables:
    """Split the classified records into the day's tables and build its samples (``events`` is persisted)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    accepted = F.col("dest") == "accepted"
    events = records.filter(accepted & (F.col("source") == "ubi_events"))
    events = events.withColumn("run_id", F.lit(run.run_id)).persist(StorageLevel.MEMORY_AND_DISK)
    queries = records.filter(accepted & (F.col("source") == "ubi_queries")).select(
        "query_id",
        F.lit(run.run_id).alias("run_id"),
        "application",
        "client_id",
        "session_id",
        "user_id",
        "query_text",
        "query_response_id",
        "hit_ids",
        F.col("event_ts").alias("request_ts"),
        "file",
        "line_no",
    )
    quarantine = records.filter(F.col("dest") == "quarantine").withColumn("run_id", F.lit(run.run_id))
    all_samples, orphans = build_samples(run, events, queries)
    all_samples = all_samples.localCheckpoint(eager=True)  # (as for records) read by four actions
    # A sample needs a query text: impressions of requests without one are left out (counted).
    samples = all_samples.filter(F.col("query_text").isNotNull())
    return DayTables(events, queries, quarantine, samples, all_samples, orphans)


# ---- stage, reconcile, publish ------------------------------------------------------------


class _Laps:
    """Wall-clock seconds per step, for the summary; Spark jobs are described by the step after
    the last lap (the event log then says which step a stage belongs to)."""

    def __init__(self, spark, ds: Ds) -> None:
        self.timings: dict[str, float] = {}
        self._mark = time.time()
        self._spark, self._ds = spark, ds
        self._describe("classify")

    def __call__(self, name: str, following: str = "") -> None:
        now = time.time()
        self.timings[name] = round(now - self._mark, 2)
        self._mark = now
        self._describe(following or "after " + name)

    def _describe(self, step: str) -> None:
        self._spark.sparkContext.setJobDescription(f"sie ingest ds={self._ds}: {step}")


def _ingest(run: IngestRun, records, laps: _Laps) -> dict[str, Any]:
    tally = Tally.of(records)
    laps("parse", "build_samples")
    tables = _day_tables(run, records)
    laps("build_samples", "write_events")
    expected = tally.expected_rows()
    recon_rows = tally.reconciliation_rows(run.run_id, run.files)
    try:
        written, stats = _stage_and_publish(run, tables, expected, recon_rows, laps)
    finally:
        tables.events.unpersist()
    return _summary(run, tally, written, recon_rows, stats, laps.timings)


def _stage_and_publish(
    run: IngestRun, tables: DayTables, expected: dict[str, int], recon_rows: list[dict], laps: _Laps
) -> tuple[dict[str, int], dict[str, int]]:
    """Stage every table, reconcile, then publish all five; returns the rows written and the sample stats.

    Nothing is published unless every table is staged and the reconciliation adds up.
    """
    written: dict[str, int] = {}
    with run.warehouse.staged_day(run.ds, run.run_id) as stage:
        staged = tables.staged()
        for i, (table, df, schema) in enumerate(staged):
            _write(_conform(df, schema), stage[table], table, expected[table], run.ic.rows_per_file)
            written[table] = _parquet_rows(stage[table])  # read back what was actually written
            laps(f"write_{table}", next(iter(f"write_{t}" for t, *_ in staged[i + 1 :]), "stats"))
            faults.point(f"ingest.staged.{table}")
        _reconcile(run.ds, recon_rows, expected, written, stage["quarantine"])
        pq_write_reconciliation(recon_rows, stage["reconciliation"])
        written["reconciliation"] = len(recon_rows)
        faults.point("ingest.staged.reconciliation")
        stats = _stats(tables.all_samples, tables.orphans)
        laps("stats", "commit")
        manifest = _manifest_row(run, written)
        run.warehouse.publish_day(
            run.ds, run.run_id, stage, manifest, on_commit=lambda t: faults.point(f"ingest.committed.{t}")
        )
        laps("commit")
    return written, stats


def _manifest_row(run: IngestRun, written: dict[str, int]):
    """The day manifest row: this run, the settings it ran with, its row counts."""
    import json
    from dataclasses import asdict
    from datetime import datetime

    import pyarrow as pa

    row = {
        "run_id": run.run_id,
        "committed_at": datetime.now(UTC),
        "raw_fingerprint": run.run_id.rsplit("-", 1)[-1],
        "settings": json.dumps(asdict(run.ic), sort_keys=True),
        **{t: written[t] for t in ("events", "queries", "quarantine", "samples")},
    }
    return pa.Table.from_pylist([row], schema=INGEST_DAYS.schema)


def _summary(run: IngestRun, tally: Tally, written, recon_rows, stats, timings) -> dict[str, Any]:
    summary = {
        "ds": str(run.ds),
        "run_id": run.run_id,
        "rows": written,
        "reconciliation": recon_rows,
        "quarantine_reasons": tally.quarantine_reasons(),
        "dedup_dropped": sum(r["dedup_dropped"] for r in recon_rows),
        "empty": sum(r["raw_records"] for r in recon_rows) == 0,
        "accepted_event_actions": tally.accepted_event_actions(),
        "impressions": tally.n("ubi_events", "record", "accepted", action="impression"),
        "late_interactions": tally.late_interactions(),
        "history_days": run.history_days,
        **stats,
        "timings": timings,
        "seconds": round(time.time() - run.started, 2),
    }
    log.info("ingest ds=%s: %s", run.ds, summary)
    return summary


# ---- helpers ------------------------------------------------------------------------------


def _conform(df, schema: TableSchema):
    from pyspark.sql import functions as F

    return df.select([F.col(f.name).cast(_spark_type(f.type)).alias(f.name) for f in schema.schema])


def _write(df, staging: Path, table: str, rows: int, rows_per_file: int) -> None:
    """Write ``df`` as parquet into ``staging``, sorted by the table's keys (reproducible content)."""
    n_files = max(1, math.ceil(rows / max(1, rows_per_file)))
    keys = list(_ORDER[table])
    if n_files == 1:
        df = df.repartition(1).sortWithinPartitions(*keys)
    else:
        df = df.repartitionByRange(n_files, *keys).sortWithinPartitions(*keys)
    df.write.mode("overwrite").option("compression", "zstd").parquet(str(staging))


def _parquet_rows(folder: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in sorted(folder.glob("*.parquet")))


def _reconcile(ds, recon_rows, expected, written, quarantine_dir: Path) -> None:
    """Raise :class:`ReconciliationError` unless every raw record is accounted for exactly once."""
    import pyarrow.parquet as pq

    files = sorted(quarantine_dir.glob("*.parquet"))
    q_by_source: dict[str, int] = {}
    for f in files:
        for s in pq.read_table(f, columns=["source"]).column("source").to_pylist():
            q_by_source[s] = q_by_source.get(s, 0) + 1
    problems = []
    for row in recon_rows:
        s = row["source"]
        if row["raw_records"] != row["accepted"] + row["quarantined"] + row["dedup_dropped"]:
            problems.append(f"{s}: raw_records {row['raw_records']} != accepted + quarantined + dedup_dropped")
        if row["raw_lines"] != row["raw_records"] + row["blank_lines"] + row["bulk_action_lines"]:
            problems.append(f"{s}: raw_lines {row['raw_lines']} != records + blank + bulk action lines")
        if q_by_source.get(s, 0) != row["quarantined"]:
            problems.append(f"{s}: wrote {q_by_source.get(s, 0)} quarantine rows, expected {row['quarantined']}")
    for t in ("events", "queries", "quarantine"):
        if written[t] != expected[t]:
            problems.append(f"{t}: wrote {written[t]} rows, expected {expected[t]}")
    if written["samples"] > expected["samples"]:
        problems.append(f"samples: wrote {written['samples']} rows for {expected['samples']} impressions")
    if problems:
        raise ReconciliationError(f"ds={ds}: reconciliation failed, nothing published: " + "; ".join(problems))


def pq_write_reconciliation(rows: list[dict], staging: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(rows, schema=RECONCILIATION.schema)
    pq.write_table(table, staging / "part-00000.parquet")


def _stats(all_samples, orphans) -> dict[str, int]:
    """Counters for the summary, in one Spark job."""
    from pyspark.sql import functions as F

    a = all_samples.agg(
        F.count("*").alias("n"),
        F.sum(F.col("query_text").isNull().cast("int")).alias("no_text"),
        F.sum(F.when(F.col("query_text").isNotNull(), F.col("suspected_bot"))).alias("bot"),
        F.sum(F.when(F.col("query_text").isNotNull(), F.col("click"))).alias("clicks"),
    ).withColumn("orphans", F.lit(None).cast("bigint"))
    o = orphans.agg(F.count("*").alias("orphans")).select(
        *(F.lit(None).cast("bigint").alias(c) for c in ("n", "no_text", "bot", "clicks")), "orphans"
    )
    rows = a.unionByName(o).collect()
    first = rows[0] if rows[0]["n"] is not None else rows[1]
    second = rows[1] if rows[0]["n"] is not None else rows[0]
    return {
        "impressions_deduplicated": int(first["n"] or 0),
        "samples_without_query_text": int(first["no_text"] or 0),
        "suspected_bot_samples": int(first["bot"] or 0),
        "sample_clicks": int(first["clicks"] or 0),
        "orphan_interactions": int(second["orphans"] or 0),
    }
