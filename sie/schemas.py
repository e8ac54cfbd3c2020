"""Single source of truth for every table's columns, types and partitioning.

Spark jobs, pandas/arrow writers, Great Expectations suites and the DuckDB views all
derive their column lists from here. Change a column here, nowhere else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class TableSchema:
    name: str
    schema: pa.Schema  # data columns (without partition columns)
    partition_by: tuple[str, ...]
    description: str
    comments: dict[str, str] = field(default_factory=dict)  # column → what it means (emitted in sql/ddl.sql)

    @property
    def columns(self) -> list[str]:
        return self.schema.names

    def spark_ddl(self) -> str:
        """DDL string for ``spark.createDataFrame(..., schema=ddl)`` / ``.schema(ddl)``."""
        return ", ".join(f"`{f.name}` {_spark_type(f.type)}" for f in self.schema)

    def empty(self) -> pa.Table:
        return self.schema.empty_table()


def _spark_type(t: pa.DataType) -> str:
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "STRING"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "BINARY"
    if pa.types.is_int8(t):
        return "TINYINT"
    if pa.types.is_int16(t):
        return "SMALLINT"
    if pa.types.is_int32(t):
        return "INT"
    if pa.types.is_int64(t):
        return "BIGINT"
    if pa.types.is_float32(t):
        return "FLOAT"
    if pa.types.is_float64(t):
        return "DOUBLE"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_timestamp(t):
        return "TIMESTAMP"
    if pa.types.is_list(t):
        return f"ARRAY<{_spark_type(t.value_type)}>"
    raise TypeError(f"no Spark type for {t}")


# Dense numeric features the ranker reads from `samples`, in order.
DENSE_FEATURES: tuple[str, ...] = (
    "item_prior_ctr",  # item CTR over the trailing stats window (smoothed), before ds
    "item_log_impressions",  # log1p(item impressions over the trailing window)
    "query_log_freq",  # log1p(requests of this query text over the trailing window)
    "session_query_index",  # 0-based index of this request within its session
)

LABEL_GRADES = {"impression": 0, "click": 1, "add_to_cart": 2, "purchase": 3}

EVENTS = TableSchema(
    "events",
    pa.schema(
        [
            ("event_id", pa.string()),  # sha256 of the raw document line, first 16 hex (exact duplicates share it)
            ("run_id", pa.string()),
            ("application", pa.string()),
            ("action_name", pa.string()),
            ("query_id", pa.string()),
            ("client_id", pa.string()),
            ("session_id", pa.string()),  # as logged by the producer (top level or event_attributes)
            ("user_id", pa.string()),
            ("item_id", pa.string()),  # event_attributes.object.object_id
            ("position", pa.int32()),  # 1-based (0-based producers are shifted, docs/INGEST.md)
            ("event_ts", TS),
            ("dwell_time", pa.float64()),
            ("query_text", pa.string()),  # user_query when the event carries it
            ("message_type", pa.string()),
            ("object_id_field", pa.string()),
            ("file", pa.string()),  # lineage: the raw file and 1-based line number
            ("line_no", pa.int64()),
        ]
    ),
    ("ds",),
    "a clean UBI event (impression, click, add_to_cart, purchase, ...)",
)

QUERIES = TableSchema(
    "queries",
    pa.schema(
        [
            ("query_id", pa.string()),
            ("run_id", pa.string()),
            ("application", pa.string()),
            ("client_id", pa.string()),
            ("session_id", pa.string()),
            ("user_id", pa.string()),
            ("query_text", pa.string()),  # user_query
            ("query_response_id", pa.string()),
            ("hit_ids", pa.list_(pa.string())),  # query_response_hit_ids, ranked
            ("request_ts", TS),
            ("file", pa.string()),
            ("line_no", pa.int64()),
        ]
    ),
    ("ds",),
    "a clean UBI query request (one per query_id)",
)

QUARANTINE = TableSchema(
    "quarantine",
    pa.schema(
        [
            ("run_id", pa.string()),
            ("source", pa.string()),  # ubi_queries | ubi_events
            ("file", pa.string()),
            ("line_no", pa.int64()),
            ("reason", pa.string()),  # a code from sie.ingest.reasons.REASONS
            ("detail", pa.string()),  # human-readable specifics (the bad value, the window, ...)
            ("raw", pa.string()),  # the raw line as valid UTF-8 text (invalid bytes shown as U+FFFD)
            ("raw_bytes", pa.binary()),  # the raw line's exact bytes, without its \n or \r\n ending
        ]
    ),
    ("ds",),
    "a rejected raw record (or the unreadable part of a file) with the reason and the raw line",
    {
        "line_no": "1-based (for truncated_file: the line where the unreadable rest starts, null for unreadable_file)",
        "raw": "the line as valid UTF-8 text for display: invalid byte sequences become U+FFFD",
        "raw_bytes": "the line exactly as landed, without its line ending (LF or CRLF)",
    },
)

SAMPLES = TableSchema(
    "samples",
    pa.schema(
        [
            ("sample_id", pa.string()),
            ("run_id", pa.string()),
            ("query_id", pa.string()),
            ("client_id", pa.string()),
            ("session_id", pa.string()),
            ("request_ts", TS),
            ("query_text", pa.string()),
            ("item_id", pa.string()),
            ("item_title", pa.string()),
            ("position", pa.int32()),
            ("click", pa.int32()),
            ("add_to_cart", pa.int32()),
            ("purchase", pa.int32()),
            ("label", pa.int32()),  # graded: 0 none, 1 click, 2 add_to_cart, 3 purchase
            ("dwell_time", pa.float64()),
        ]
        + [(name, pa.float64()) for name in DENSE_FEATURES]
        + [
            ("application", pa.string()),
            ("query_tokens", pa.list_(pa.string())),  # lower-cased [a-z0-9]+ tokens (sie.model.features.tokenize)
            ("item_tokens", pa.list_(pa.string())),
            ("suspected_bot", pa.int32()),  # 1 when the client matches the bot rule (docs/INGEST.md)
        ]
    ),
    ("ds",),
    "one impression of an item in a query response, with labels and features",
)

IMPORTANCE_SCORES = TableSchema(
    "importance_scores",
    pa.schema(
        [
            ("sample_id", pa.string()),
            ("sample_ds", pa.string()),  # the samples partition the sample lives in
            ("run_id", pa.string()),
            ("model_version", pa.string()),  # the checkpoint the scores were computed against
            ("score", pa.float64()),  # higher = more valuable to keep
            ("model_id", pa.string()),  # the ranker architecture (train.model): mlp, minilm_cross
        ]
    ),
    ("ds", "method"),
    "a sample's score from one method for one model version (ds = the training window's last day)",
)

BENCHMARK_RESULTS = TableSchema(
    "benchmark_results",
    pa.schema(
        [
            ("dataset", pa.string()),
            ("ds", pa.string()),
            ("method", pa.string()),
            ("keep_ratio", pa.float64()),
            ("seed", pa.int32()),
            ("metric", pa.string()),
            ("subset", pa.string()),
            ("at", pa.float64()),
            ("value", pa.float64()),
            ("n_train", pa.int64()),
            ("train_seconds", pa.float64()),
            ("score_seconds", pa.float64()),
            ("created_at", TS),
            ("model_id", pa.string()),
            ("score_model_id", pa.string()),
        ]
    ),
    ("run_id",),
    "one (dataset, method, keep_ratio, seed, metric, subset, at) value, with costs",
    {
        "metric": "a plain name, its structure is in subset and at (docs/BENCHMARKS.md)",
        "subset": "what the metric is restricted to: a noise type (bot) or a setting (train.epochs), null = all",
        "at": "a curve coordinate: the FPR of noise_roc_tpr, the quantile of score_pct_quantile, null = scalar",
        "model_id": "the ranker trained (and retrained on the selection) to measure the row: mlp, minilm_cross",
        "score_model_id": "the ranker whose importance scores chose the data (a proxy when not model_id), null = none",
    },
)

RECONCILIATION = TableSchema(
    "reconciliation",
    pa.schema(
        [
            ("run_id", pa.string()),
            ("source", pa.string()),
            ("raw_records", pa.int64()),  # non-blank lines that are not bulk action lines
            ("accepted", pa.int64()),
            ("quarantined", pa.int64()),
            ("dedup_dropped", pa.int64()),
            ("files", pa.int64()),  # landed files = files_read + files_truncated + files_unreadable
            ("files_read", pa.int64()),  # read to their end
            ("files_truncated", pa.int64()),  # read up to a damaged compressed stream (a truncated_file row)
            ("files_unreadable", pa.int64()),  # not read at all (an unreadable_file row)
            ("raw_lines", pa.int64()),  # all lines = raw_records + blank_lines + bulk_action_lines
            ("blank_lines", pa.int64()),
            ("bulk_action_lines", pa.int64()),
        ]
    ),
    ("ds",),
    "per ds and source: raw = accepted + quarantined + dedup_dropped",
    {
        "source": "lines count under the source they are routed to (a bulk action line's _index), files under their folder",
        "raw_lines": "a file-level quarantine row (truncated_file, unreadable_file) counts as one line and one record",
    },
)

SCORE_DRIFT = TableSchema(
    "score_drift",
    pa.schema(
        [
            ("run_id", pa.string()),
            ("previous_ds", pa.string()),  # the previous model's ds (the latest earlier one), null if none
            ("n_samples", pa.int64()),  # samples scored by this model
            ("n_common", pa.int64()),  # samples scored by both models (their windows overlap)
            ("spearman", pa.float64()),  # rank correlation of the two models' scores on the common samples
            ("top_decile_overlap", pa.float64()),  # share of this model's top 10% also in the previous top 10%
            ("mean_score", pa.float64()),
            ("previous_mean_score", pa.float64()),
            ("created_at", TS),
        ]
    ),
    ("ds", "method"),
    "per model (ds) and method: how the scores moved since the previous model (written by sie_score_drift)",
)

INGEST_DAYS = TableSchema(
    "ingest_days",
    pa.schema(
        [
            ("run_id", pa.string()),  # the ingest whose rows of the five day tables are the day's (one per ds)
            ("committed_at", TS),
            ("raw_fingerprint", pa.string()),  # sha256 of the landed files' names and bytes
            ("settings", pa.string()),  # JSON of the ingest settings the day was ingested with
            ("events", pa.int64()),
            ("queries", pa.int64()),
            ("quarantine", pa.int64()),
            ("samples", pa.int64()),
        ]
    ),
    ("ds",),
    "per ds: the day manifest. A day's five ingest tables are visible only for the run_id named here,"
    " committed after all five, so a day is visible whole or not at all",
)

# The tables one ingest writes for a day; readers see only the rows of the run in ingest_days.
DAY_TABLES = ("events", "queries", "quarantine", "samples", "reconciliation")

TABLES: dict[str, TableSchema] = {
    t.name: t
    for t in (
        EVENTS,
        QUERIES,
        QUARANTINE,
        SAMPLES,
        IMPORTANCE_SCORES,
        BENCHMARK_RESULTS,
        RECONCILIATION,
        SCORE_DRIFT,
        INGEST_DAYS,
    )
}


def sample_id(query_id: str, item_id: str) -> str:
    """Stable sample id; Spark computes the same as substring(sha2(concat_ws('|', q, i), 256), 1, 16)."""
    return hashlib.sha256(f"{query_id}|{item_id}".encode()).hexdigest()[:16]


def sample_id_spark(query_col, item_col):
    """The Spark Column expression equal to :func:`sample_id`."""
    from pyspark.sql import functions as F

    return F.substring(F.sha2(F.concat_ws("|", query_col, item_col), 256), 1, 16)
