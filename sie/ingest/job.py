"""`ingest_day`: raw UBI files of one ds -> events, queries, quarantine, samples, reconciliation.

All five partitions are written to staging first; only when every one is complete and
the reconciliation adds up are they published (each by an atomic rename, see
:meth:`sie.store.Warehouse.staged_partition`). A failure or a kill before that leaves
the previously published partitions untouched; a rerun replaces them with identical
content (deterministic ids, run_id and row order).
"""

from __future__ import annotations

import logging
import math
import time
from contextlib import ExitStack
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sie.config import SieConfig
from sie.ingest import parse
from sie.ingest.samples import build_samples, history_days
from sie.schemas import EVENTS, QUARANTINE, QUERIES, RECONCILIATION, SAMPLES, TableSchema, _spark_type
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


def _counts(df, *cols) -> dict[tuple, int]:
    return {
        tuple(r[c] for c in cols): int(r["n"])
        for r in df.groupBy(*cols).count().withColumnRenamed("count", "n").collect()
    }


def ingest_day(
    cfg: SieConfig,
    ds: str,
    spark=None,
    run_id: str | None = None,
    *,
    _after_staging=None,
) -> dict[str, Any]:
    """Ingest one day of raw UBI logs and publish its partitions; returns a summary.

    Raises FileNotFoundError when the day has not landed (no ``raw/ubi_events/ds=D``
    folder), :class:`ReconciliationError` when the counts do not add up.
    ``_after_staging(table, staging_dir)`` (tests only) is called after each staging write;
    nothing is published before the last one returns.
    """
    from sie.spark import get_spark

    t0 = time.time()
    wh = Warehouse.from_config(cfg)
    wh.recover()
    wh.clean_staging()  # leftovers of killed runs older than a day
    run_id = run_id or f"ingest-{ds}"
    parse.day_window(ds, 0)  # validates the ds format
    events_dir, queries_dir = wh.raw_dir("ubi_events", ds), wh.raw_dir("ubi_queries", ds)
    if not events_dir.is_dir():
        raise FileNotFoundError(f"raw day not landed: no UBI events folder {events_dir} for ds={ds}")
    if not queries_dir.is_dir():
        log.warning("ds=%s: no UBI queries folder %s; requests come from the events only", ds, queries_dir)
    files = {"ubi_queries": parse.list_raw_files(queries_dir), "ubi_events": parse.list_raw_files(events_dir)}

    spark = spark or get_spark(cfg)
    spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    spark.sparkContext.setJobDescription(f"sie ingest ds={ds}")

    # Shuffle partitions scale with the day: a few for a small day (each partition costs task
    # overhead), more for a large one (a partition must fit a task's memory).
    landed = sum(p.stat().st_size for paths in files.values() for p in paths)
    partitions = max(cfg.ingest.shuffle_partitions, math.ceil(landed / max(1, cfg.ingest.landed_bytes_per_partition)))
    previous = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", str(partitions))
    try:
        lines = parse.read_lines(spark, files)
        prev_known = _previous_day_requests(spark, wh, ds) if cfg.ingest.lateness_hours > 0 else None
        cached: list = []
        records = parse.classify(lines, ds, cfg.ingest.lateness_hours, prev_known, cached)
        # Materialise the classified lines and cut their lineage: every later plan then starts
        # from this table instead of re-planning the whole parse (plans of several MB otherwise
        # cost seconds of optimiser time per action).
        records = records.localCheckpoint(eager=True)
        for df in cached:  # the checkpoint now holds everything later steps read
            df.unpersist()
        summary = _ingest(cfg, wh, spark, ds, run_id, files, records, t0, _after_staging)
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", previous)
    summary["shuffle_partitions"] = partitions
    return summary


def _previous_day_requests(spark, wh: Warehouse, ds: str):
    """query_ids of the previous day's published queries and impressions (for late interactions), or None."""
    from pyspark.sql import functions as F

    prev = (datetime.strptime(ds, "%Y-%m-%d") - timedelta(days=1)).strftime("%Y-%m-%d")
    frames = []
    for table in ("queries", "events"):
        path = wh.partition_dir(table, {"ds": prev})
        if any(path.glob("*.parquet")):
            df = spark.read.parquet(str(path))
            if table == "events":
                df = df.filter(F.col("action_name") == "impression")
            frames.append(df.select("query_id"))
    if not frames:
        return None
    out = frames[0]
    for f in frames[1:]:
        out = out.unionByName(f)
    return out.filter(F.col("query_id").isNotNull()).distinct()


def _parquet_rows(folder: Path) -> int:
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in sorted(folder.glob("*.parquet")))


