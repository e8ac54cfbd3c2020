"""Read a day's raw UBI files and classify every line (Spark).

Each raw line ends as exactly one of: a blank line, an OpenSearch bulk action line
(both not records), or a record whose ``dest`` is ``accepted``, ``quarantine`` (with a
``reason`` from :mod:`sie.ingest.reasons`) or ``dedup`` (an exact duplicate of an
accepted record). The rules are in docs/INGEST.md.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from sie.ingest import reasons as R
from sie.ingest.day import DayWindow

SOURCES = ("ubi_queries", "ubi_events")

# Every document field is read as a STRING: Spark's JSON reader then keeps the raw JSON
# text of numbers and objects, so we type-check ourselves and never lose a record to a
# parser's type coercion.
_DOC_FIELDS = (
    "action_name",
    "query_id",
    "client_id",
    "session_id",
    "user_id",
    "application",
    "timestamp",
    "user_query",
    "message_type",
    "message",
    "event_attributes",
    "query_attributes",
    "query_response_id",
    "query_response_hit_ids",
    "object_id_field",
    "_source",
    "index",
    "create",
    "update",
    "delete",
)
DOC_SCHEMA = ", ".join(f"`{f}` STRING" for f in _DOC_FIELDS) + ", `_corrupt_record` STRING"
EA_SCHEMA = "`object` STRING, `position` STRING, `session_id` STRING, `user_id` STRING, `dwell_time` STRING"
OBJ_SCHEMA = "`object_id` STRING, `object_id_field` STRING, `description` STRING"
POS_SCHEMA = "`ordinal` STRING"
QA_SCHEMA = "`session_id` STRING, `user_id` STRING"
_JSON_OPTS = {"columnNameOfCorruptRecord": "_corrupt_record", "mode": "PERMISSIVE"}

# An ISO-8601 date-time with an explicit zone (Z or +hh[:mm]); naive values are rejected.
_ISO_WITH_ZONE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}.*([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)$"
_EPOCH = r"^-?[0-9]+(\.[0-9]*)?$"
_JSON_SCALAR = r'^(-?[0-9][0-9.eE+-]*|"(.|\n)*"|true|false|null)$'


def list_raw_files(root: Path) -> list[Path]:
    """Data files of one landing folder: every regular, non-hidden file (``.gz`` is decompressed)."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith((".", "_")))


def day_window(ds: str, lateness_hours: float) -> tuple[datetime, datetime]:
    """[start, end) of the event times accepted for ``ds`` (see :class:`sie.ingest.day.DayWindow`)."""
    return DayWindow.of(ds, lateness_hours).bounds


def read_lines(spark, files: dict[str, list[Path]]):
    """DataFrame(source, file, line_no, raw): one row per line of every file (1-based line numbers).

    Lines are read with Spark's line reader (plain files are split across tasks, ``.gz``
    files are one task each). Exact line numbers come from the split a row was read from:
    the row's index within its split plus the line counts of the file's earlier splits.
    All sources are read in one scan; ``source`` is the landing folder
    (``raw/<source>/ds=D/<file>``).
    """
    from pyspark.sql import functions as F

    paths = [str(p) for source in SOURCES for p in files.get(source, [])]
    if not paths:
        return spark.createDataFrame([], "source STRING, file STRING, line_no BIGINT, raw STRING")
    path = F.input_file_name()
    df = spark.read.text(paths).select(
        F.regexp_extract(path, r"/(" + "|".join(SOURCES) + r")/ds=[^/]+/[^/]+$", 1).alias("source"),
        F.element_at(F.split(path, "/"), -1).alias("file"),
        F.input_file_block_start().alias("_block"),
        F.monotonically_increasing_id().alias("_row"),
        F.col("value").alias("raw"),
    )
    # Rows of one split are consecutive in one task, so (row - first row of the split) is the
    # index within the split; earlier splits of the same file contribute their line counts.
    from pyspark.sql import Window

    blocks = df.groupBy("source", "file", "_block").agg(F.min("_row").alias("_first"), F.count("*").alias("_n"))
    before = Window.partitionBy("source", "file").orderBy("_block").rowsBetween(Window.unboundedPreceding, -1)
    blocks = blocks.withColumn("_offset", F.coalesce(F.sum("_n").over(before), F.lit(0)))
    df = df.join(F.broadcast(blocks.drop("_n")), ["source", "file", "_block"])
    line_no = F.col("_row") - F.col("_first") + F.col("_offset") + 1
    return df.select("source", "file", line_no.cast("long").alias("line_no"), "raw")


