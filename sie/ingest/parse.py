"""Read a day's raw UBI files and classify every line (Spark).

Each raw line ends as exactly one of: a blank line, an OpenSearch bulk action line
(both not records), or a record whose ``dest`` is ``accepted``, ``quarantine`` (with a
``reason`` from :mod:`sie.ingest.reasons`) or ``dedup`` (an exact duplicate of an
accepted record). A file-level fault (a truncated stream, an unreadable file) is one
more quarantined record standing for what could not be read. The rules are in
docs/INGEST.md.

Lines are kept as bytes (``raw_bytes``) from the read to the quarantine: Spark's line
reader keeps a line's bytes as they are (its strings are unchecked UTF-8), so invalid
UTF-8, NUL bytes and a byte order mark survive exactly, and only the quarantine's display
column ``raw`` is made valid UTF-8. Documents are parsed once into a VARIANT
(``try_parse_json``): it rejects duplicate keys and keeps each value's JSON type, so the
rules can insist that ids are strings and numbers are numbers, without a Python UDF.
"""

from __future__ import annotations

from datetime import datetime
from functools import reduce
from typing import NamedTuple

from sie.ingest import reasons as R
from sie.ingest.day import DayWindow
from sie.ingest.landing import ROUTE_CODES, LandedFile, list_raw_files

__all__ = ["SOURCES", "classify", "day_window", "file_faults", "list_raw_files", "read_lines"]

SOURCES = ("ubi_queries", "ubi_events")


# The text fields of a document: column -> JSON paths (the first present one wins). Every
# value found at one of these paths must be a JSON string (or null): an object, array,
# number or boolean there is `bad_field_type`, not a string holding its JSON text.
_STRING_FIELDS = {
    "application": ("$.application",),
    "action_name": ("$.action_name",),
    "query_id": ("$.query_id",),
    "client_id": ("$.client_id",),
    "session_id": ("$.session_id", "$.event_attributes.session_id", "$.query_attributes.session_id"),
    "user_id": ("$.user_id", "$.event_attributes.user_id", "$.query_attributes.user_id"),
    "item_id": ("$.event_attributes.object.object_id",),
    "object_id_field": ("$.event_attributes.object.object_id_field", "$.object_id_field"),
    "item_description": ("$.event_attributes.object.description",),
    "query_text": ("$.user_query",),
    "message_type": ("$.message_type",),
    "query_response_id": ("$.query_response_id",),
}
_HIT_IDS = "$.query_response_hit_ids"
_ORDINAL = "$.event_attributes.position.ordinal"
_DWELL = "$.event_attributes.dwell_time"
_BULK_ACTIONS = ("index", "create", "update", "delete")
_NUMBER_TYPES = r"^(TINYINT|SMALLINT|INT|BIGINT|FLOAT|DOUBLE|DECIMAL\(.*)$"

