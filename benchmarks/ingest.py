"""Ingest throughput: Spark (local[2]) vs the same transformation in DuckDB.

    .venv/bin/python benchmarks/ingest.py --sizes 1000000,10000000 \
        --out benchmarks/results/ingest.json [--workdir /tmp/sie-bench-ingest]

For each size N a day of ~N raw UBI event lines (plus its query lines) is landed as
gzip NDJSON chunks: one simulated day (the built-in simulator) is replicated with
per-copy query/client/session ids until N events. Then

* Spark: ``sie.ingest.ingest_day`` on ``local[2]`` (wall time of the call: parse,
  quarantine, dedup, join, sessionise, features, write five tables; the JVM start and a
  small warm-up day are excluded);
* DuckDB: the same rules written in SQL (``DUCKDB_SQL`` below: parse, reason codes,
  window, dedup, 0-based producers, hit-list bound, unknown query ids, samples with
  labels, sessions, bot flags, tokens) on 2 threads, writing the same tables as
  Parquet — the single-machine reference.

Row counts of both engines are recorded side by side (they must agree). Results go to
``--out`` as JSON; the ratio is DuckDB throughput / Spark throughput.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DS = "2025-01-15"
LINES_PER_FILE = 500_000


# ---- data ------------------------------------------------------------------------------
def base_day(workdir: Path, requests: int) -> Path:
    """One simulated day (cached), the template the sizes are replicated from."""
    from sie.config import SieConfig
    from sie.simulate import simulate_day

    root = workdir / f"base-{requests}"
    marker = root / "DONE"
    if not marker.exists():
        shutil.rmtree(root, ignore_errors=True)
        cfg = SieConfig.load({"warehouse": str(root), "simulate": {"requests_per_day": requests}})
        simulate_day(cfg, DS)
        marker.write_text("ok")
    return root


def _read_gz_lines(folder: Path) -> list[str]:
    out: list[str] = []
    for f in sorted(folder.glob("*.gz")):
        with gzip.open(f, "rt") as fh:
            out.extend(line.rstrip("\n") for line in fh if line.strip())
    return out


def land(base: Path, root: Path, n_events: int) -> dict:
    """Land ~n_events event lines under ``root`` (replicas of the base day with distinct ids)."""
    marker = root / "LANDED.json"
    if marker.exists():
        return json.loads(marker.read_text())
    shutil.rmtree(root, ignore_errors=True)
    q_base = _read_gz_lines(base / "raw" / "ubi_queries" / f"ds={DS}")
    e_base = _read_gz_lines(base / "raw" / "ubi_events" / f"ds={DS}")
    copies = max(1, -(-n_events // len(e_base)))
    counts = {}
    for source, lines in (("ubi_queries", q_base), ("ubi_events", e_base)):
        folder = root / "raw" / source / f"ds={DS}"
        folder.mkdir(parents=True)
        written, part, fh, in_file = 0, 0, None, 0
        limit = n_events if source == "ubi_events" else None
        for k in range(copies):
            tag = f"{k:04d}"
            for line in lines:
                if limit is not None and written >= limit:
                    break
                if fh is None or in_file >= LINES_PER_FILE:
                    if fh:
                        fh.close()
                    fh = gzip.open(folder / f"part-{part:05d}.ndjson.gz", "wt", compresslevel=1)
                    part, in_file = part + 1, 0
                line = (
                    line.replace('"query_id":"', f'"query_id":"{tag}-')
                    .replace('"client_id":"', f'"client_id":"{tag}-')
                    .replace('"session_id":"', f'"session_id":"{tag}-')
                )
                fh.write(line + "\n")
                written += 1
                in_file += 1
        if fh:
            fh.close()
        counts[source] = written
    (root / "raw" / "catalog").mkdir(parents=True, exist_ok=True)
    shutil.copy(base / "raw" / "catalog" / "catalog.parquet", root / "raw" / "catalog" / "catalog.parquet")
    info = {"copies": copies, "lines": counts, "bytes_gz": sum(p.stat().st_size for p in (root / "raw").rglob("*.gz"))}
    marker.write_text(json.dumps(info))
    return info


# ---- Spark -----------------------------------------------------------------------------
def run_spark(spark, root: Path) -> dict:
    from sie.config import SieConfig
    from sie.ingest import ingest_day

    cfg = SieConfig.load({"warehouse": str(root)})
    shutil.rmtree(root / "tables", ignore_errors=True)
    t = time.perf_counter()
    summary = ingest_day(cfg, DS, spark=spark)
    seconds = time.perf_counter() - t
    return {"seconds": round(seconds, 2), "rows": summary["rows"], "timings": summary["timings"], "summary": summary}


# ---- DuckDB ----------------------------------------------------------------------------
DUCKDB_SQL = r"""
CREATE OR REPLACE TEMP TABLE raw0 AS
SELECT filename, raw FROM read_csv({files}, columns={{'raw': 'VARCHAR'}}, header=false, delim=chr(1), quote='',
    escape='', filename=true, auto_detect=false, strict_mode=false, new_line='\n');