def _clean(c):
    """NULL for null, empty or blank strings; the trimmed string otherwise."""
    from pyspark.sql import functions as F

    t = F.trim(c)
    return F.when(t != "", t)


class _Rows(NamedTuple):
    """Row predicates the rules share (Spark columns)."""

    is_event: object
    is_query: object
    ranking: object  # an event of a ranking action (impression or an interaction)
    interaction: object  # click / add_to_cart / purchase


def _rows() -> _Rows:
    from pyspark.sql import functions as F

    is_event = F.col("source") == "ubi_events"
    is_query = F.col("source") == "ubi_queries"
    ranking = is_event & F.col("action_name").isin(*R.RANKING_ACTIONS)
    interaction = is_event & F.col("action_name").isin(*R.INTERACTIONS)
    return _Rows(is_event, is_query, ranking, interaction)


def classify(lines, day: DayWindow, prev_known=None, cached: list | None = None):
    """Parse and classify raw lines; returns one row per line with ``kind`` and ``dest``.

    ``day``: the day and its accepted event times. ``prev_known``: DataFrame(query_id) of
    requests published for the previous day; an interaction for one of them is a late
    arrival (accepted, ``late_interaction``), not an ``unknown_query_id``. ``cached``: when
    a list, the parsed lines are persisted and appended to it (the caller unpersists them).

    Columns: source, file, line_no, raw (quarantined records only), kind (blank | bulk_action | record), dest
    (accepted | quarantine | dedup, for records), reason, detail, dedup_key and the parsed
    fields (application, action_name, query_id, client_id, session_id, user_id, item_id,
    ordinal, position, event_ts, dwell_time, query_text, message_type, object_id_field,
    item_description, query_response_id, hit_ids, event_id, late_interaction).
    """
    rows = _rows()
    df = _typed_values(_fields(_nested_documents(_documents(lines))))
    df = _line_rules(df, day, rows)
    if cached is not None:  # the day rules read the parsed lines five times: parse them once
        from pyspark import StorageLevel

        df = df.persist(StorageLevel.MEMORY_AND_DISK)
        cached.append(df)
    cand = _candidates(df)
    app_base = _producer_bases(cand, rows)
    registry = _request_registry(cand, rows, app_base, prev_known)
    return _destination(_day_rules(df, registry, app_base, rows))


# ---- parsing: every line to typed fields --------------------------------------------------

_BASE = ("source", "file", "line_no", "raw")


