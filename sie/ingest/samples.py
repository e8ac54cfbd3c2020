"""Build the `samples` table of one day from its clean events and queries (Spark).

One sample per (query_id, item_id) impression; labels from interactions with the same
(query_id, item_id); requests sessionised per client; trailing-window statistics from
the published samples of the previous days. Rules: docs/INGEST.md.
"""

from __future__ import annotations

from typing import NamedTuple

from sie.config import IngestConfig
from sie.ingest import reasons as R
from sie.ingest.day import DayWindow
from sie.ingest.run import IngestRun
from sie.schemas import LABEL_GRADES, sample_id_spark
from sie.store import Warehouse

DEFAULT_CTR_PRIOR = 0.1  # the item CTR prior when no history exists


def tokens(col):
    """Lower-cased [a-z0-9]+ tokens, as :func:`sie.model.features.tokenize`."""
    from pyspark.sql import functions as F

    return F.regexp_extract_all(F.lower(F.coalesce(col, F.lit(""))), F.lit("[a-z0-9]+"), 0)


def history_days(wh: Warehouse, day: DayWindow, window_days: int) -> list[str]:
    """Published samples partitions in [ds - window_days, ds - 1]."""
    wanted = set(day.days_before(window_days))
    return sorted(p["ds"] for p in wh.partitions("samples") if p["ds"] in wanted)


def build_samples(run: IngestRun, events, queries):
    """One row per (query_id, item_id) impression, with labels and features (SAMPLES columns).

    Rows whose request has no query text are included here (``query_text`` NULL); the
    caller leaves them out of the table and counts them. Also returns the interactions
    (query_id, item_id) without an impression that day ("orphans").
    """
    ev = _day_events(events)
    imp = _first_impressions(ev)
    inter = _interactions(ev)
    req = _sessionise(_requests(imp, queries), run.ic.session_gap_minutes)
    req = req.join(_suspected_bots(req, ev, run.ic), "_ck", "left")
    joined = _join(imp, req, inter, _catalog_titles(run), _history_stats(run))
    out = _labels_and_features(joined, run.run_id, run.ic.ctr_prior_strength)
    orphans = inter.join(imp.select("query_id", "item_id"), ["query_id", "item_id"], "left_anti")
    return out, orphans


# ---- the day's impressions, interactions and requests --------------------------------------


def _day_events(events):
    return events.select(
        "event_id",
        "action_name",
        "query_id",
        "client_id",
        "item_id",
        "position",
        "event_ts",
        "dwell_time",
        "query_text",
        "application",
        "item_description",
    )