CREATE OR REPLACE TEMP TABLE lines AS
SELECT CASE WHEN filename LIKE '%/ubi_queries/%' THEN 'ubi_queries' ELSE 'ubi_events' END AS source,
       parse_filename(filename) AS file,
       rowid - min(rowid) OVER (PARTITION BY filename) + 1 AS line_no,
       coalesce(raw, '') AS raw
FROM raw0;
CREATE OR REPLACE TEMP TABLE p1 AS
WITH t AS (SELECT *, trim(raw, E' \t\r\n') AS line FROM lines),
o AS (SELECT *, line LIKE '{{%}}' AND json_valid(line) AND NOT regexp_matches(line, '\}}\s*\{{\s*"') AS is_obj FROM t),
d AS (SELECT *, CASE WHEN is_obj AND json_type(line, '$._source') = 'OBJECT'
                     THEN json_extract(line, '$._source')::VARCHAR ELSE line END AS doc FROM o),
x AS (SELECT *, CASE WHEN is_obj THEN json_extract_string(doc, ['$.application', '$.action_name', '$.query_id',
        '$.client_id', '$.session_id', '$.user_id', '$.timestamp', '$.user_query',
        '$.event_attributes.object.object_id', '$.event_attributes.object.description',
        '$.event_attributes.position.ordinal', '$.event_attributes.dwell_time', '$.index', '$.create',
        '$.event_attributes.session_id']) END AS f,
        CASE WHEN is_obj THEN json_extract(doc, '$.query_response_hit_ids') END AS hits_json FROM d),
y AS (SELECT source, file, line_no, raw, line, is_obj,
        nullif(trim(f[1]), '') AS application, lower(nullif(trim(f[2]), '')) AS action_name,
        nullif(trim(f[3]), '') AS query_id, nullif(trim(f[4]), '') AS client_id,
        coalesce(nullif(trim(f[5]), ''), nullif(trim(f[15]), '')) AS session_id, nullif(trim(f[6]), '') AS user_id,
        nullif(trim(f[7]), '') AS ts_raw, nullif(trim(f[8]), '') AS query_text, nullif(trim(f[9]), '') AS item_id,
        nullif(trim(f[10]), '') AS item_description, nullif(trim(f[11]), '') AS ordinal_raw,
        try_cast(f[12] AS DOUBLE) AS dwell_time, coalesce(f[13], f[14]) IS NOT NULL AS has_action,
        hits_json, coalesce(json_array_length(hits_json), 0) AS n_hits FROM x),
