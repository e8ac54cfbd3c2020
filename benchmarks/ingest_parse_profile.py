"""Where the ingest's parse spends its CPU: each stage of ``sie.ingest.parse`` on the same lines.

    python benchmarks/ingest_parse_profile.py --events FILE.ndjson.gz --lines 300000
    python benchmarks/ingest_parse_profile.py            # simulates a 30,000-request day first

Each stage adds one step of the parse to the previous one (documents: UTF-8 check, VARIANT
parse, routing; fields: the typed fields and their type checks; typed: timestamps, ordinals,
dedup key; line_rules: reasons and their details) and is run to completion (Spark's ``noop``
sink), best of two runs. What is measured is the Spark driver's CPU seconds (``/proc``, the
JVM runs the tasks in ``local`` mode): unlike wall time, it barely moves when other work
shares the cores. Single expressions (the JSON parse alone, the SHA-256 alone) give scale.
Results: ``benchmarks/results/ingest_parse_profile.json``.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "ingest_parse_profile.json"
DS = "2026-11-10"


def simulated_events(folder: Path) -> Path:
    """A simulated day's landed events file (30,000 requests, about 330k lines)."""
    from sie.config import SieConfig
    from sie.steps import daily

    cfg = SieConfig.load({"warehouse": str(folder / "warehouse"), "simulate": {"requests_per_day": 30_000}})
    daily.simulate(cfg, DS)
    return next((folder / "warehouse" / "raw" / "ubi_events" / f"ds={DS}").iterdir())


def first_lines(events: Path, n: int, out: Path) -> int:
    opener = gzip.open if events.suffix == ".gz" else open
    with opener(events, "rt") as src, open(out, "w") as dst:
        lines = list(itertools.islice(src, n))
        dst.writelines(lines)
    return len(lines)


def jvm_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def profile(lines_file: Path) -> list[dict]:
    from pyspark.sql import functions as F

    from sie.ds import Ds
    from sie.ingest import parse as P
    from sie.ingest.day import DayWindow
    from sie.spark import get_spark

    spark = get_spark()
    spark.conf.set("spark.sql.shuffle.partitions", str(spark.sparkContext.defaultParallelism))
    pid = spark._jvm.java.lang.ProcessHandle.current().pid()
    lines = (
        spark.read.text(str(lines_file))
        .select(
            F.lit("ubi_events").alias("source"),
            F.lit("events.ndjson").alias("file"),
            F.monotonically_increasing_id().alias("line_no"),
            F.col("value").cast("binary").alias("raw_bytes"),
            F.lit(None).cast("string").alias("route"),
        )
        .repartition(spark.sparkContext.defaultParallelism)
        .cache()
    )
    lines.count()
    day, rows = DayWindow.of(Ds(DS), 6), P._rows()
    documents = P._documents(lines)
    fields = P._fields(documents)
    typed = P._typed_values(fields)
    text = F.col("raw_bytes").cast("string")
    stages = [
        ("lines (cached)", lines, True),
        ("documents", documents, True),
        ("fields", fields, True),
        ("typed", typed, True),
        ("line_rules", P._line_rules(typed, day, rows), True),
        ("json parse alone", lines.select(F.try_parse_json(text).isNotNull()), False),
        ("sha-256 alone", lines.select(F.sha2(text, 256)), False),
        ("type checks + the parse they need", fields.select("type_errors"), False),
    ]
    out = []
    for name, df, cumulative in stages:
        best = float("inf")
        for _ in range(2):
            before = jvm_cpu_seconds(pid)
            df.write.format("noop").mode("overwrite").save()
            best = min(best, jvm_cpu_seconds(pid) - before)
        out.append({"stage": name, "cumulative": cumulative, "cpu_seconds": round(best, 2)})
        print(f"{name:26s} {best:7.2f} CPU s", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--events", type=Path, help="a landed UBI events file (.ndjson or .ndjson.gz)")
    p.add_argument("--lines", type=int, default=300_000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="sie-parse-profile-") as tmp:
        events = args.events or simulated_events(Path(tmp))
        n = first_lines(events, args.lines, Path(tmp) / "lines.ndjson")
        stages = profile(Path(tmp) / "lines.ndjson")
    base = next(s["cpu_seconds"] for s in stages if s["stage"] == "lines (cached)")
    for s in stages:
        s["us_per_line"] = round((s["cpu_seconds"] - base) / n * 1e6, 1)
    entry = {
        "lines": n,
        "events": str(args.events) if args.events else "simulated (30,000 requests)",
        "cpus": os.cpu_count(),
        "load_1m": os.getloadavg()[0],
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "stages": stages,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(entry, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
