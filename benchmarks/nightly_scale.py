"""The nightly pipeline at production size: every sie_daily step on a simulated 1M / 10M-impression day.

    python benchmarks/nightly_scale.py --impressions 1000000            # one 1M-impression day
    python benchmarks/nightly_scale.py --impressions 10000000 --window-days 1
    python benchmarks/nightly_scale.py --impressions 1000000 --backfill 7   # 7 days, one process

Each step runs in its own process, as an Airflow task does (``sie.steps.daily``; one process
per importance method, like the DAG's mapped ``score`` tasks). A sampler thread reads the RSS
of the step's process tree every second and splits it into Python and JVM (Spark's driver).
The earlier days of the training window are simulated and ingested first (recorded as
``setup`` rows). Results: ``benchmarks/results/nightly_scale.json`` (one entry per
``--label``, replaced on rerun); docs/PERFORMANCE.md shows them.

``--backfill N`` instead runs N consecutive days through ``--steps`` (default ingest,
validate, train and score) in ONE process (one Spark session, one Python heap), so a leak shows as memory that grows
from day to day.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "nightly_scale.json"
TARGETS = {
    "ingest_10m_seconds": 300,
    "ingest_vs_duckdb_ratio": 1.5,
    "dag_1m_seconds": 900,
    "through_score_10m_seconds": 7200,
    "peak_rss_10m_bytes": 12 << 30,
}


class RssSampler:
    """Peak and timeline of RSS (Python vs JVM) of a process tree, sampled every ``period`` s."""

    def __init__(self, pid: int, period: float = 1.0) -> None:
        self.root, self.period = psutil.Process(pid), period
        self.peak = {"python": 0, "jvm": 0, "total": 0}
        self.timeline: list[tuple[float, int, int]] = []
        self.loads: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = time.monotonic()

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> tuple[int, int]:
        py = jvm = 0
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0, 0
        for p in procs:
            try:
                rss = p.memory_info().rss
                name = p.name()
            except psutil.Error:
                continue
            if name == "java":
                jvm += rss
            else:
                py += rss
        return py, jvm

    @property
    def mean_load(self) -> float:
        """Mean 1-minute load average while sampled: above the core count, other work shared the CPUs."""
        return round(sum(self.loads) / len(self.loads), 2) if self.loads else 0.0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.loads.append(os.getloadavg()[0])
            py, jvm = self.sample()
            self.timeline.append((round(time.monotonic() - self._t0, 1), py, jvm))
            for key, value in (("python", py), ("jvm", jvm), ("total", py + jvm)):
                self.peak[key] = max(self.peak[key], value)
            self._stop.wait(self.period)


def scale_config(impressions: int, window_days: int, warehouse: Path, methods: list[str] | None) -> dict:
    """Config overrides of a day of ``impressions``: the simulate benchmark's world, users grown with traffic."""
    requests = impressions // 10
    cfg = {
        "warehouse": str(warehouse),
        "simulate": {
            "requests_per_day": requests,
            "impressions_per_request": 10,
            "n_items": 20000,
            "n_intents": 3000,
            "n_users": max(3000, requests // 2),
        },
        "train": {"window_days": window_days},
        "validate": {"data_docs": False},
    }
    if methods:
        cfg["importance"] = {"methods": methods}
    return cfg


def step_main(name: str, ds: str, config_file: str, out_file: str, arg: str | None) -> None:
    """One step in this process (the child side): ``sie.steps.daily.<name>``; its result as JSON."""
    from sie.config import SieConfig
    from sie.log import setup
    from sie.steps import daily

    setup(target="stdout")
    cfg = SieConfig.load(config_file=config_file)
    if name == "duckdb_reference":  # benchmarks/ingest.py's SQL of the ingest rules, on the same raw day
        import ingest as reference

        reference.DS = ds
        result = reference.run_duckdb(cfg.warehouse_path, Path(out_file).parent / "duckdb-out", 2, "6GB")
    elif name == "score":
        result = daily.score(cfg, ds, arg)
    elif name == "validate_scores":
        result = daily.validate(cfg, ds, "importance_scores")
    elif name == "vacuum":
        result = daily.vacuum(cfg)
    else:
        result = getattr(daily, name)(cfg, ds)
    Path(out_file).write_text(json.dumps(result, default=str))


def as_result(value) -> dict:
    """A step's result as a dict (a step that returns a value, e.g. the report's path: {"value": ...})."""
    return value if isinstance(value, dict) else {"value": value}


def run_step(name: str, ds: str, config_file: Path, work: Path, arg: str | None = None) -> dict:
    """Run one step in a child process; wall time, peak RSS (Python / JVM) and its result."""
    out_file = work / f"{name}-{arg or ''}-{ds}.json"
    event_log = work / "spark-events" / f"{name}-{ds}"
    env = os.environ | ({"SIE_SPARK_EVENT_LOG": str(event_log)} if name == "ingest" else {})
    cmd = [sys.executable, __file__, "_step", name, ds, str(config_file), str(out_file)] + ([arg] if arg else [])
    log_file = work / f"{name}-{arg or ''}-{ds}.log"
    t0 = time.monotonic()
    with (
        open(log_file, "w") as log,
        subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env) as proc,
    ):
        with RssSampler(proc.pid) as rss:
            rc = proc.wait()
    seconds = time.monotonic() - t0
    label = f"{name}[{arg}]" if arg else name
    if rc != 0:  # recorded, not raised: one long run should say as much as it can
        errors = [line for line in log_file.read_text().splitlines() if "Error" in line or "error" in line]
        print(f"  {label:28s} FAILED (rc={rc}) after {seconds:.0f} s; log {log_file}", flush=True)
        result = {"failed": True, "rc": rc, "log": str(log_file), "errors": errors[-5:]}
    else:
        result = as_result(json.loads(out_file.read_text()))
    print(
        f"  {label:28s} {seconds:8.1f} s  peak python {rss.peak['python'] / 2**30:5.2f} GiB"
        f"  jvm {rss.peak['jvm'] / 2**30:5.2f} GiB",
        flush=True,
    )
    profile = {"spark_stages": spark_stage_profile(event_log)} if event_log.is_dir() else {}
    record = profile | {
        "step": label,
        "ds": ds,
        "seconds": round(seconds, 2),
        "peak_rss_python": rss.peak["python"],
        "peak_rss_jvm": rss.peak["jvm"],
        "peak_rss_total": rss.peak["total"],
        "mean_load": rss.mean_load,
        "result": result,
    }
    with open(work / "steps.jsonl", "a") as handle:  # a stopped run keeps its finished steps (--assemble)
        handle.write(json.dumps(record) + "\n")
    return record