z AS (SELECT *,
        CASE WHEN regexp_matches(ts_raw, '^-?[0-9]+(\.[0-9]*)?$') AND try_cast(ts_raw AS DOUBLE) BETWEEN 0 AND 1e14
             THEN make_timestamp(CAST(floor(try_cast(ts_raw AS DOUBLE)) AS BIGINT) * 1000)
             WHEN regexp_matches(ts_raw, '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}[T ][0-9]{{2}}:[0-9]{{2}}.*([Zz]|[+-][0-9]{{2}}(:?[0-9]{{2}})?)$')
             THEN try_cast(ts_raw AS TIMESTAMPTZ)::TIMESTAMP END AS event_ts,
        CASE WHEN try_cast(ordinal_raw AS DOUBLE) >= 0 AND try_cast(ordinal_raw AS DOUBLE) < 1e6
              AND try_cast(ordinal_raw AS DOUBLE) = floor(try_cast(ordinal_raw AS DOUBLE))
             THEN CAST(try_cast(ordinal_raw AS DOUBLE) AS INTEGER) END AS ordinal
      FROM y)
SELECT *,
  CASE WHEN line = '' THEN 'blank'
       WHEN is_obj AND has_action AND ts_raw IS NULL AND action_name IS NULL AND query_id IS NULL THEN 'bulk_action'
       ELSE 'record' END AS kind,
  source = 'ubi_events' AND action_name IN ('impression', 'click', 'add_to_cart', 'purchase') AS ranking,
  source = 'ubi_events' AND action_name IN ('click', 'add_to_cart', 'purchase') AS interaction,
  sha256(line) AS dedup_key
FROM z;
CREATE OR REPLACE TEMP TABLE p2 AS
SELECT *, CASE WHEN kind = 'record' THEN
  CASE WHEN NOT is_obj THEN 'invalid_json'
       WHEN ts_raw IS NULL THEN 'missing_timestamp'
       WHEN source = 'ubi_events' AND action_name IS NULL THEN 'missing_action_name'
       WHEN (ranking OR source = 'ubi_queries') AND query_id IS NULL THEN 'missing_query_id'
       WHEN source = 'ubi_queries' AND query_text IS NULL THEN 'missing_user_query'
       WHEN ranking AND client_id IS NULL THEN 'missing_client_id'
       WHEN ranking AND item_id IS NULL THEN 'missing_object_id'
       WHEN ranking AND ordinal_raw IS NULL THEN 'missing_position'
       WHEN event_ts IS NULL THEN 'bad_timestamp'
       WHEN ranking AND ordinal IS NULL THEN 'bad_position'
       WHEN NOT (event_ts >= TIMESTAMP '{start}' AND event_ts < TIMESTAMP '{end}') THEN 'out_of_window'
  END END AS reason1
FROM p1;
CREATE OR REPLACE TEMP TABLE p3 AS
SELECT *, CASE WHEN kind = 'record' AND reason1 IS NULL
               THEN row_number() OVER (PARTITION BY source, dedup_key ORDER BY file, line_no) END AS dup_rank
FROM p2;
CREATE OR REPLACE TEMP TABLE app_base AS
SELECT application, avg(CASE WHEN m = 0 THEN 1.0 ELSE 0.0 END) > 0.5 AS zero_based FROM (
  SELECT application, query_id, min(ordinal) AS m FROM p3
  WHERE dup_rank = 1 AND source = 'ubi_events' AND action_name = 'impression' AND ordinal IS NOT NULL
  GROUP BY ALL) GROUP BY application;
CREATE OR REPLACE TEMP TABLE registry AS
WITH cand AS (SELECT * FROM p3 WHERE dup_rank = 1),
qf AS (SELECT query_id, arg_min(query_text, (event_ts, file, line_no)) AS q_text,
              arg_min(client_id, (event_ts, file, line_no)) AS q_client, max(n_hits) AS hits
       FROM cand WHERE source = 'ubi_queries' GROUP BY query_id),
hx AS (SELECT DISTINCT query_id, unnest(CAST(hits_json AS VARCHAR[])) AS item_id FROM cand
       WHERE source = 'ubi_queries' AND n_hits > 0),
imp AS (SELECT c.query_id, c.item_id, c.ordinal - CASE WHEN a.zero_based THEN 0 ELSE 1 END + 1 AS pos
        FROM cand c LEFT JOIN app_base a ON c.application IS NOT DISTINCT FROM a.application
        WHERE c.source = 'ubi_events' AND c.action_name = 'impression'),