def _documents(lines):
    """(base, line, kind, parse_reason, d): the trimmed line, its kind and its JSON document ``d``."""
    from pyspark.sql import functions as F

    df = lines.select(*_BASE, F.regexp_replace("raw", r"^\s+|\s+$", "").alias("line"))
    df = df.select(*_BASE, "line", F.from_json("line", DOC_SCHEMA, _JSON_OPTS).alias("p"))
    p = F.col("p")

    is_object_text = F.col("line").startswith("{") & F.col("line").endswith("}")
    # `{"a":1}{"b":2}`: two documents glued together (a missing newline) parse as the first only.
    glued = F.col("line").rlike(r'\}\s*\{\s*"')
    is_object = is_object_text & p["_corrupt_record"].isNull() & ~glued
    is_action = (
        is_object
        & F.coalesce(p["index"], p["create"], p["update"], p["delete"]).isNotNull()
        & p["timestamp"].isNull()
        & p["action_name"].isNull()
        & p["query_id"].isNull()
        & p["_source"].isNull()
    )
    kind = F.when(F.col("line") == "", "blank").when(is_action, "bulk_action").otherwise("record")
    not_object = F.when(
        F.col("line").rlike(_JSON_SCALAR) | F.expr("json_array_length(line)").isNotNull(), R.NOT_AN_OBJECT
    ).otherwise(R.INVALID_JSON)
    # Search-hit exports wrap the document in `_source`.
    doc = F.when(p["_source"].startswith("{"), F.from_json(p["_source"], DOC_SCHEMA, _JSON_OPTS)).otherwise(p)
    return df.select(
        *_BASE,
        "line",
        kind.alias("kind"),
        F.when(~is_object, not_object).alias("parse_reason"),
        doc.alias("d"),
    )


def _nested_documents(df):
    """Adds the nested JSON documents: ``ea`` (event_attributes), ``qa``, ``obj`` and ``pos``."""
    from pyspark.sql import functions as F

    d = F.col("d")
    df = df.select(
        *_BASE,
        "line",
        "kind",
        F.coalesce(F.col("parse_reason"), F.when(d["_corrupt_record"].isNotNull(), F.lit(R.INVALID_JSON))).alias(
            "parse_reason"
        ),
        "d",
        F.from_json(d["event_attributes"], EA_SCHEMA).alias("ea"),
        F.from_json(d["query_attributes"], QA_SCHEMA).alias("qa"),
    )
    ea = F.col("ea")
    return df.select(
        *_BASE,
        "line",
        "kind",
        "parse_reason",
        "d",
        "ea",
        "qa",
        F.from_json(ea["object"], OBJ_SCHEMA).alias("obj"),
        F.from_json(ea["position"], POS_SCHEMA).alias("pos"),
    )


def _fields(df):
    """The document fields, cleaned (still strings where a rule must see the raw value)."""
    from pyspark.sql import functions as F

    d, ea, qa, obj = F.col("d"), F.col("ea"), F.col("qa"), F.col("obj")
    return df.select(
        *_BASE,
        "line",
        "kind",
        "parse_reason",
        _clean(d["application"]).alias("application"),
        F.lower(_clean(d["action_name"])).alias("action_name"),
        _clean(d["query_id"]).alias("query_id"),
        _clean(d["client_id"]).alias("client_id"),
        F.coalesce(_clean(d["session_id"]), _clean(ea["session_id"]), _clean(qa["session_id"])).alias("session_id"),
        F.coalesce(_clean(d["user_id"]), _clean(ea["user_id"]), _clean(qa["user_id"])).alias("user_id"),
        _clean(obj["object_id"]).alias("item_id"),
        F.coalesce(_clean(obj["object_id_field"]), _clean(d["object_id_field"])).alias("object_id_field"),
        _clean(obj["description"]).alias("item_description"),
        _clean(F.col("pos")["ordinal"]).alias("ordinal_raw"),
        _clean(ea["dwell_time"]).try_cast("double").alias("dwell_time"),
        _clean(d["timestamp"]).alias("ts_raw"),
        _clean(d["user_query"]).alias("query_text"),
        _clean(d["message_type"]).alias("message_type"),
        _clean(d["query_response_id"]).alias("query_response_id"),
        F.from_json(d["query_response_hit_ids"], "array<string>").alias("hit_ids"),
    )