def spark_stage_profile(event_log_dir: Path) -> list[dict]:
    """Where a Spark step's time goes, from its event log: per job description (sie.ingest names
    each of its steps), the jobs' wall seconds, stages, the most tasks one stage ran (a stage of
    1 task uses 1 core), summed task run / CPU seconds and shuffle MiB written."""
    job_of_stage, jobs, out = {}, {}, {}
    for path in sorted(event_log_dir.rglob("events_*")):  # rolling (v2) logs: a folder of events_N_* files
        for line in _event_log_text(path).splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:  # a log still being written ends mid-line
                continue
            kind = event["Event"]
            if kind == "SparkListenerJobStart":
                step = event["Properties"].get("spark.job.description", "?").split(": ", 1)[-1]
                jobs[event["Job ID"]] = (step, event["Submission Time"])
                for stage in event["Stage IDs"]:
                    job_of_stage[stage] = event["Job ID"]
            elif kind == "SparkListenerJobEnd" and event["Job ID"] in jobs:
                step, t0 = jobs[event["Job ID"]]
                row = out.setdefault(step, _profile_row(step))
                row["job_seconds"] += (event["Completion Time"] - t0) / 1000
                row["jobs"] += 1
            elif kind == "SparkListenerStageCompleted":
                info = event["Stage Info"]
                step = jobs.get(job_of_stage.get(info["Stage ID"]), ("?", 0))[0]
                row = out.setdefault(step, _profile_row(step))
                row["stages"] += 1
                row["max_stage_tasks"] = max(row["max_stage_tasks"], info["Number of Tasks"])
            elif kind == "SparkListenerTaskEnd" and event.get("Task Metrics"):
                step = jobs.get(job_of_stage.get(event["Stage ID"]), ("?", 0))[0]
                row, m = out.setdefault(step, _profile_row(step)), event["Task Metrics"]
                row["task_run_seconds"] += m["Executor Run Time"] / 1000
                row["task_cpu_seconds"] += m["Executor CPU Time"] / 1e9
                row["shuffle_write_mib"] += m["Shuffle Write Metrics"]["Shuffle Bytes Written"] / 2**20
    return [{k: round(v, 1) if isinstance(v, float) else v for k, v in r.items()} for r in out.values()]