def _first_impressions(ev):
    """The first impression of each (query_id, item_id)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    imp_all = ev.filter(F.col("action_name") == "impression")
    first = Window.partitionBy("query_id", "item_id").orderBy("event_ts", "position", "event_id")
    return imp_all.withColumn("_rn", F.row_number().over(first)).filter("_rn = 1").drop("_rn")


def _interactions(ev):
    """Per (query_id, item_id): whether it was clicked, added to cart, purchased; the click dwell."""
    from pyspark.sql import functions as F

    return (
        ev.filter(F.col("action_name").isin(*R.INTERACTIONS))
        .groupBy("query_id", "item_id")
        .agg(
            F.max((F.col("action_name") == "click").cast("int")).alias("click"),
            F.max((F.col("action_name") == "add_to_cart").cast("int")).alias("add_to_cart"),
            F.max((F.col("action_name") == "purchase").cast("int")).alias("purchase"),
            F.max(F.when(F.col("action_name") == "click", F.col("dwell_time"))).alias("click_dwell"),
        )
    )


def _requests(imp, queries):
    """Requests: the query documents plus query_ids seen only through impressions."""
    from pyspark.sql import functions as F

    imp_req = imp.groupBy("query_id").agg(
        F.min("event_ts").alias("imp_ts"),
        F.min("client_id").alias("imp_client"),
        F.min("query_text").alias("imp_text"),
        F.min("application").alias("imp_app"),
    )
    # A query_id may have several response documents (e.g. result list + facet queries):
    # the request is the earliest one.
    order = F.struct("request_ts", "file", "line_no")
    q = queries.groupBy("query_id").agg(
        F.min("request_ts").alias("q_ts"),
        F.min_by("client_id", order).alias("q_client"),
        F.min_by("query_text", order).alias("q_text"),
        F.min_by("application", order).alias("q_app"),
    )
    return q.join(imp_req, "query_id", "full_outer").select(
        "query_id",
        F.coalesce("q_ts", "imp_ts").alias("request_ts"),
        F.coalesce("q_client", "imp_client").alias("client_id"),
        # the text the impressions were logged with wins over the query document's (a producer
        # may reuse a query_id while the user refines the query)
        F.coalesce("imp_text", "q_text").alias("query_text"),
        F.coalesce("q_app", "imp_app").alias("application"),
    )


def _sessionise(req, gap_minutes: int):
    """Sessions: per client (``_ck``), a gap longer than ``gap_minutes`` starts a new one."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    ck = F.coalesce(F.col("client_id"), F.concat(F.lit("query:"), F.col("query_id")))
    req = req.withColumn("_ck", ck)
    by_client = Window.partitionBy("_ck").orderBy("request_ts", "query_id")
    gap_us = F.unix_micros("request_ts") - F.unix_micros(F.lag("request_ts").over(by_client))
    req = req.withColumn("_new", F.when(gap_us.isNull() | (gap_us > gap_minutes * 60 * 1_000_000), 1).otherwise(0))
    req = req.withColumn("_sess", F.sum("_new").over(by_client.rowsBetween(Window.unboundedPreceding, 0)))
    in_session = Window.partitionBy("_ck", "_sess").orderBy("request_ts", "query_id")
    req = req.withColumn("_sess_start", F.first("request_ts").over(in_session))
    return req.withColumn(
        "session_id",
        F.substring(
            F.sha2(F.concat_ws("|", F.col("_ck"), F.date_format("_sess_start", "yyyy-MM-dd'T'HH:mm:ss.SSSSSS")), 256),
            1,
            16,
        ),
    ).withColumn("session_query_index", (F.row_number().over(in_session) - 1).cast("double"))


def _suspected_bots(req, ev, ic: IngestConfig):
    """(_ck, suspected_bot) per client and day: too many requests, or mostly near-zero-dwell clicks."""
    from pyspark.sql import functions as F

    n_req = req.groupBy("_ck").agg(F.count("*").alias("_n_req"))
    clicks = (
        ev.filter(F.col("action_name") == "click")
        .withColumn("_ck", F.col("client_id"))
        .groupBy("_ck")
        .agg(
            F.count("*").alias("_n_clicks"),
            F.sum((F.col("dwell_time") < ic.bot_fast_click_seconds).cast("int")).alias("_n_fast"),
        )
    )
    return n_req.join(clicks, "_ck", "left").select(
        "_ck",
        (
            (F.col("_n_req") > ic.bot_max_requests_per_day)
            | (
                (F.coalesce("_n_clicks", F.lit(0)) >= ic.bot_min_clicks)
                & (F.coalesce("_n_fast", F.lit(0)) >= ic.bot_fast_click_share * F.col("_n_clicks"))
            )
        )
        .cast("int")
        .alias("suspected_bot"),
    )


# ---- what earlier days and the catalog add -------------------------------------------------


class _History(NamedTuple):
    """Trailing-window statistics: per item, the CTR prior, per normalised query text."""

    item_stats: object  # (item_id, _h_impr, _h_clicks)
    prior: object  # one row (_prior)
    query_stats: object  # (_qnorm, _h_qfreq)


def _history_stats(run: IngestRun) -> _History:
    """Trailing-window statistics from published samples of the previous days (no leakage)."""
    from pyspark.sql import functions as F

    spark = run.spark
    if not run.history_days:
        return _History(
            spark.createDataFrame([], "item_id STRING, _h_impr BIGINT, _h_clicks DOUBLE"),
            spark.createDataFrame([(DEFAULT_CTR_PRIOR,)], "_prior DOUBLE"),
            spark.createDataFrame([], "_qnorm STRING, _h_qfreq BIGINT"),
        )
    paths = [str(f.path) for f in run.warehouse.data_files("samples", {"ds": run.history_days})]
    hist = spark.read.parquet(*paths).select("item_id", "click", "query_id", "query_text")
    return _History(
        hist.groupBy("item_id").agg(F.count("*").alias("_h_impr"), F.sum("click").cast("double").alias("_h_clicks")),
        hist.agg(F.coalesce(F.sum("click") / F.count("*"), F.lit(DEFAULT_CTR_PRIOR)).alias("_prior")),
        hist.groupBy(F.lower(F.trim("query_text")).alias("_qnorm")).agg(F.countDistinct("query_id").alias("_h_qfreq")),
    )