iq AS (SELECT i.query_id, count(*) AS imp_items, count(hx.item_id) AS covered
       FROM (SELECT DISTINCT imp.query_id, imp.item_id FROM imp JOIN qf USING (query_id)
             WHERE imp.pos BETWEEN 1 AND qf.hits) i
       LEFT JOIN hx USING (query_id, item_id) GROUP BY i.query_id),
known AS (SELECT query_id FROM qf UNION SELECT query_id FROM imp)
SELECT k.query_id, q_text, q_client,
       CASE WHEN coalesce(imp_items > 0 AND covered = imp_items, false) THEN coalesce(hits, 0) ELSE 0 END AS hits
FROM known k LEFT JOIN qf USING (query_id) LEFT JOIN iq USING (query_id);
CREATE OR REPLACE TEMP TABLE records AS
WITH j AS (
  SELECT p3.*, r.q_text, r.q_client, coalesce(r.hits, 0) AS hits, r.query_id IS NOT NULL AS known,
         ordinal - CASE WHEN a.zero_based THEN 0 ELSE 1 END + 1 AS pos
  FROM p3 LEFT JOIN registry r USING (query_id) LEFT JOIN app_base a ON p3.application IS NOT DISTINCT FROM a.application)
SELECT *, coalesce(reason1, CASE WHEN dup_rank IS NOT NULL THEN
    CASE WHEN source = 'ubi_queries' AND NOT (query_text IS NOT DISTINCT FROM q_text AND client_id IS NOT DISTINCT FROM q_client)
         THEN 'duplicate_query_id'
         WHEN ranking AND pos < 1 THEN 'bad_position'
         WHEN ranking AND hits > 0 AND pos > hits THEN 'bad_position'
         WHEN interaction AND NOT known THEN 'unknown_query_id' END END) AS reason,
  CASE WHEN pos >= 1 THEN pos END AS position
FROM j;
CREATE OR REPLACE TEMP TABLE events AS
SELECT substr(dedup_key, 1, 16) AS event_id, 'ingest-{ds}' AS run_id, application, action_name, query_id, client_id,
       session_id, user_id, item_id, position, event_ts, dwell_time, query_text, file, line_no, item_description
FROM records WHERE kind = 'record' AND reason IS NULL AND dup_rank = 1 AND source = 'ubi_events';
CREATE OR REPLACE TEMP TABLE queries AS
SELECT query_id, client_id, query_text, event_ts AS request_ts, application, file, line_no
FROM records WHERE kind = 'record' AND reason IS NULL AND dup_rank = 1 AND source = 'ubi_queries';
CREATE OR REPLACE TEMP TABLE quarantine AS
SELECT 'ingest-{ds}' AS run_id, source, file, line_no, reason, raw FROM records WHERE reason IS NOT NULL;
CREATE OR REPLACE TEMP TABLE samples AS
WITH imp AS (
  SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY query_id, item_id ORDER BY event_ts, position, event_id) AS rn
                 FROM events WHERE action_name = 'impression') WHERE rn = 1),
inter AS (
  SELECT query_id, item_id, max((action_name = 'click')::INT) AS click, max((action_name = 'add_to_cart')::INT) AS atc,
         max((action_name = 'purchase')::INT) AS purchase,
         max(CASE WHEN action_name = 'click' THEN dwell_time END) AS dwell
  FROM events WHERE action_name IN ('click', 'add_to_cart', 'purchase') GROUP BY ALL),
imp_req AS (SELECT query_id, min(event_ts) AS imp_ts, min(client_id) AS imp_client, min(query_text) AS imp_text,
                   min(application) AS imp_app FROM imp GROUP BY ALL),
q AS (SELECT query_id, min(request_ts) AS q_ts, arg_min(client_id, (request_ts, file, line_no)) AS q_client,
             arg_min(query_text, (request_ts, file, line_no)) AS q_text, arg_min(application, (request_ts, file, line_no)) AS q_app
      FROM queries GROUP BY ALL),
