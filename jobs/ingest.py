"""Ingest one day of raw UBI logs with Spark (a scheduler / spark-submit entry point).

    PYSPARK_PYTHON=.venv/bin/python spark-submit --master 'local[2]' jobs/ingest.py \
        --ds 2026-11-20 --warehouse /data/sie [--validate]
    python jobs/ingest.py --ds 2026-11-20 --warehouse /data/sie   # embedded local Spark

Under spark-submit the session comes from spark-submit (its --master and --conf win);
run directly, the embedded local session of ``sie.spark`` is used. Prints the summary
as JSON; exits non-zero on a missing day, a reconciliation failure or (with
--validate) a critical Great Expectations failure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # runnable from a checkout

from sie.config import SieConfig  # noqa: E402


def _spark(cfg: SieConfig):
    if os.environ.get("PYSPARK_GATEWAY_PORT"):  # launched by spark-submit: keep its master and confs
        from pyspark.sql import SparkSession

        builder = SparkSession.builder.appName("sie-ingest")
        builder = builder.config("spark.sql.session.timeZone", "UTC")
        builder = builder.config("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
        return builder.getOrCreate()
    from sie.spark import get_spark

    return get_spark(cfg)


def _test_pause():
    """SIE_INGEST_TEST_PAUSE=<table>: after staging <table>, touch <warehouse>/_staging/PAUSED and sleep (kill tests)."""
    table = os.environ.get("SIE_INGEST_TEST_PAUSE")
    if not table:
        return None

    def hook(name: str, staging: Path) -> None:
        if name == table:
            (staging.parent / "PAUSED").write_text(str(staging))
            time.sleep(600)

    return hook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ds", required=True, help="the day, YYYY-MM-DD")
    parser.add_argument("--warehouse", help="warehouse root (default: SIE_WAREHOUSE / config)")
    parser.add_argument("--config", help="JSON config file (default: SIE_CONFIG)")
    parser.add_argument("--run-id", help="default: ingest-<ds>")
    parser.add_argument("--validate", action="store_true", help="then run the raw_events and samples suites")
    args = parser.parse_args(argv)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    cfg = SieConfig.load({"warehouse": args.warehouse} if args.warehouse else None, config_file=args.config)

    from sie.ingest import ingest_day

    summary = ingest_day(cfg, args.ds, spark=_spark(cfg), run_id=args.run_id, _after_staging=_test_pause())
    if args.validate:
        from sie.validate import validate

        summary["validation"] = {s: validate(cfg, args.ds, s)["success"] for s in ("raw_events", "samples")}
    print(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