def _catalog_titles(run: IngestRun):
    """(item_id, _cat_title) from the landed catalog, or None without one."""
    from pyspark.sql import functions as F

    wh = run.warehouse
    if not wh.catalog_path.exists():
        return None
    return (
        run.spark.read.parquet(str(wh.catalog_path))
        .select(F.col("item_id").cast("string").alias("item_id"), F.col("title").cast("string").alias("_cat_title"))
        .groupBy("item_id")
        .agg(F.min("_cat_title").alias("_cat_title"))
    )


# ---- samples -----------------------------------------------------------------------------


def _join(imp, req, inter, catalog, history: _History):
    """Each first impression with its request, interactions, catalog title and history statistics."""
    from pyspark.sql import functions as F

    s = imp.select(
        "query_id",
        "item_id",
        "position",
        F.col("item_description").alias("_desc"),
    ).join(req.drop("_new", "_sess", "_sess_start"), "query_id", "left")
    s = s.join(inter, ["query_id", "item_id"], "left")
    if catalog is not None:
        s = s.join(catalog, "item_id", "left")
    else:
        s = s.withColumn("_cat_title", F.lit(None).cast("string"))
    s = s.join(history.item_stats, "item_id", "left").crossJoin(F.broadcast(history.prior))
    return s.withColumn("_qnorm", F.lower(F.trim("query_text"))).join(history.query_stats, "_qnorm", "left")


def _labels_and_features(s, run_id: str, prior_strength: float):
    """The SAMPLES columns: graded label, smoothed item CTR, frequencies, tokens."""
    from pyspark.sql import functions as F

    m = float(prior_strength)
    h_impr = F.coalesce(F.col("_h_impr"), F.lit(0)).cast("double")
    h_clicks = F.coalesce(F.col("_h_clicks"), F.lit(0.0))
    click = F.coalesce("click", F.lit(0))
    atc = F.coalesce("add_to_cart", F.lit(0))
    purchase = F.coalesce("purchase", F.lit(0))
    label = (
        F.when(purchase == 1, LABEL_GRADES["purchase"])
        .when(atc == 1, LABEL_GRADES["add_to_cart"])
        .when(click == 1, LABEL_GRADES["click"])
        .otherwise(LABEL_GRADES["impression"])
    )
    title = F.coalesce(F.col("_cat_title"), F.col("_desc"), F.lit(""))
    return s.select(
        sample_id_spark(F.col("query_id"), F.col("item_id")).alias("sample_id"),
        F.lit(run_id).alias("run_id"),
        "query_id",
        "client_id",
        "session_id",
        "request_ts",
        "query_text",
        "item_id",
        title.alias("item_title"),
        F.col("position").cast("int").alias("position"),
        click.cast("int").alias("click"),
        atc.cast("int").alias("add_to_cart"),
        purchase.cast("int").alias("purchase"),
        label.cast("int").alias("label"),
        F.col("click_dwell").alias("dwell_time"),
        ((h_clicks + m * F.col("_prior")) / (h_impr + m)).alias("item_prior_ctr"),
        F.log1p(h_impr).alias("item_log_impressions"),
        F.log1p(F.coalesce(F.col("_h_qfreq"), F.lit(0)).cast("double")).alias("query_log_freq"),
        F.col("session_query_index").cast("double").alias("session_query_index"),
        "application",
        tokens(F.col("query_text")).alias("query_tokens"),
        tokens(title).alias("item_tokens"),
        F.coalesce("suspected_bot", F.lit(0)).cast("int").alias("suspected_bot"),
    )