def _typed_values(df):
    """Adds ``event_ts`` (epoch ms or zoned ISO-8601), ``ordinal``, ``dedup_key`` and ``is_object``."""
    from pyspark.sql import functions as F

    ts_raw = F.col("ts_raw")
    ms = ts_raw.try_cast("double")
    ts_num = F.when(ts_raw.rlike(_EPOCH) & (ms >= 0) & (ms < 1e14), F.timestamp_millis(F.floor(ms).cast("bigint")))
    ts_iso = F.when(ts_raw.rlike(_ISO_WITH_ZONE), ts_raw.try_cast("timestamp"))
    ordinal_d = F.col("ordinal_raw").try_cast("double")
    ordinal_ok = ordinal_d.isNotNull() & (ordinal_d >= 0) & (ordinal_d < 1e6) & (ordinal_d == F.floor(ordinal_d))
    return df.withColumns(
        {
            "event_ts": F.coalesce(ts_num, ts_iso),
            "ordinal": F.when(ordinal_ok, ordinal_d.cast("int")),
            "dedup_key": F.sha2(F.col("line"), 256),
            "is_object": F.col("parse_reason").isNull(),
        }
    )


# ---- line rules: those that look at one line only -----------------------------------------


def _line_reason(day: DayWindow, rows: _Rows):
    """The first line rule a record breaks (docs/INGEST.md order), or NULL."""
    from pyspark.sql import functions as F

    is_event, is_query, ranking = rows.is_event, rows.is_query, rows.ranking
    in_window = (F.col("event_ts") >= F.lit(day.start)) & (F.col("event_ts") < F.lit(day.end))
    return (
        F.when(~F.col("is_object"), F.col("parse_reason"))
        .when(F.col("ts_raw").isNull(), R.MISSING_TIMESTAMP)
        .when(is_event & F.col("action_name").isNull(), R.MISSING_ACTION_NAME)
        .when((ranking | is_query) & F.col("query_id").isNull(), R.MISSING_QUERY_ID)
        .when(is_query & F.col("query_text").isNull(), R.MISSING_USER_QUERY)
        .when(ranking & F.col("client_id").isNull(), R.MISSING_CLIENT_ID)
        .when(ranking & F.col("item_id").isNull(), R.MISSING_OBJECT_ID)
        .when(ranking & F.col("ordinal_raw").isNull(), R.MISSING_POSITION)
        .when(F.col("event_ts").isNull(), R.BAD_TIMESTAMP)
        .when(ranking & F.col("ordinal").isNull(), R.BAD_POSITION)
        .when(~in_window, R.OUT_OF_WINDOW)
    )