def _profile_row(step: str) -> dict:
    return {
        "step": step,
        "jobs": 0,
        "job_seconds": 0.0,
        "stages": 0,
        "max_stage_tasks": 0,
        "task_run_seconds": 0.0,
        "task_cpu_seconds": 0.0,
        "shuffle_write_mib": 0.0,
    }


def _event_log_text(path: Path) -> str:
    if path.suffix != ".zstd":
        return path.read_text()
    import zstandard  # Spark compresses event logs by default (sie.spark turns it off)

    with open(path, "rb") as handle:
        return zstandard.ZstdDecompressor().stream_reader(handle).read().decode(errors="replace")


def count_rows(warehouse: Path, ds: str, window_days: int) -> dict[str, int]:
    """Rows each step works on: the day's samples, the window's samples (visible files only)."""
    import pyarrow.parquet as pq

    from sie.store import Warehouse

    wh = Warehouse(warehouse)

    def samples(days: list[str]) -> int:
        return sum(pq.ParquetFile(f.path).metadata.num_rows for f in wh.data_files("samples", {"ds": days}))

    first = date.fromisoformat(ds)
    window = [(first - timedelta(days=i)).isoformat() for i in range(window_days)]
    return {"day_samples": samples([ds]), "window_samples": samples(window)}


def rows_for(step: str, sim: dict, rows: dict[str, int]) -> int:
    if step == "simulate":
        return int(sim.get("impressions", 0))
    if step in ("ingest", "duckdb_reference"):
        return int(sim.get("query_lines", 0) + sim.get("event_lines", 0))
    if step == "validate":
        return rows["day_samples"]
    return rows["window_samples"]


def prepare_work(args: argparse.Namespace) -> tuple[Path, Path]:
    """The run's folder and its config file (written from the arguments)."""
    work = Path(args.work) / args.label
    work.mkdir(parents=True, exist_ok=True)
    config_file = work / "config.json"
    config_file.write_text(
        json.dumps(scale_config(args.impressions, args.window_days, work / "warehouse", args.methods))
    )
    return work, config_file


