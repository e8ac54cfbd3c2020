"""Ingest one day of raw UBI logs with Spark (a scheduler / spark-submit entry point).

    PYSPARK_PYTHON=.venv/bin/python spark-submit --master 'local[2]' jobs/ingest.py \
        --ds 2026-11-20 --warehouse /data/sie [--validate] [--set SECTION.FIELD=VALUE]
    python jobs/ingest.py --ds 2026-11-20 --warehouse /data/sie   # embedded local Spark

Under spark-submit the session comes from spark-submit (its --master and --conf win);
run directly, the embedded local session of ``sie.spark`` is used. Prints the summary
as JSON; exits non-zero on a missing day, a reconciliation failure or (with
--validate) a critical Great Expectations failure.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # runnable from a checkout

from _args import config, parser  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__)
    p.add_argument("--run-id", help="default: ingest-<ds>")
    p.add_argument("--validate", action="store_true", help="then run the raw_events and samples suites")
    args = p.parse_args(argv)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    cfg = config(args)  # also sets up logging

    from sie.ingest import ingest_day
    from sie.spark import job_spark

    summary = ingest_day(cfg, args.ds, spark=job_spark(cfg, "sie-ingest"), run_id=args.run_id)
    if args.validate:
        from sie.validate import validate

        summary["validation"] = {s: validate(cfg, args.ds, s)["success"] for s in ("raw_events", "samples")}
    print(json.dumps(summary, indent=2, default=str))  # the job's result
    return 0


if __name__ == "__main__":
    sys.exit(main())