req0 AS (SELECT coalesce(q.query_id, imp_req.query_id) AS query_id, coalesce(q_ts, imp_ts) AS request_ts,
                coalesce(q_client, imp_client) AS client_id, coalesce(imp_text, q_text) AS query_text,
                coalesce(q_app, imp_app) AS application
         FROM q FULL OUTER JOIN imp_req USING (query_id)),
req1 AS (SELECT *, coalesce(client_id, 'query:' || query_id) AS ck FROM req0),
req2 AS (SELECT *, CASE WHEN lag(request_ts) OVER w IS NULL
                          OR epoch_us(request_ts) - epoch_us(lag(request_ts) OVER w) > {gap_us} THEN 1 ELSE 0 END AS new_s
         FROM req1 WINDOW w AS (PARTITION BY ck ORDER BY request_ts, query_id)),
req3 AS (SELECT *, sum(new_s) OVER (PARTITION BY ck ORDER BY request_ts, query_id ROWS UNBOUNDED PRECEDING) AS sess FROM req2),
req AS (SELECT *, substr(sha256(ck || '|' || strftime(first(request_ts) OVER s, '%Y-%m-%dT%H:%M:%S.%f')), 1, 16) AS session_id,
               (row_number() OVER s - 1)::DOUBLE AS session_query_index,
               count(*) OVER (PARTITION BY ck) AS n_req
        FROM req3 WINDOW s AS (PARTITION BY ck, sess ORDER BY request_ts, query_id)),
clicks AS (SELECT client_id AS ck, count(*) AS n_clicks, sum((dwell_time < {fast})::INT) AS n_fast
           FROM events WHERE action_name = 'click' GROUP BY ALL),
cat AS (SELECT CAST(item_id AS VARCHAR) AS item_id, min(CAST(title AS VARCHAR)) AS title FROM read_parquet('{catalog}') GROUP BY ALL)
SELECT substr(sha256(imp.query_id || '|' || imp.item_id), 1, 16) AS sample_id, 'ingest-{ds}' AS run_id,
       imp.query_id, req.client_id, req.session_id, req.request_ts, req.query_text, imp.item_id,
       coalesce(cat.title, imp.item_description, '') AS item_title, imp.position,
       coalesce(inter.click, 0) AS click, coalesce(inter.atc, 0) AS add_to_cart, coalesce(inter.purchase, 0) AS purchase,
       CASE WHEN inter.purchase = 1 THEN 3 WHEN inter.atc = 1 THEN 2 WHEN inter.click = 1 THEN 1 ELSE 0 END AS label,
       inter.dwell AS dwell_time, {prior} AS item_prior_ctr, 0.0 AS item_log_impressions, 0.0 AS query_log_freq,
       req.session_query_index, req.application,
       regexp_extract_all(lower(coalesce(req.query_text, '')), '[a-z0-9]+') AS query_tokens,
       regexp_extract_all(lower(coalesce(cat.title, imp.item_description, '')), '[a-z0-9]+') AS item_tokens,
       (req.n_req > {max_req} OR (coalesce(n_clicks, 0) >= {min_clicks} AND coalesce(n_fast, 0) >= {share} * n_clicks))::INT AS suspected_bot