def day_run(args: argparse.Namespace) -> dict:
    """Setup days, then every DAG step on the measured day."""
    from sie.config import SieConfig

    work, config_file = prepare_work(args)
    cfg = SieConfig.load(config_file=str(config_file))
    last = date.fromisoformat(args.ds)
    setup_days = [(last - timedelta(days=i)).isoformat() for i in range(args.window_days - 1, 0, -1)]
    steps: list[dict] = []
    for day in setup_days:
        if (work / "warehouse" / "tables" / "samples" / f"ds={day}").is_dir():
            print(f"setup day {day}: already ingested", flush=True)
            continue
        print(f"setup day {day}", flush=True)
        for name in ("simulate", "ingest", "validate"):
            steps.append(run_step(name, day, config_file, work) | {"setup": True})
    print(f"measured day {args.ds}", flush=True)
    measured = []
    wanted = ["simulate", "ingest", "validate", "train", "score", "evaluate", "report"]
    for name in [s for s in wanted if not args.only or s in args.only]:
        if name == "score":
            measured += [run_step("score", args.ds, config_file, work, m) for m in cfg.importance.methods]
            measured.append(run_step("validate_scores", args.ds, config_file, work))
            continue
        measured.append(run_step(name, args.ds, config_file, work))
        if measured[-1]["result"].get("failed") and name in ("simulate", "ingest", "train"):
            break  # the steps after it have nothing to read
        if name == "ingest" and args.duckdb:
            measured.append(run_step("duckdb_reference", args.ds, config_file, work) | {"reference": True})
    return summarise_day(args, cfg.importance.methods, work, steps, measured)


def assemble_day(args: argparse.Namespace) -> dict:
    """The summary of a run that was stopped: its finished steps, from ``steps.jsonl``."""
    from sie.config import SieConfig

    work = Path(args.work) / args.label
    records = [json.loads(line) for line in (work / "steps.jsonl").read_text().splitlines()]
    for record in records:
        record["result"] = as_result(record["result"])
    methods = SieConfig.load(config_file=str(work / "config.json")).importance.methods
    setup = [r | {"setup": True} for r in records if r["ds"] != args.ds]
    return summarise_day(args, methods, work, setup, [r for r in records if r["ds"] == args.ds]) | {
        "assembled_from_finished_steps": True
    }


def summarise_day(args: argparse.Namespace, methods: list[str], work: Path, steps: list[dict], measured: list[dict]):
    sim_file = work / f"simulate--{args.ds}.json"  # (a day simulated by an earlier invocation)
    sim = json.loads(sim_file.read_text()) if sim_file.exists() else {}
    rows = count_rows(work / "warehouse", args.ds, args.window_days)
    for s in steps + measured:
        s["rows"] = rows_for(s["step"].split("[")[0], sim, rows)
        s["rows_per_s"] = round(s["rows"] / s["seconds"], 1) if s["seconds"] else None
    dag_steps = [s for s in measured if s["step"] not in ("simulate", "duckdb_reference")]
    through_score = [s for s in dag_steps if s["step"].split("[")[0] in ("ingest", "validate", "train", "score")]
    done = [s for s in measured if not s["result"].get("failed")]
    ingest = next((s for s in done if s["step"] == "ingest"), None)
    ref = next((s for s in done if s["step"] == "duckdb_reference"), None)
    if ingest and ref:  # the ingest call's own wall time (JVM start excluded) against DuckDB's query time
        ratio = {"ingest_over_duckdb": round(ingest["result"]["seconds"] / ref["result"]["seconds"], 2)}
    else:
        ratio = {}
    return ratio | {
        "impressions": args.impressions,
        "window_days": args.window_days,
        "methods": methods,
        "rows": rows,
        "setup": steps,
        "steps": measured,
        "failed_steps": [s["step"] for s in measured if s["result"].get("failed")],
        "dag_seconds": round(sum(s["seconds"] for s in dag_steps), 1),
        "through_score_seconds": round(sum(s["seconds"] for s in through_score), 1),
        "peak_rss_total": max(s["peak_rss_total"] for s in dag_steps),
        "peak_rss_python": max(s["peak_rss_python"] for s in dag_steps),
        "peak_rss_jvm": max(s["peak_rss_jvm"] for s in dag_steps),
    }