def _ingest(cfg, wh, spark, ds, run_id, files, records, t0, after_staging):
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    timings: dict[str, float] = {}
    mark = time.time()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.time()
        timings[name] = round(now - mark, 2)
        mark = now

    tally = _counts(records, "source", "kind", "dest", "reason", "action_name", "late_interaction")
    lap("parse")

    def n(source=None, kind=None, dest=None, reason=None, action=None) -> int:
        return sum(
            v
            for (s, k, d, r, a, _late), v in tally.items()
            if (source is None or s == source)
            and (kind is None or k == kind)
            and (dest is None or d == dest)
            and (reason is None or r == reason)
            and (action is None or a == action)
        )

    accepted = F.col("dest") == "accepted"
    events = records.filter(accepted & (F.col("source") == "ubi_events"))
    events = events.withColumn("run_id", F.lit(run_id)).persist(StorageLevel.MEMORY_AND_DISK)
    queries = records.filter(accepted & (F.col("source") == "ubi_queries")).select(
        "query_id",
        F.lit(run_id).alias("run_id"),
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
    quarantine = records.filter(F.col("dest") == "quarantine").withColumn("run_id", F.lit(run_id))
    all_samples, orphans = build_samples(spark, cfg, wh, ds, events, queries, run_id)
    all_samples = all_samples.localCheckpoint(eager=True)  # (as for records) read by four actions
    # A sample needs a query text: impressions of requests without one are left out (counted).
    samples = all_samples.filter(F.col("query_text").isNotNull())

    expected = {
        "events": n("ubi_events", "record", "accepted"),
        "queries": n("ubi_queries", "record", "accepted"),
        "quarantine": n(kind="record", dest="quarantine"),
        "samples": n("ubi_events", "record", "accepted", action="impression"),  # an upper bound
    }
    recon_rows = []
    for source in parse.SOURCES:
        recon_rows.append(
            {
                "run_id": run_id,
                "source": source,
                "raw_records": n(source, "record"),
                "accepted": n(source, "record", "accepted"),
                "quarantined": n(source, "record", "quarantine"),
                "dedup_dropped": n(source, "record", "dedup"),
                "files": len(files[source]),
                "raw_lines": n(source),
                "blank_lines": n(source, "blank"),
                "bulk_action_lines": n(source, "bulk_action"),
            }
        )

    written: dict[str, int] = {}
    rpf = cfg.ingest.rows_per_file
    try:
        with ExitStack() as stack:
            stage = {
                t: stack.enter_context(wh.staged_partition(t, {"ds": ds}))
                # entered in reverse: the ExitStack publishes events first and reconciliation
                # (the day's completion marker) last
                for t in ("reconciliation", "samples", "quarantine", "queries", "events")
            }
            for table, df, schema in (
                ("events", events, EVENTS),
                ("queries", queries, QUERIES),
                ("quarantine", quarantine, QUARANTINE),
                ("samples", samples, SAMPLES),
            ):
                _write(_conform(df, schema), stage[table], table, expected[table], rpf)
                written[table] = _parquet_rows(stage[table])  # read back what was actually written
                lap(f"write_{table}")
                if after_staging is not None:
                    after_staging(table, stage[table])
            _reconcile(ds, recon_rows, expected, written, stage["quarantine"])
            pq_write_reconciliation(recon_rows, stage["reconciliation"])
            written["reconciliation"] = len(recon_rows)
            stats = _stats(all_samples, orphans)
            lap("stats")
            if after_staging is not None:
                after_staging("reconciliation", stage["reconciliation"])
    finally:
        events.unpersist()

    reasons: dict[str, dict[str, int]] = {}
    for (s, k, d, r, a, late), v in tally.items():
        if d == "quarantine":
            reasons.setdefault(s, {})[r] = reasons.setdefault(s, {}).get(r, 0) + v
    actions: dict[str, int] = {}
    late_interactions = 0
    for (s, k, d, r, a, late), v in tally.items():
        if d == "accepted" and late:
            late_interactions += v
        if s == "ubi_events" and d == "accepted":
            actions[a] = actions.get(a, 0) + v
    summary = {
        "ds": ds,
        "run_id": run_id,
        "rows": written,
        "reconciliation": recon_rows,
        "quarantine_reasons": {s: dict(sorted(r.items())) for s, r in sorted(reasons.items())},
        "dedup_dropped": sum(r["dedup_dropped"] for r in recon_rows),
        "empty": sum(r["raw_records"] for r in recon_rows) == 0,
        "accepted_event_actions": dict(sorted(actions.items())),
        "impressions": n("ubi_events", "record", "accepted", action="impression"),
        "late_interactions": late_interactions,
        "history_days": history_days(wh, ds, cfg.ingest.stats_window_days),
        **stats,
        "timings": timings,
        "seconds": round(time.time() - t0, 2),
    }
    log.info("ingest ds=%s: %s", ds, summary)
    return summary


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
