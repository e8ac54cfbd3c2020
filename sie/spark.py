"""One local Spark session per process, configured for the warehouse."""

from __future__ import annotations

import os
from pathlib import Path

from sie.config import SieConfig

_SESSION = None
_JIT_HUGE_METHODS = "-XX:-DontCompileHugeMethods"


def get_spark(cfg: SieConfig | None = None):
    """Return the process-wide SparkSession (created on first use)."""
    global _SESSION
    if _SESSION is not None and _SESSION._jsc is not None and not _SESSION._jsc.sc().isStopped():
        return _SESSION
    from pyspark.sql import SparkSession

    cfg = cfg or SieConfig.load()
    os.environ.setdefault("PYSPARK_PYTHON", os.environ.get("PYSPARK_PYTHON", "python3"))
    builder = (
        SparkSession.builder.appName("sie")
        .master(os.environ.get("SIE_SPARK_MASTER", cfg.ingest.spark_master))
        .config("spark.sql.shuffle.partitions", str(cfg.ingest.shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", os.environ.get("SIE_SPARK_DRIVER_MEMORY", "2g"))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.showConsoleProgress", "false")
        # Whole-stage codegen of the ingest parse makes methods over HotSpot's 8,000-byte limit,
        # which it would otherwise never JIT-compile (they run interpreted: ~1.5x slower parse).
        .config("spark.driver.extraJavaOptions", _JIT_HUGE_METHODS)
        .config("spark.executor.extraJavaOptions", _JIT_HUGE_METHODS)  # (a cluster's executors)
    )
    if os.environ.get("SIE_SPARK_EVENT_LOG"):  # a folder: stage timings for profiling (benchmarks/)
        Path(os.environ["SIE_SPARK_EVENT_LOG"]).mkdir(parents=True, exist_ok=True)
        builder = builder.config("spark.eventLog.enabled", "true").config("spark.eventLog.compress", "false")
        builder = builder.config("spark.eventLog.dir", Path(os.environ["SIE_SPARK_EVENT_LOG"]).resolve().as_uri())
    _SESSION = builder.getOrCreate()
    _SESSION.sparkContext.setLogLevel("ERROR")
    return _SESSION


def job_spark(cfg: SieConfig, app_name: str = "sie"):
    """The session of a job script: spark-submit's own when launched by it (its --master and
    --conf win), else the embedded local session of :func:`get_spark`."""
    if not os.environ.get("PYSPARK_GATEWAY_PORT"):
        return get_spark(cfg)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    builder = builder.config("spark.sql.session.timeZone", "UTC")
    builder = builder.config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
    return builder.getOrCreate()