def backfill_main(ds_list: list[str], config_file: str, out_file: str, steps: list[str]) -> None:
    """The backfill's child: every day through ``steps`` (of ingest, validate, train, score) in this
    one process, a mark per day."""
    from sie.config import SieConfig
    from sie.log import setup
    from sie.steps import daily

    setup(target="stdout")
    cfg = SieConfig.load(config_file=config_file)
    marks = []
    for ds in ds_list:
        t0 = time.monotonic()
        daily.simulate(cfg, ds)
        t_sim = time.monotonic()
        for step in steps:
            if step == "score":
                daily.score_all(cfg, ds, cfg.importance.methods)
            else:
                getattr(daily, step)(cfg, ds)
        end = time.monotonic()
        marks.append({"ds": ds, "start": t0, "pipeline_start": t_sim, "end": end} | live_heaps())
        Path(out_file).write_text(json.dumps(marks))  # after every day: a stopped backfill keeps its days
        print(f"BACKFILL-DAY-DONE {ds}", flush=True)


def live_heaps() -> dict:
    """Memory still reachable after a full collection, in bytes: RSS can stay at a high-water mark
    (a JVM keeps the heap it grew into), the live heap grows only with what is kept."""
    import gc

    from sie.spark import get_spark

    gc.collect()
    jvm = get_spark()._jvm
    jvm.java.lang.System.gc()
    runtime = jvm.java.lang.Runtime.getRuntime()
    return {
        "live_heap_jvm": runtime.totalMemory() - runtime.freeMemory(),
        "rss_python_after_gc": psutil.Process().memory_info().rss,
    }