FROM imp LEFT JOIN req USING (query_id) LEFT JOIN inter USING (query_id, item_id) LEFT JOIN cat USING (item_id)
LEFT JOIN clicks ON clicks.ck = req.ck
WHERE req.query_text IS NOT NULL;
"""


def run_duckdb(root: Path, out: Path, threads: int, memory: str) -> dict:
    import duckdb

    from sie.config import SieConfig
    from sie.ingest.parse import day_window
    from sie.ingest.samples import DEFAULT_CTR_PRIOR

    ic = SieConfig.load().ingest
    start, end = day_window(DS, ic.lateness_hours)
    files = sorted(str(p) for p in (root / "raw").glob(f"ubi_*/ds={DS}/*.gz"))
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}; SET memory_limit = '{memory}'; SET preserve_insertion_order = true;")
    con.execute(f"SET temp_directory = '{out / '_tmp'}'")
    sql = DUCKDB_SQL.format(
        files="[" + ", ".join(f"'{f}'" for f in files) + "]",
        start=start.strftime("%Y-%m-%d %H:%M:%S"),
        end=end.strftime("%Y-%m-%d %H:%M:%S"),
        ds=DS,
        gap_us=ic.session_gap_minutes * 60 * 1_000_000,
        fast=ic.bot_fast_click_seconds,
        max_req=ic.bot_max_requests_per_day,
        min_clicks=ic.bot_min_clicks,
        share=ic.bot_fast_click_share,
        prior=DEFAULT_CTR_PRIOR,
        catalog=root / "raw" / "catalog" / "catalog.parquet",
    )
    t = time.perf_counter()
    con.execute(sql)
    rows = {}
    for table in ("events", "queries", "quarantine", "samples"):
        con.execute(f"COPY (SELECT * FROM {table}) TO '{out / table}.parquet' (FORMAT parquet, COMPRESSION zstd)")
        rows[table] = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    seconds = time.perf_counter() - t
    reasons = dict(con.execute("SELECT reason, count(*) FROM quarantine GROUP BY ALL ORDER BY 1").fetchall())
    dedup = con.execute("SELECT count(*) FROM records WHERE dup_rank > 1 AND reason IS NULL").fetchone()[0]
    con.close()
    shutil.rmtree(out, ignore_errors=True)
    return {
        "seconds": round(seconds, 2),
        "rows": rows,
        "quarantine_reasons": reasons,
        "dedup_dropped": dedup,
        "memory_limit": memory,
        "threads": threads,
    }


def week(start: str, days: int, workdir: Path, out: Path, bad_records: int) -> dict:
    """Simulate ``days`` days (default simulator settings, injected bad records) and ingest each."""
    from sie.config import SieConfig
    from sie.ingest import ingest_day
    from sie.simulate import simulate_days
    from sie.spark import get_spark
    from sie.validate import validate

    root = workdir / "week"
    shutil.rmtree(root, ignore_errors=True)
    cfg = SieConfig.load({"warehouse": str(root), "simulate": {"bad_records": bad_records}})
    sims = simulate_days(cfg, start, days)
    spark = get_spark(cfg)
    rows = []
    for sim in sims:
        s = ingest_day(cfg, sim["ds"], spark=spark)
        checks = {
            suite: validate(cfg, sim["ds"], suite, raise_on_failure=False)["success"]
            for suite in ("raw_events", "samples")
        }
        rows.append(
            {
                "ds": sim["ds"],
                "simulated": {
                    k: sim[k]
                    for k in ("requests", "impressions", "query_lines", "event_lines", "duplicate_lines", "bad_records")
                },
                "reconciliation": s["reconciliation"],
                "quarantine_reasons": s["quarantine_reasons"],
                "rows": s["rows"],
                "late_interactions": s["late_interactions"],
                "suspected_bot_samples": s["suspected_bot_samples"],
                "validation": checks,
                "seconds": s["seconds"],
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    result = {"start": start, "days": days, "bad_records_per_kind": bad_records, "per_day": rows}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,10000000", help="raw event lines per day, comma-separated")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ingest.json"))
    parser.add_argument("--workdir", default="/tmp/sie-bench-ingest")
    parser.add_argument("--base-requests", type=int, default=20_000, help="requests of the simulated template day")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (Spark runs local[THREADS])")
    parser.add_argument("--memory", default="6g", help="Spark driver memory and DuckDB memory limit")
    parser.add_argument(
        "--engines", default="spark,duckdb", help="engines to run; a size's stored result of an engine not run is kept"
    )
    parser.add_argument(
        "--duckdb-memory",
        help="DuckDB memory limit if not --memory (its in-memory tables for 10M events do not fit in 6g)",
    )
    parser.add_argument("--skip-duckdb", action="store_true", help="same as --engines spark")
    parser.add_argument(
        "--week", metavar="START", help="instead: simulate and ingest 7 days from START (reconciliation)"
    )
    args = parser.parse_args()
    if args.week:
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        week(args.week, 7, Path(args.workdir), Path(args.out).with_name("ingest_week.json"), bad_records=3)
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s]
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ["SIE_SPARK_DRIVER_MEMORY"] = args.memory
    os.environ["SIE_SPARK_MASTER"] = f"local[{args.threads}]"
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    from sie.config import SieConfig
    from sie.spark import get_spark

    engines = set(args.engines.split(","))
    if args.skip_duckdb:
        engines.discard("duckdb")
    if not engines or not engines <= {"spark", "duckdb"}:
        raise SystemExit(f"--engines: spark and/or duckdb, got {args.engines!r}")
    base = base_day(workdir, args.base_requests)
    out_path = Path(args.out)
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    runs = {r["events"]: r for r in results.get("runs", [])}
    spark_info = results.get("spark", {})
    if "spark" in engines:
        spark = get_spark(SieConfig.load({"ingest": {"spark_master": f"local[{args.threads}]"}}))
        t = time.perf_counter()
        land(base, workdir / "warmup", 20_000)
        run_spark(spark, workdir / "warmup")
        spark_info = {
            "master": f"local[{args.threads}]",
            "driver_memory": args.memory,
            "warmup_seconds": round(time.perf_counter() - t, 1),
        }

    def save(n: int, run: dict) -> None:
        runs[n] = run
        results.clear()
        results.update(
            {
                "benchmark": "ingest",
                "ds": DS,
                "machine": {
                    "cpus": os.cpu_count(),
                    "platform": platform.platform(),
                    "python": platform.python_version(),
                },
                "spark": spark_info,
                "duckdb": {"threads": args.threads, "memory_limit": "per run (duckdb.memory_limit)"},
                "note": "seconds = wall time of the ingest call (JVM start excluded); ratio = DuckDB throughput / Spark throughput",
                "runs": [runs[k] for k in sorted(runs)],
            }
        )
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(results, indent=2) + "\n")

    for n in sizes:
        t = time.perf_counter()
        info = land(base, workdir / f"day-{n}", n)
        land_s = time.perf_counter() - t
        raw = info["lines"]["ubi_events"] + info["lines"]["ubi_queries"]
        print(f"[{n}] landed {info} in {land_s:.0f}s", flush=True)
        previous = runs.get(n, {})
        run = {
            "events": n,
            "raw_lines": raw,
            "gzip_bytes": info["bytes_gz"],
            "files": -(-info["lines"]["ubi_events"] // LINES_PER_FILE)
            + -(-info["lines"]["ubi_queries"] // LINES_PER_FILE),
        }
        if "spark" in engines:
            sp = run_spark(spark, workdir / f"day-{n}")
            print(f"[{n}] spark {sp['seconds']}s {sp['rows']} {sp['timings']}", flush=True)
            run["spark"] = {
                "seconds": sp["seconds"],
                "raw_lines_per_s": round(raw / sp["seconds"]),
                "rows": sp["rows"],
                "timings": sp["timings"],
                "quarantine_reasons": sp["summary"]["quarantine_reasons"],
                "dedup_dropped": sp["summary"]["dedup_dropped"],
            }
            save(n, run)  # kept even if the DuckDB reference fails below
        elif "spark" in previous:
            run["spark"] = previous["spark"]
        if "duckdb" in engines:
            memory = (args.duckdb_memory or args.memory).upper() + "B"
            dd = run_duckdb(workdir / f"day-{n}", workdir / f"duck-{n}", args.threads, memory)
            print(f"[{n}] duckdb {dd['seconds']}s {dd['rows']}", flush=True)
            run["duckdb"] = {**dd, "raw_lines_per_s": round(raw / dd["seconds"])}
        elif "duckdb" in previous:
            run["duckdb"] = previous["duckdb"]
        if "spark" in run and "duckdb" in run:
            sp_s, dd = run["spark"], run["duckdb"]
            run["ratio_duckdb_over_spark"] = round(sp_s["seconds"] / dd["seconds"], 2)
            run["same_row_counts"] = all(dd["rows"][t] == sp_s["rows"][t] for t in dd["rows"])
        save(n, run)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