def _line_detail(day: DayWindow):
    """The offending value of a line rule's ``reason``."""
    from pyspark.sql import functions as F

    return (
        F.when(F.col("reason") == R.BAD_TIMESTAMP, F.concat(F.lit("timestamp="), F.col("ts_raw")))
        .when(F.col("reason") == R.BAD_POSITION, F.concat(F.lit("ordinal="), F.col("ordinal_raw")))
        .when(
            F.col("reason") == R.OUT_OF_WINDOW,
            F.concat(F.date_format("event_ts", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"), F.lit(f" not in {day.describe()}")),
        )
    )


def _line_rules(df, day: DayWindow, rows: _Rows):
    """Adds ``reason``/``detail`` of the line rules and ``dup_rank`` (exact duplicates); drops ``line``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    df = df.withColumn("reason", F.when(F.col("kind") == "record", _line_reason(day, rows)))
    # Exact duplicates (logging retries): identical document lines; the first (file, line) is kept.
    valid = (F.col("kind") == "record") & F.col("reason").isNull()
    dup_rank = F.row_number().over(Window.partitionBy("source", "dedup_key").orderBy("file", "line_no"))
    df = df.withColumns({"detail": _line_detail(day), "dup_rank": F.when(valid, dup_rank)})
    return df.drop("line")  # parsed and hashed; `raw` stays for the quarantine


# ---- day rules: those that need the whole day (computed on the distinct valid records) -----


def _candidates(df):
    """The distinct valid records: what the day rules are computed on."""
    from pyspark.sql import functions as F

    return df.filter(F.col("dup_rank") == 1)


def _impressions(cand, rows: _Rows):
    from pyspark.sql import functions as F

    return cand.filter(rows.is_event & (F.col("action_name") == "impression"))


def _producer_bases(cand, rows: _Rows):
    """(_app, _zero_based): a producer (application) logs 0-based ordinals when most (> half)
    of its requests have an impression at ordinal 0; its ordinals are shifted by one."""
    from pyspark.sql import functions as F

    return (
        cand.filter(rows.is_event & (F.col("action_name") == "impression") & F.col("ordinal").isNotNull())
        .groupBy("application", "query_id")
        .agg(F.min("ordinal").alias("_min"))
        .groupBy(F.col("application").alias("_app"))
        .agg((F.avg((F.col("_min") == 0).cast("double")) > 0.5).alias("_zero_based"))
    )


def _with_base(frame, app_base):
    """Adds ``_zero_based`` (the producer's ordinal base) to ``frame``."""
    from pyspark.sql import functions as F

    return frame.join(F.broadcast(app_base), F.col("application").eqNullSafe(F.col("_app")), "left").drop("_app")


def _position():
    """The 1-based position of an ordinal (needs ``_zero_based``)."""
    from pyspark.sql import functions as F

    return F.col("ordinal") - F.when(F.col("_zero_based"), 0).otherwise(1) + 1


def _hit_lists(cand, rows: _Rows, app_base):
    """(query_id, _hits) per query_id with a query document, and (query_id, _imp_items, _covered).

    Several response documents of one request (same text and client) are fine. The longest
    hit list logged for the query_id (``_hits``) bounds its positions when that list explains
    the request: it holds every item impressed for the query_id at a position within the list
    (real producers also log re-runs and later pages whose lists do not match what was
    shown). Impressions beyond the list are what the bound judges, so they do not count.
    """
    from pyspark.sql import functions as F

    position = _position()
    q_hits = (
        cand.filter(rows.is_query)
        .groupBy("query_id")
        .agg(F.max(F.size(F.coalesce("hit_ids", F.array().cast("array<string>")))).alias("_hits"))
    )
    hit_items = (
        cand.filter(rows.is_query & (F.size("hit_ids") > 0))
        .select("query_id", F.explode("hit_ids").alias("item_id"))
        .distinct()
        .withColumn("_in_hits", F.lit(1))
    )
    imp_q = (
        _with_base(_impressions(cand, rows), app_base)
        .join(q_hits, "query_id", "inner")
        .filter((position >= 1) & (position <= F.col("_hits")))
        .select("query_id", "item_id")
        .distinct()
        .join(hit_items, ["query_id", "item_id"], "left")
        .groupBy("query_id")
        .agg(F.count("*").alias("_imp_items"), F.count("_in_hits").alias("_covered"))
    )
    return q_hits, imp_q


def _request_registry(cand, rows: _Rows, app_base, prev_known):
    """Every request known for the day, by query_id: its first query document (``_q_text``,
    ``_q_client``), hit list coverage, ``_known`` (a query document or an impression today)
    and ``_prev`` (published for the previous day)."""
    from pyspark.sql import functions as F

    first_doc = F.struct("event_ts", "file", "line_no")
    q_first = (
        cand.filter(rows.is_query)
        .groupBy("query_id")
        .agg(
            F.min_by(F.col("query_text"), first_doc).alias("_q_text"),
            F.min_by(F.col("client_id"), first_doc).alias("_q_client"),
        )
    )
    q_hits, imp_q = _hit_lists(cand, rows, app_base)
    impressed = _impressions(cand, rows).select("query_id").distinct()
    registry = (
        q_first.join(q_hits, "query_id", "left")
        .join(imp_q, "query_id", "left")
        .join(impressed, "query_id", "full_outer")  # a request is known by its query document or an impression
        .withColumn("_known", F.lit(True))
    )
    if prev_known is not None:
        return registry.join(prev_known.withColumn("_prev", F.lit(True)), "query_id", "full_outer")
    return registry.withColumn("_prev", F.lit(None).cast("boolean"))


def _hit_bound():
    """The hit list length bounding a request's positions; 0 = no bound (the list does not
    explain the request: no in-range impression, or one of them not in the list)."""
    from pyspark.sql import functions as F

    explained = F.coalesce((F.col("_imp_items") > 0) & (F.col("_covered") == F.col("_imp_items")), F.lit(False))
    return F.when(explained, F.coalesce(F.col("_hits"), F.lit(0))).otherwise(0)


def _day_reason(rows: _Rows):
    """The first day rule a distinct valid record breaks, or NULL."""
    from pyspark.sql import functions as F

    position, hits = _position(), _hit_bound()
    same_request = F.col("query_text").eqNullSafe(F.col("_q_text")) & F.col("client_id").eqNullSafe(F.col("_q_client"))
    return (
        F.when(rows.is_query & ~same_request, R.DUPLICATE_QUERY_ID)
        .when(rows.ranking & (position < 1), R.BAD_POSITION)
        .when(rows.ranking & (hits > 0) & (position > hits), R.BAD_POSITION)
        .when(rows.interaction & F.col("_known").isNull() & F.col("_prev").isNull(), R.UNKNOWN_QUERY_ID)
    )


def _day_detail():
    """The evidence of a day rule's reason ``_r2``."""
    from pyspark.sql import functions as F

    first_seen = F.to_json(F.struct(F.col("_q_text").alias("user_query"), F.col("_q_client").alias("client_id")))
    return (
        F.when(
            F.col("_r2") == R.DUPLICATE_QUERY_ID,
            F.concat(F.lit("query_id="), F.col("query_id"), F.lit(" first seen as "), first_seen),
        )
        .when(
            F.col("_r2") == R.BAD_POSITION,
            F.concat(
                F.lit("ordinal="),
                F.col("ordinal_raw"),
                F.lit(" ("),
                F.when(F.col("_zero_based"), "0-based").otherwise("1-based"),
                F.lit(" producer, "),
                _hit_bound().cast("string"),
                F.lit(" hits)"),
            ),
        )
        .when(F.col("_r2") == R.UNKNOWN_QUERY_ID, F.concat(F.lit("query_id="), F.col("query_id")))
    )


def _day_rules(df, registry, app_base, rows: _Rows):
    """Applies the day rules to the distinct valid records; adds position, late_interaction, event_id."""
    from pyspark.sql import functions as F

    df = _with_base(df.join(registry, "query_id", "left"), app_base)
    position = _position()
    df = df.withColumns(
        {
            "_r2": F.when(F.col("dup_rank").isNotNull(), _day_reason(rows)),
            "position": F.when(position >= 1, position.cast("int")),
            "late_interaction": rows.interaction & F.col("_known").isNull() & F.col("_prev").isNotNull(),
            "event_id": F.substring(F.col("dedup_key"), 1, 16),
        }
    )
    return df.withColumns(
        {
            "detail": F.when(F.col("_r2").isNotNull(), _day_detail()).otherwise(F.col("detail")),
            "reason": F.coalesce(F.col("reason"), F.col("_r2")),
        }
    )


def _destination(df):
    """Adds ``dest``; keeps the verbatim line for quarantined records only; drops working columns."""
    from pyspark.sql import functions as F

    dest = (
        F.when(F.col("kind") != "record", F.lit(None).cast("string"))
        .when(F.col("reason").isNotNull(), "quarantine")
        .when(F.col("dup_rank") > 1, "dedup")
        .otherwise("accepted")
    )
    # the verbatim line is kept for quarantined records only (the others are parsed into columns)
    df = df.withColumn("dest", dest).withColumn("raw", F.when(F.col("dest") == "quarantine", F.col("raw")))
    return df.drop(
        "is_object",
        "parse_reason",
        "dup_rank",
        "_r2",
        "_q_text",
        "_q_client",
        "_hits",
        "_imp_items",
        "_covered",
        "_known",
        "_prev",
        "_zero_based",
    )