def backfill_run(args: argparse.Namespace) -> dict:
    work, config_file = prepare_work(args)
    first = date.fromisoformat(args.ds)
    days = [(first + timedelta(days=i)).isoformat() for i in range(args.backfill)]
    out_file = work / "backfill-marks.json"
    out_file.unlink(missing_ok=True)
    cmd = [sys.executable, __file__, "_backfill", ",".join(days), str(config_file), str(out_file), args.steps]
    log_file = work / "backfill.log"
    t0 = time.monotonic()
    with open(log_file, "w") as log, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT) as proc:
        with RssSampler(proc.pid) as rss:
            start = time.monotonic()
            try:
                rc = proc.wait(timeout=args.deadline_minutes * 60 if args.deadline_minutes else None)
            except subprocess.TimeoutExpired:  # recorded as stopped: the finished days still count
                proc.kill()
                rc = "deadline"
    marks = json.loads(out_file.read_text()) if out_file.exists() else []
    if rc != 0 and not marks:
        raise RuntimeError(f"backfill failed (rc={rc}); log {log_file}:\n{log_file.read_text()[-3000:]}")
    # the child's monotonic clock is the same clock (same host): day windows on the sampler timeline
    per_day = []
    for m in marks:
        lo, hi = m["pipeline_start"] - start, m["end"] - start
        points = [(py, jvm) for t, py, jvm in rss.timeline if lo <= t <= hi]
        per_day.append(
            {
                "ds": m["ds"],
                "seconds": round(m["end"] - m["pipeline_start"], 1),
                "simulate_seconds": round(m["pipeline_start"] - m["start"], 1),
                "peak_rss_python": max(p for p, _ in points),
                "peak_rss_jvm": max(j for _, j in points),
                "end_rss_python": points[-1][0],
                "end_rss_jvm": points[-1][1],
            }
            | {k: m[k] for k in ("live_heap_jvm", "rss_python_after_gc") if k in m}
        )
    return {
        "mean_load": rss.mean_load,
        "impressions_per_day": args.impressions,
        "days": args.backfill,
        "days_done": len(per_day),
        "steps": args.steps.split(","),
        "exit": rc,
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "methods": SieConfig_methods(config_file),
        "seconds": round(time.monotonic() - t0, 1),
        "per_day": per_day,
        "flatness": flatness(per_day),
        # from the first day whose training window is full (earlier days train on fewer days)
        "flatness_full_window": flatness(per_day[args.window_days - 1 :]) if len(per_day) >= args.window_days else None,
        "timeline": rss.timeline[:: max(1, len(rss.timeline) // 2000)],
    }


def SieConfig_methods(config_file: Path) -> list[str]:  # noqa: N802 (reads like the class it asks)
    from sie.config import SieConfig

    return SieConfig.load(config_file=str(config_file)).importance.methods


def flatness(per_day: list[dict]) -> dict:
    """Day-7-vs-day-1 peak RSS growth per kind; flat = within 10 %."""
    out = {}
    for kind in ("python", "jvm"):
        first, last = per_day[0][f"peak_rss_{kind}"], per_day[-1][f"peak_rss_{kind}"]
        growth = (last - first) / first if first else 0.0
        out[kind] = {"day1": first, "last_day": last, "growth": round(growth, 4), "flat": abs(growth) <= 0.10}
    for kind, key in (("jvm_live_heap", "live_heap_jvm"), ("python_after_gc", "rss_python_after_gc")):
        if all(key in d for d in per_day):  # after a full collection at each day's end: what is kept
            first, last = per_day[0][key], per_day[-1][key]
            out[kind] = {"day1": first, "last_day": last, "growth": round((last - first) / first, 4)}
    return out


def machine() -> dict:
    import torch

    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "spark_driver_memory": os.environ.get("SIE_SPARK_DRIVER_MEMORY", "2g"),
    }


def save(label: str, entry: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"benchmark": "nightly_scale", "runs": {}}
    data["targets"] = TARGETS
    data["runs"][label] = entry
    RESULTS.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {RESULTS} [{label}]", flush=True)


def backfill_markdown(label: str, run: dict) -> list[str]:
    """A backfill's days: seconds, peak and end-of-day RSS, and the growth from day 1."""
    gib = 2**30
    out = [
        f"**{label}** ({run['days_done']} of {run['days']} days × {run['impressions_per_day']:,} impressions, "
        f"steps {', '.join(run['steps'])}, one process; started {run.get('started', '?')}, mean load {run['mean_load']})",
        "",
        "| day | seconds | peak RSS Python (GiB) | end RSS Python (GiB) | peak RSS JVM (GiB) | end RSS JVM (GiB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    live = all("live_heap_jvm" in d for d in run["per_day"])
    if live:
        out[2] += " JVM live heap after GC (GiB) |"
        out[3] += "---:|"
    for d in run["per_day"]:
        out.append(
            f"| {d['ds']} | {d['seconds']:.0f} | {d['peak_rss_python'] / gib:.2f} | {d['end_rss_python'] / gib:.2f} | "
            f"{d['peak_rss_jvm'] / gib:.2f} | {d['end_rss_jvm'] / gib:.2f} |"
            + (f" {d['live_heap_jvm'] / gib:.2f} |" if live else "")
        )
    f = run["flatness"]
    growth = (
        f"Peak growth day 1 → day {len(run['per_day'])}: Python {f['python']['growth']:+.1%}, "
        f"JVM {f['jvm']['growth']:+.1%} (flat = within 10 %)"
    )
    if "jvm_live_heap" in f:
        growth += f"; after a full collection: JVM live heap {f['jvm_live_heap']['growth']:+.1%}"
    if "python_after_gc" in f:
        growth += f", Python RSS {f['python_after_gc']['growth']:+.1%}"
    return out + ["", growth, ""]


def markdown(data: dict) -> str:
    """The results as the tables docs/PERFORMANCE.md shows (``--table``)."""
    gib = 2**30
    out = []
    for label, run in data["runs"].items():
        if "per_day" in run:  # (a backfill also names its steps)
            out += backfill_markdown(label, run)
        elif "steps" in run:
            out += [
                f"**{label}** ({run['impressions']:,} impressions, window {run['window_days']} day(s), "
                f"{run['rows']['window_samples']:,} window samples; started {run['started']})",
                "",
                "| step | seconds | rows | rows/s | peak RSS Python (GiB) | peak RSS JVM (GiB) | load |",
                "|---|---:|---:|---:|---:|---:|---:|",
            ]
            for st in run.get("setup", []) + run["steps"]:
                name = st["step"] + (f" (setup, {st['ds']})" if st.get("setup") else "")
                stopped = st["result"].get("failed")
                rate = "stopped" if stopped else f"{st['rows_per_s'] or 0:,.0f}"
                out.append(
                    f"| {name} | {st['seconds']:.1f}{' (stopped)' if stopped else ''} | {st['rows']:,} | {rate} | "
                    f"{st['peak_rss_python'] / gib:.2f} | {st['peak_rss_jvm'] / gib:.2f} | {st.get('mean_load') or 'n/a'} |"
                )
            out += [
                "",
                f"DAG steps (simulate excluded): {run['dag_seconds']:,.0f} s; ingest → score: "
                f"{run['through_score_seconds']:,.0f} s; peak RSS {run['peak_rss_total'] / gib:.2f} GiB "
                f"(Python {run['peak_rss_python'] / gib:.2f}, JVM {run['peak_rss_jvm'] / gib:.2f})"
                + (f"; ingest / DuckDB reference: {run['ingest_over_duckdb']}×" if "ingest_over_duckdb" in run else ""),
                "",
            ]

    return "\n".join(out)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_step":
        step_main(*sys.argv[2:6], sys.argv[6] if len(sys.argv) > 6 else None)
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_backfill":
        backfill_main(sys.argv[2].split(","), sys.argv[3], sys.argv[4], sys.argv[5].split(","))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--impressions", type=int, default=1_000_000)
    p.add_argument("--window-days", type=int, default=3, help="train.window_days (earlier days are setup)")
    p.add_argument("--ds", default="2026-11-10", help="the measured day (backfill: the first day)")
    p.add_argument("--methods", type=lambda s: s.split(","), help="default: the config's default methods")
    p.add_argument("--only", type=lambda s: s.split(","), help="measured steps to run (default: all)")
    p.add_argument("--duckdb", action="store_true", help="also run the DuckDB reference ingest on the day")
    p.add_argument("--backfill", type=int, default=0, help="N days in one process instead (RSS flatness)")
    p.add_argument("--steps", default="ingest,validate,train,score", help="backfill: the steps run per day")
    p.add_argument("--deadline-minutes", type=float, default=0, help="backfill: stop after this long (0 = none)")
    p.add_argument("--label", help="result key (default: derived from the arguments)")
    p.add_argument("--recount", metavar="LABEL", help="recount the rows of a saved run (with --ds)")
    p.add_argument("--assemble", action="store_true", help="record a stopped run's finished steps")
    p.add_argument("--table", action="store_true", help="print the results as markdown tables and exit")
    p.add_argument("--work", default="/tmp/sie_nightly_scale", help="warehouse and logs (deleted never)")
    args = p.parse_args()
    if args.table:
        print(markdown(json.loads(RESULTS.read_text())))
        return
    if args.recount:  # a saved run's row counts, from the visible files (runs saved before counting did so)
        data = json.loads(RESULTS.read_text())
        run = data["runs"][args.recount]
        rows = count_rows(Path(args.work) / args.recount / "warehouse", args.ds, run["window_days"])
        sim = json.loads((Path(args.work) / args.recount / f"simulate--{args.ds}.json").read_text())
        run["rows"] = rows
        for st in run["setup"] + run["steps"]:
            st["rows"] = rows_for(st["step"].split("[")[0], sim, rows)
            st["rows_per_s"] = round(st["rows"] / st["seconds"], 1) if st["seconds"] else None
        RESULTS.write_text(json.dumps(data, indent=1) + "\n")
        return
    args.label = args.label or (
        f"backfill-{args.backfill}x{args.impressions}" if args.backfill else f"day-{args.impressions}"
    )
    started = datetime.now(UTC).isoformat(timespec="seconds")
    entry = backfill_run(args) if args.backfill else assemble_day(args) if args.assemble else day_run(args)
    save(label=args.label, entry=entry | {"started": started, "machine": machine(), "argv": sys.argv[1:]})


if __name__ == "__main__":
    main()