# An RFC 3339 / ISO-8601 date-time with an explicit zone (Z or +hh[:mm], any case); naive values are rejected.
_ISO_WITH_ZONE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}.*([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)$"
_EPOCH = r"^-?[0-9]+(\.[0-9]*)?$"
_SPACE = " \t\n\x0b\x0c\r"  # what Java's \s matches
_JSON_SCALAR = r'^(-?[0-9][0-9.eE+-]*|"(.|\n)*"|true|false|null)$'
# JSON that a strict parser accepts but a VARIANT cannot hold, other than a repeated key: an
# unpaired UTF-16 surrogate escape (it has no UTF-8 form) and a document over 16 MiB.
_LONE_SURROGATE = (
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)
_VARIANT_MAX_BYTES = 16 * 1024 * 1024
_STRICT_JSON = {
    "columnNameOfCorruptRecord": "_corrupt_record",
    "mode": "PERMISSIVE",
    "allowSingleQuotes": "false",
    "allowNonNumericNumbers": "false",
}


def day_window(ds: str, lateness_hours: float) -> tuple[datetime, datetime]:
    """[start, end) of the event times accepted for ``ds`` (see :class:`sie.ingest.day.DayWindow`)."""
    return DayWindow.of(ds, lateness_hours).bounds


# ---- reading: every line of every prepared file, as bytes ---------------------------------


def read_lines(spark, files: list[LandedFile]):
    """DataFrame(source, file, line_no, raw_bytes, route): one row per line of the readable files.

    ``files``: the day's files prepared by :func:`sie.ingest.landing.prepared`. Lines end at
    ``\\n`` only (a stray ``\\r`` inside a line does not split it; one ``\\r`` before the
    ``\\n`` is the CRLF ending and is dropped), so line numbers are true; ``raw_bytes`` is the
    line without its ending, byte for byte. ``source`` is the landing folder; ``route`` is the
    source named by the ``_index`` of the bulk action line just before the line (found by the
    landing pass, for files holding ``"_index"`` only), else NULL. All files are read in one
    scan: a single plan (a union would copy the whole parse into each branch).

    Plain files are split across tasks, ``.gz`` files are one task each. Exact line numbers
    come from the split a row was read from: the row's index within its split plus the line
    counts of the file's earlier splits. When a day landed as a few ``.gz`` files (fewer than
    4 per core), the numbered lines are spread over the cores, so that the parse, the ingest's
    costliest work, does not run on one core for the biggest file.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    paths = [str(f.read_as) for f in files if f.read_as is not None]
    if not paths:
        return spark.createDataFrame([], "source STRING, file STRING, line_no BIGINT, raw_bytes BINARY, route STRING")
    df = (
        spark.read.option("lineSep", "\n")
        .text(paths)
        .select(
            F.regexp_extract(F.input_file_name(), r"/([0-9]+)\.(gz|txt)$", 1).cast("int").alias("_i"),
            F.input_file_block_start().alias("_block"),
            F.monotonically_increasing_id().alias("_row"),
            F.col("value").cast("binary").alias("_b"),  # the line's bytes as read (no decoding)
        )
    )
    # Rows of one split are consecutive in one task, so (row - first row of the split) is the
    # index within the split; earlier splits of the same file contribute their line counts.
    blocks = df.groupBy("_i", "_block").agg(F.min("_row").alias("_first"), F.count("*").alias("_n"))
    before = Window.partitionBy("_i").orderBy("_block").rowsBetween(Window.unboundedPreceding, -1)
    blocks = blocks.withColumn("_offset", F.coalesce(F.sum("_n").over(before), F.lit(0)))
    df = df.join(F.broadcast(blocks.drop("_n")), ["_i", "_block"])
    line_no = (F.col("_row") - F.col("_first") + F.col("_offset") + 1).cast("long")
    without_cr = F.expr(
        "CASE WHEN substring(_b, -1, 1) = X'0D' THEN substring(_b, 1, octet_length(_b) - 1) ELSE _b END"
    )
    df = df.select("_i", line_no.alias("line_no"), without_cr.alias("raw_bytes"))
    # the landing pass's route codes: one byte per line of a bulk file (see landing.ROUTE_CODES)
    names = spark.createDataFrame(
        [(f.index, f.source, f.name, f.routes) for f in files if f.read_as is not None],
        "_i INT, source STRING, file STRING, _routes BINARY",
    )
    code = F.expr("substring(_routes, line_no, 1)")
    route = F.when(code == F.lit(bytearray([ROUTE_CODES["ubi_queries"]])), "ubi_queries").when(
        code == F.lit(bytearray([ROUTE_CODES["ubi_events"]])), "ubi_events"
    )
    out = df.join(F.broadcast(names), "_i").select("source", "file", "line_no", "raw_bytes", route.alias("route"))
    cores = spark.sparkContext.defaultParallelism
    if all(p.endswith(".gz") for p in paths) and len(paths) < 4 * cores:  # one task per .gz file,
        out = out.repartition(2 * cores)  # and a day's files are rarely of one size
    return out


def file_faults(spark, files: list[LandedFile]):
    """The file-level quarantine rows (``truncated_file``, ``unreadable_file``), as classified records.

    They are added after the line rules (:func:`classify` ``faults``): no line or day rule
    applies to them, and a union before the parse would copy the whole parse plan.
    """
    from pyspark.sql import functions as F

    rows = [(f.source, f.name, f.tail_line, f.tail, f.fault, f.detail) for f in files if f.fault is not None]
    df = spark.createDataFrame(
        rows, "source STRING, file STRING, line_no BIGINT, raw_bytes BINARY, reason STRING, detail STRING"
    )
    return df.select(
        "source",
        "file",
        "line_no",
        F.lit("record").alias("kind"),
        F.lit("quarantine").alias("dest"),
        "reason",
        "detail",
        F.make_valid_utf8(F.col("raw_bytes").cast("string")).alias("raw"),
        "raw_bytes",
    )


def _parse_text():
    """The line as text to parse: trimmed, without a UTF-8 byte order mark opening the file."""
    from pyspark.sql import functions as F

    b = F.col("raw_bytes")
    bom = (F.col("line_no") == 1) & F.expr("substring(raw_bytes, 1, 3) = X'EFBBBF'")
    text = F.when(bom, F.expr("substring(raw_bytes, 4)")).otherwise(b).cast("string")
    return F.trim(text, F.lit(_SPACE))  # as the regex ^\s+|\s+$, at a fraction of its cost


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


def classify(lines, day: DayWindow, prev_known=None, cached: list | None = None, faults=None):
    """Parse and classify raw lines; returns one row per line with ``kind`` and ``dest``.

    ``lines``: :func:`read_lines`. ``day``: the day and its accepted event times.
    ``prev_known``: DataFrame(query_id) of requests published for the previous day; an
    interaction for one of them is a late arrival (accepted, ``late_interaction``), not an
    ``unknown_query_id``. ``cached``: when a list, the parsed lines are persisted and
    appended to it (the caller unpersists them). ``faults``: :func:`file_faults`, added as
    they are.

    Columns: source (the routed source), file, line_no, raw and raw_bytes (quarantined
    records only), kind (blank | bulk_action | record), dest (accepted | quarantine | dedup,
    for records), reason, detail, dedup_key and the parsed fields (application, action_name,
    query_id, client_id, session_id, user_id, item_id, ordinal, position, event_ts,
    dwell_time, query_text, message_type, object_id_field, item_description,
    query_response_id, hit_ids, event_id, late_interaction).
    """
    rows = _rows()
    df = _typed_values(_fields(_documents(lines)))
    df = _line_rules(df, day, rows)
    if cached is not None:  # the day rules read the parsed lines five times: parse them once
        from pyspark import StorageLevel

        df = df.persist(StorageLevel.MEMORY_AND_DISK)
        cached.append(df)
    cand = _candidates(df)
    app_base = _producer_bases(cand, rows)
    registry = _request_registry(cand, rows, app_base, prev_known)
    out = _destination(_day_rules(df, registry, app_base, rows))
    return out if faults is None else out.unionByName(faults, allowMissingColumns=True)


# ---- parsing: every line to typed fields --------------------------------------------------

_BASE = ("source", "file", "line_no", "raw_bytes")
_WORK = ("line", "kind", "parse_reason", "routed_by")


def _vstr(v, path: str, typ: str = "string"):
    """The value at ``path`` of the variant ``v`` cast to ``typ``; NULL when absent, null or not castable."""
    from pyspark.sql import functions as F

    return F.try_variant_get(v, path, typ)


def _present(v, path: str = "$"):
    """Whether ``path`` holds a JSON value other than null (without converting it)."""
    from pyspark.sql import functions as F

    x = v if path == "$" else F.variant_get(v, path, "variant")
    return x.isNotNull() & ~F.is_variant_null(x)


def _vtype(v, path: str = "$"):
    """The JSON type at ``path`` (STRING, BIGINT, DECIMAL(2,1), OBJECT<...>, VOID for null); NULL when absent."""
    from pyspark.sql import functions as F

    return F.schema_of_variant(v if path == "$" else F.variant_get(v, path, "variant"))


# The objects of a document the rules read, each read once into a struct of VARIANT fields
# (column -> its JSON path and keys): one struct read per object costs about a third of one
# path lookup per field. Field names match case-sensitively, as paths do.
_OBJECTS = {
    "_top": ("$", ("application", "action_name", "query_id", "client_id", "session_id", "user_id", "user_query",
                   "message_type", "query_response_id", "query_response_hit_ids", "object_id_field", "timestamp",
                   "event_attributes", "query_attributes")),
    "_ea": ("$.event_attributes", ("object", "position", "dwell_time", "session_id", "user_id")),
    "_obj": ("$.event_attributes.object", ("object_id", "object_id_field", "description")),
    "_pos": ("$.event_attributes.position", ("ordinal",)),
    "_qa": ("$.query_attributes", ("session_id", "user_id")),
}  # fmt: skip
_OBJECT_OF_PATH = {path: column for column, (path, _) in _OBJECTS.items()}


def _with_objects(df):
    """``df`` with a struct column per object of :data:`_OBJECTS`, read from the document ``d``."""
    from pyspark.sql import functions as F

    for column, (path, keys) in _OBJECTS.items():
        parent, _, key = path.rpartition(".")
        source = F.col("d") if path == "$" else F.col(_OBJECT_OF_PATH[parent])[key]
        struct = "struct<" + ", ".join(f"`{k}`: variant" for k in keys) + ">"
        df = df.withColumn(column, F.try_variant_get(source, "$", struct))
    return df


def _field(path: str):
    """The VARIANT at a document ``path`` read by :func:`_with_objects` (NULL when absent)."""
    from pyspark.sql import functions as F

    parent, _, key = path.rpartition(".")
    return F.col(_OBJECT_OF_PATH[parent])[key]


def _is_object_line(line, v):
    """A line holding one JSON object: `{...}` that parses, and not two documents glued together
    (`{"a":1}{"b":2}`, a missing newline: the parser would read the first one only)."""
    return line.startswith("{") & line.endswith("}") & v.isNotNull() & ~_glued(line)


def _glued(line):
    """`}` then `{"` (spaces between allowed): a missing newline. One regex scan of the line
    costs less than a prefilter of `contains` scans (one per character that may follow `}`)."""
    from pyspark.sql import functions as F

    return F.coalesce(line.rlike(r'\}\s*\{\s*"'), F.lit(False))


# The top-level keys that tell a bulk action line or a search hit from a document, read once per line.
_HEAD_KEYS = ("timestamp", "action_name", "query_id", "_source", *_BULK_ACTIONS)


def _is_action(head):
    """An OpenSearch bulk action line: an ``index``/``create``/``update``/``delete`` key, no document
    field (:func:`sie.ingest.landing.bulk_routes` applies the same test to find the routes).
    ``head``: the line's :data:`_HEAD_KEYS` as a struct of VARIANTs."""
    no_doc = ~(_present(head["timestamp"]) | _present(head["action_name"]) | _present(head["query_id"]))
    is_action = reduce(lambda a, b: a | b, (_present(head[a]) for a in _BULK_ACTIONS))
    return is_action & no_doc & ~_present(head["_source"])


def _action_target(v):
    from pyspark.sql import functions as F

    return F.coalesce(*(_vstr(v, f"$.{a}._index") for a in _BULK_ACTIONS))


def _source_of(index):
    """The source an OpenSearch index name stands for (``ubi_events``, ``ubi_queries``, also with a
    prefix or suffix such as ``ubi_events-000001``), or NULL."""
    from pyspark.sql import functions as F

    i = F.lower(index)
    return F.when(i.contains("ubi_events"), "ubi_events").when(i.contains("ubi_queries"), "ubi_queries")


def _parse_failure(line):
    """Why a line that is not one JSON object is rejected (the JSON rules, in order)."""
    from pyspark.sql import functions as F

    # A repeated key: the strict parser takes the object, the VARIANT parser refused it.
    strict = F.from_json(line, "`_corrupt_record` STRING", _STRICT_JSON)["_corrupt_record"].isNull()
    repeated_key = (
        line.startswith("{")
        & line.endswith("}")
        & ~_glued(line)
        & (F.octet_length(line) < _VARIANT_MAX_BYTES)
        & ~line.rlike(_LONE_SURROGATE)
        & strict
    )
    scalar_or_array = line.rlike(_JSON_SCALAR) | F.json_array_length(line).isNotNull()
    return F.when(repeated_key, R.DUPLICATE_KEY).when(scalar_or_array, R.NOT_AN_OBJECT).otherwise(R.INVALID_JSON)


def _documents(lines):
    """(base, line, kind, parse_reason, routed_by, d): each line parsed into the VARIANT
    document ``d``, its kind, and ``source`` routed by the bulk ``_index``.

    A document follows the ``_index`` of its bulk action line (or of its search hit), wherever
    the file landed; without one it belongs to its landing folder (``routed_by`` says which).
    """
    from pyspark.sql import functions as F

    utf8 = F.is_valid_utf8(F.col("raw_bytes").cast("string"))
    df = lines.select("*", _parse_text().alias("line"), utf8.alias("_utf8"))
    df = df.withColumn("_v", F.try_parse_json("line"))
    head_struct = "struct<" + ", ".join(f"`{k}`: variant" for k in _HEAD_KEYS) + ">"
    df = df.withColumn("_head", F.try_variant_get("_v", "$", head_struct))
    line, v, head = F.col("line"), F.col("_v"), F.col("_head")
    is_object = _is_object_line(line, v) & F.col("_utf8")
    df = df.withColumns({"_object": is_object, "_action": is_object & _is_action(head)})
    parse_reason = F.when(~F.col("_utf8"), R.INVALID_UTF8).when(~F.col("_object"), _parse_failure(line))
    kind = F.when(line == "", "blank").when(F.col("_action"), "bulk_action").otherwise("record")
    # Search-hit exports wrap the document in `_source`, beside its `_index`.
    src = head["_source"]
    is_hit = F.schema_of_variant(src).startswith("OBJECT")
    own_index = F.when(F.col("_action"), _action_target(v)).when(is_hit, _vstr(v, "$._index"))
    df = df.select(
        *_BASE,
        "route",
        "line",
        kind.alias("kind"),
        parse_reason.alias("parse_reason"),
        F.when(is_hit, src).otherwise(v).alias("d"),
        own_index.alias("_index"),
    )
    valid = (F.col("kind") != "blank") & F.col("parse_reason").isNull()
    own, route = F.when(valid, _source_of(F.col("_index"))), F.when(valid, F.col("route"))
    by = (
        F.when(own.isNotNull(), F.concat(F.lit("its _index "), F.col("_index")))
        .when(route.isNotNull(), F.lit("its bulk action line's _index"))
        .otherwise("its landing folder")
    )
    return df.select(
        F.coalesce(own, route, F.col("source")).alias("source"), *_BASE[1:], *_WORK[:3], by.alias("routed_by"), "d"
    )


def _type_errors():
    """'path is TYPE' for every text field that is present but not a JSON string, joined by '; ' ('' if none)."""
    from pyspark.sql import functions as F

    errors = []
    for paths in _STRING_FIELDS.values():
        for path in paths:
            t = _vtype(_field(path))
            errors.append(F.when(~t.isin("STRING", "VOID"), F.concat(F.lit(f"{path[2:]} is "), t)))
    hits = _vtype(_field(_HIT_IDS))
    ok_hits = hits.isin("VOID", "ARRAY<STRING>", "ARRAY<VOID>")
    errors.append(F.when(~ok_hits, F.concat(F.lit(f"{_HIT_IDS[2:]} is "), hits)))
    # A type lookup on a field of an object struct costs well under a microsecond: cheaper than
    # a prefilter on the whole document's type (one schema string plus a regex per line).
    return F.concat_ws("; ", *errors)


def _fields(df):
    """The document fields, cleaned (still strings where a rule must see the raw value)."""
    from pyspark.sql import functions as F

    as_ = lambda path, typ="string": F.try_variant_get(_field(path), "$", typ)  # noqa: E731
    present = lambda path: _present(_field(path))  # noqa: E731
    numeric = lambda path: _vtype(_field(path)).rlike(_NUMBER_TYPES)  # noqa: E731
    paths = sorted({p for ps in _STRING_FIELDS.values() for p in ps} | {_ORDINAL, "$.timestamp"})
    raw = {p: f"_s{i}" for i, p in enumerate(paths)}
    # Each string is read once into its own column: a cast from VARIANT costs microseconds, and
    # the cleaning below reads each value twice.
    df = _with_objects(df).select(
        *_BASE,
        *_WORK,
        *(as_(p).alias(raw[p]) for p in paths),
        F.when(numeric(_ORDINAL), as_(_ORDINAL, "double")).alias("ordinal_d"),
        as_(_DWELL).alias("dwell_raw"),
        F.when(numeric(_DWELL), as_(_DWELL, "double")).alias("dwell_time"),
        as_(_HIT_IDS, "array<string>").alias("hit_ids"),
        _type_errors().alias("type_errors"),
        present("$.event_attributes").alias("_has_ea"),
        (present("$.query_response_id") | present(_HIT_IDS) | present("$.query_attributes")).alias("_query_keys"),
    )
    text = {
        name: F.coalesce(*(_clean(F.col(raw[p])) for p in paths)).alias(name) for name, paths in _STRING_FIELDS.items()
    }
    text["action_name"] = F.lower(text["action_name"]).alias("action_name")
    event_shape = text["action_name"].isNotNull() | F.col("_has_ea")
    return df.select(
        *_BASE,
        *_WORK,
        *text.values(),
        _clean(F.col(raw[_ORDINAL])).alias("ordinal_raw"),
        "ordinal_d",
        "dwell_raw",
        "dwell_time",
        _clean(F.col(raw["$.timestamp"])).alias("ts_raw"),
        "hit_ids",
        "type_errors",
        event_shape.alias("event_shape"),
        (~event_shape & F.col("_query_keys")).alias("query_shape"),
    )


def _typed_values(df):
    """Adds ``event_ts`` (epoch ms or zoned RFC 3339), ``ordinal``, ``dwell_ok``, ``dedup_key`` and ``is_object``."""
    from pyspark.sql import functions as F

    ts_raw = F.col("ts_raw")
    # Cast only what looks like a number: a failed string-to-double cast costs a Java exception
    # (about 4 µs per line when most timestamps are RFC 3339 text).
    ms = F.when(ts_raw.rlike(_EPOCH), ts_raw.try_cast("double"))
    ts_num = F.when((ms >= 0) & (ms < 1e14), F.timestamp_millis(F.floor(ms).cast("bigint")))
    ts_iso = F.when(ts_raw.rlike(_ISO_WITH_ZONE), F.upper(ts_raw).try_cast("timestamp"))  # RFC 3339: any case
    ordinal_d = F.col("ordinal_d")
    ordinal_ok = ordinal_d.isNotNull() & (ordinal_d >= 0) & (ordinal_d < 1e6) & (ordinal_d == F.floor(ordinal_d))
    dwell = F.col("dwell_time")
    dwell_ok = F.col("dwell_raw").isNull() | (
        dwell.isNotNull() & ~F.isnan(dwell) & (dwell >= 0) & (dwell <= R.MAX_DWELL_SECONDS)
    )
    return df.withColumns(
        {
            "event_ts": F.coalesce(ts_num, ts_iso),
            "ordinal": F.when(ordinal_ok, ordinal_d.cast("int")),
            "dwell_ok": dwell_ok,
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
    wrong_source = (is_query & F.col("event_shape")) | (is_event & F.col("query_shape"))
    return (
        F.when(~F.col("is_object"), F.col("parse_reason"))
        .when(F.col("type_errors") != "", R.BAD_FIELD_TYPE)
        .when(wrong_source, R.WRONG_SOURCE)
        .when(F.col("ts_raw").isNull(), R.MISSING_TIMESTAMP)
        .when(is_event & F.col("action_name").isNull(), R.MISSING_ACTION_NAME)
        .when((ranking | is_query) & F.col("query_id").isNull(), R.MISSING_QUERY_ID)
        .when(is_query & F.col("query_text").isNull(), R.MISSING_USER_QUERY)
        .when(ranking & F.col("client_id").isNull(), R.MISSING_CLIENT_ID)
        .when(ranking & F.col("item_id").isNull(), R.MISSING_OBJECT_ID)
        .when(ranking & F.col("ordinal_raw").isNull(), R.MISSING_POSITION)
        .when(F.col("event_ts").isNull(), R.BAD_TIMESTAMP)
        .when(ranking & F.col("ordinal").isNull(), R.BAD_POSITION)
        .when(~F.col("dwell_ok"), R.BAD_DWELL_TIME)
        .when(~in_window, R.OUT_OF_WINDOW)
    )


def _repeated_keys(line):
    """The top-level keys a JSON object repeats (a nested repeat is not named)."""
    from pyspark.sql import functions as F

    keys = F.json_object_keys(line)
    repeated = F.filter(F.array_distinct(keys), lambda k: F.size(F.filter(keys, lambda x: x == k)) > 1)
    return F.when(F.size(repeated) > 0, F.concat(F.lit("repeated key: "), F.array_join(repeated, ", "))).otherwise(
        "a nested object repeats a key"
    )


def _line_detail(day: DayWindow):
    """The offending value of a line rule's ``reason``."""
    from pyspark.sql import functions as F

    reason = F.col("reason")
    shape = F.when(F.col("event_shape"), "an event document").otherwise("a query document")
    return (
        F.when(reason == R.INVALID_UTF8, "not valid UTF-8: raw shows U+FFFD where raw_bytes has the bytes")
        .when(reason == R.DUPLICATE_KEY, _repeated_keys(F.col("line")))
        .when(reason == R.BAD_FIELD_TYPE, F.col("type_errors"))
        .when(reason == R.WRONG_SOURCE, F.concat(shape, F.lit(" sent to "), "source", F.lit(" by "), "routed_by"))
        .when(reason == R.BAD_TIMESTAMP, F.concat(F.lit("timestamp="), F.col("ts_raw")))
        .when(reason == R.BAD_POSITION, F.concat(F.lit("ordinal="), F.col("ordinal_raw")))
        .when(reason == R.BAD_DWELL_TIME, F.concat(F.lit("dwell_time="), F.col("dwell_raw")))
        .when(
            reason == R.OUT_OF_WINDOW,
            F.concat(F.date_format("event_ts", "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"), F.lit(f" not in {day.describe()}")),
        )
    )


def _line_rules(df, day: DayWindow, rows: _Rows):
    """Adds ``reason``/``detail`` of the line rules and ``dup_rank`` (exact duplicates); drops the working columns."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    df = df.withColumn("reason", F.when(F.col("kind") == "record", _line_reason(day, rows)))
    # The detail is computed (and the working columns dropped) before the duplicates' window:
    # only what later steps read travels through its shuffle (`raw_bytes` stays for the quarantine).
    df = df.withColumn("detail", _line_detail(day)).drop(
        "line",
        "routed_by",
        "ordinal_d",
        "dwell_raw",
        "dwell_ok",
        "type_errors",
        "event_shape",
        "query_shape",
    )
    # Exact duplicates (logging retries): identical document lines; the first (file, line) is kept.
    valid = (F.col("kind") == "record") & F.col("reason").isNull()
    dup_rank = F.row_number().over(Window.partitionBy("source", "dedup_key").orderBy("file", "line_no"))
    return df.withColumn("dup_rank", F.when(valid, dup_rank))


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

    # Broadcast: the registry is one narrow row per request (~100 B; a 10M-impression day has 1M
    # requests), while a shuffle join would move every wide record (its raw line and parsed
    # fields) across the cluster once more: that shuffle was most of a large day's classify time.
    df = _with_base(df.join(F.broadcast(registry), "query_id", "left"), app_base)
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
    """Adds ``dest``; keeps the line (``raw``, ``raw_bytes``) for quarantined records only; drops working columns."""
    from pyspark.sql import functions as F

    dest = (
        F.when(F.col("kind") != "record", F.lit(None).cast("string"))
        .when(F.col("reason").isNotNull(), "quarantine")
        .when(F.col("dup_rank") > 1, "dedup")
        .otherwise("accepted")
    )
    # The line is kept for quarantined records only (the others are parsed into columns): its
    # exact bytes, and as valid UTF-8 text for display (invalid sequences become U+FFFD).
    quarantined = F.col("dest") == "quarantine"
    df = df.withColumn("dest", dest).withColumns(
        {
            "raw": F.when(quarantined, F.make_valid_utf8(F.col("raw_bytes").cast("string"))),
            "raw_bytes": F.when(quarantined, F.col("raw_bytes")),
        }
    )
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
