"""Fault harness: bad bytes, kills, concurrent writers and readers, `sie sql` writes.

    .venv/bin/python benchmarks/faults.py [--fast] [--out benchmarks/results/faults.json] [--workdir DIR]

Replays every fault of issue 11 against a small simulated warehouse and writes one JSON:

* ``bad_inputs``: a landed day holding one file per bad-input kind (invalid UTF-8, NUL, BOM,
  truncated gzip, a non-gzip ``.gz``, odd file names, non-string ids, non-finite numbers,
  duplicate keys, stray CRs, a mixed bulk export, ...) plus good records, ingested once: each
  kind is *handled* when its lines end where expected (the expected reason, or accepted);
  ``lines_lost`` counts raw lines (counted here from the bytes) that are in no table, and every
  quarantined line's ``raw_bytes`` is compared with the bytes landed.
* ``kills``: ``sie ingest`` killed (SIGKILL) at every commit point, and ingest / train /
  score / evaluate killed at random times; after each kill the visible tables must equal
  those before it, and a rerun must equal a clean run.
* ``writers``: N processes x M commits to different partitions of one table (failures, files
  left outside the log); two ingests of one day started together (one clear outcome).
* ``readers``: reads of a day's five tables while it is republished (missing or partial).
* ``sql_writes``: statements that would write or escape the warehouse; each must be refused.

``--fast`` (the test suite runs it, about two minutes) skips the kills and the two ingests
(JVM and torch starts dominate them; tests/test_ingest_sim.py and tests/test_ingest_faults.py
kill and fail ingests themselves) and runs smaller writer and reader stress.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing as mp
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DS = "2026-11-20"
SIE = str(Path(sys.executable).parent / "sie")
# a small world: every step takes seconds
SETTINGS = [
    "simulate.requests_per_day=150",
    "simulate.n_items=120",
    "simulate.n_users=60",
    "train.epochs=2",
    "train.window_days=2",
    "train.vocab_size=256",
    "train.embedding_dim=8",
    "train.hidden_dim=16",
    "importance.methods=loss,random",
    "evaluate.keep_ratios=0.5",
]


# ---- bad inputs --------------------------------------------------------------------------

TS = f"{DS}T10:00:00Z"


def _doc(**fields) -> bytes:
    return json.dumps(fields).encode()


def _impression(qid: str, item: str = "i1", **extra) -> dict:
    doc = {
        "action_name": "impression",
        "query_id": qid,
        "client_id": "c1",
        "timestamp": TS,
        "event_attributes": {"object": {"object_id": item}, "position": {"ordinal": 1}},
    }
    doc.update(extra)
    return doc


def _query(qid: str) -> bytes:
    return _doc(query_id=qid, user_query="lamp", client_id="c1", timestamp=TS)


# kind -> (source folder, file name, file bytes, {line number: expected reason or "accepted"});
# line numbers are 1-based within the file; "*" applies to every non-blank line.
def bad_input_kinds() -> dict[str, tuple[str, str, bytes, dict]]:
    imp = lambda q, **e: json.dumps(_impression(q, **e)).encode()  # noqa: E731
    good = imp("qg")
    raw_gz = gzip.compress(b"\n".join([imp("qz1"), imp("qz2"), imp("qz3")] * 200) + b"\n")
    bulk = b"\n".join(
        [
            b'{"index":{"_index":"ubi_queries"}}',
            _query("qb1"),
            b'{"index":{"_index":"ubi_events"}}',
            imp("qb1"),
            b'{"index":{"_index":"ubi_events"}}',
            _query("qb2"),  # a query document under an events action line
        ]
    )
    return {
        "invalid_utf8": ("ubi_events", "utf8.ndjson", b'\xff{"action_name":"x"}\n' + good + b"\n", {1: "invalid_utf8"}),
        "nul_byte": ("ubi_events", "nul.ndjson", b'{"action_name":"impr\x00ession"}\n', {1: "*quarantine"}),
        "bom_first_line": ("ubi_events", "bom.ndjson", b"\xef\xbb\xbf" + imp("qbom") + b"\n", {1: "accepted"}),
        "truncated_gzip": ("ubi_events", "trunc.ndjson.gz", raw_gz[: len(raw_gz) // 2], {0: "truncated_file"}),
        "non_gzip_named_gz": ("ubi_events", "plain.ndjson.gz", imp("qplain") + b"\n", {1: "accepted"}),
        "colon_in_name": ("ubi_events", "part:1.ndjson", imp("qcolon") + b"\n", {1: "accepted"}),
        "bracket_in_name": ("ubi_events", "part[1].ndjson", imp("qbracket") + b"\n", {1: "accepted"}),
        "space_and_hash_in_name": ("ubi_events", "part #1 .ndjson", imp("qspace") + b"\n", {1: "accepted"}),
        "object_query_id": ("ubi_events", "objqid.ndjson", imp("x", query_id={"a": 1}) + b"\n", {1: "*quarantine"}),
        "array_action": ("ubi_events", "arract.ndjson", imp("qa", action_name=["click"]) + b"\n", {1: "*quarantine"}),
        "numeric_query_id": ("ubi_events", "numqid.ndjson", imp("x", query_id=12) + b"\n", {1: "*quarantine"}),
        "dwell_inf": (
            "ubi_events",
            "dwellinf.ndjson",
            imp("qd1").replace(b'"position"', b'"dwell_time": 1e400, "position"') + b"\n",
            {1: "*quarantine"},
        ),
        "dwell_nan": ("ubi_events", "dwellnan.ndjson", _dwell(imp("qd2"), b'"NaN"'), {1: "*quarantine"}),
        "dwell_negative": ("ubi_events", "dwellneg.ndjson", _dwell(imp("qd3"), b"-5"), {1: "*quarantine"}),
        "dwell_absurd": ("ubi_events", "dwellbig.ndjson", _dwell(imp("qd4"), b"1e15"), {1: "*quarantine"}),
        "duplicate_keys": (
            "ubi_events",
            "dupkey.ndjson",
            imp("qk").replace(b'"action_name": "impression"', b'"action_name": "impression", "action_name": "purchase"')
            + b"\n",
            {1: "*quarantine"},
        ),
        "lowercase_z": ("ubi_events", "lowz.ndjson", imp("qlz", timestamp=f"{DS}t10:00:00z") + b"\n", {1: "accepted"}),
        "stray_cr": (
            "ubi_events",
            "cr.ndjson",
            imp("qcr1")[:-1] + b',"x":"a\rb"}\n' + imp("qcr2") + b"\n",
            {2: "accepted"},
        ),
        "crlf_file": ("ubi_events", "crlf.ndjson", imp("qcrlf1") + b"\r\n" + imp("qcrlf2") + b"\r\n", {2: "accepted"}),
        "mixed_bulk_in_queries": (
            "ubi_queries",
            "bulk.ndjson",
            bulk + b"\n",
            {2: "accepted", 4: "accepted", 6: "*quarantine"},
        ),
        "invalid_json": ("ubi_events", "garbage.ndjson", b'{"action_name": "impression", \n', {1: "invalid_json"}),
        "glued_documents": ("ubi_events", "glued.ndjson", imp("qg1") + imp("qg2") + b"\n", {1: "invalid_json"}),
        "not_an_object": ("ubi_events", "array.ndjson", b"[1, 2, 3]\n", {1: "not_an_object"}),
        "missing_timestamp": (
            "ubi_events",
            "nots.ndjson",
            _doc(action_name="impression", query_id="q") + b"\n",
            {1: "missing_timestamp"},
        ),
        "naive_timestamp": (
            "ubi_events",
            "naive.ndjson",
            imp("qn", timestamp=f"{DS}T10:00:00") + b"\n",
            {1: "bad_timestamp"},
        ),
        "out_of_window": (
            "ubi_events",
            "oow.ndjson",
            imp("qo", timestamp="2020-01-01T00:00:00Z") + b"\n",
            {1: "out_of_window"},
        ),
        "bad_ordinal": ("ubi_events", "ord.ndjson", _ordinal(imp("qord"), b'"x"'), {1: "bad_position"}),
        "empty_file": ("ubi_events", "empty.ndjson", b"", {}),
        "blank_lines_only": ("ubi_events", "blank.ndjson", b"\n  \n\t\n", {}),
        "huge_line": ("ubi_events", "huge.ndjson", imp("qh", user_query="x" * 2_000_000) + b"\n", {1: "accepted"}),
    }


def _dwell(line: bytes, value: bytes) -> bytes:
    return line.replace(b'"position"', b'"dwell_time": ' + value + b', "position"') + b"\n"


def _ordinal(line: bytes, value: bytes) -> bytes:
    return line.replace(b'"ordinal": 1', b'"ordinal": ' + value) + b"\n"


def land_bad_inputs(root: Path) -> dict[str, tuple[str, str, bytes, dict]]:
    kinds = bad_input_kinds()
    for source in ("ubi_queries", "ubi_events"):
        (root / "raw" / source / f"ds={DS}").mkdir(parents=True, exist_ok=True)
    queries = b"".join(_query(q) + b"\n" for q in ("qg", "qbom", "qz1", "qz2", "qz3", "qplain", "qcolon"))
    (root / "raw" / "ubi_queries" / f"ds={DS}" / "queries.ndjson").write_bytes(queries)
    for source, name, data, _ in kinds.values():
        (root / "raw" / source / f"ds={DS}" / name).write_bytes(data)
    return kinds


def _lines_of(data: bytes, name: str) -> list[bytes]:
    """The file's lines as the ingest must count them (a readable gzip prefix for a truncated one)."""
    if name.endswith(".gz") and data[:2] == b"\x1f\x8b":
        out = b""
        d = __import__("zlib").decompressobj(31)
        try:
            out = d.decompress(data)
        except Exception:
            pass
        data = out
    lines = data.split(b"\n")
    return lines[:-1] if lines and lines[-1] == b"" else lines


def check_bad_inputs(workdir: Path, spark) -> dict:
    """Ingest the bad-input day once; judge every kind; count lost lines."""
    from sie.config import SieConfig
    from sie.ingest import ingest_day
    from sie.store import Warehouse

    root = workdir / "bad_inputs"
    shutil.rmtree(root, ignore_errors=True)
    kinds = land_bad_inputs(root)
    cfg = SieConfig.load({"warehouse": str(root)})
    try:
        summary = ingest_day(cfg, DS, spark=spark)
    except Exception as exc:  # the whole day failing is the worst outcome: every kind unhandled
        return {"kinds_tried": len(kinds), "kinds_handled": 0, "error": f"{type(exc).__name__}: {exc}"[:500]}
    wh = Warehouse(root)
    quarantine = wh.read_table("quarantine").to_pandas()
    events = wh.read_table("events").to_pandas()
    queries = wh.read_table("queries").to_pandas()
    accepted = {(r.file, int(r.line_no)) for r in events.itertuples()} | {
        (r.file, int(r.line_no)) for r in queries.itertuples()
    }
    reasons = {(r.file, int(r.line_no)): r.reason for r in quarantine.itertuples()}
    by_file = {}
    for r in quarantine.itertuples():
        by_file.setdefault(r.file, []).append(r)
    results = {}
    for kind, (_, name, data, expect) in kinds.items():
        problems = []
        for line_no, want in expect.items():
            if line_no == 0:  # a file-level outcome
                got = {r.reason for r in by_file.get(name, [])}
                ok = want in got
            else:
                key = (name, line_no)
                got = "accepted" if key in accepted else reasons.get(key)
                ok = got is not None and (got == want or (want == "*quarantine" and got not in (None, "accepted")))
            if not ok:
                problems.append(f"line {line_no}: expected {want}, got {got}")
        for r in by_file.get(name, []):  # the quarantine keeps the exact bytes of each line
            lines = _lines_of(data, name)
            if r.reason != "truncated_file" and 1 <= r.line_no <= len(lines):
                want_bytes = lines[r.line_no - 1].removesuffix(b"\r")
                if bytes(r.raw_bytes) not in (want_bytes, lines[r.line_no - 1]):
                    problems.append(f"line {r.line_no}: raw_bytes differ from the landed bytes")
        results[kind] = {"handled": not problems, "problems": problems}
    landed = {
        source: sum(len(_lines_of(p.read_bytes(), p.name)) for p in (root / "raw" / source / f"ds={DS}").iterdir())
        for source in ("ubi_queries", "ubi_events")
    }
    counted = {r["source"]: r["raw_lines"] for r in summary["reconciliation"]}
    # totals: a bulk action line routes its document (and is counted) under the source its _index names
    lost = max(0, sum(landed.values()) - sum(counted.values()))
    sql_ok = _sql_reads_quarantine(root)
    return {
        "kinds_tried": len(kinds),
        "kinds_handled": sum(r["handled"] for r in results.values()),
        "lines_landed": landed,
        "lines_counted": counted,
        "lines_lost": lost,
        "quarantine_queryable": sql_ok,
        "kinds": results,
    }


def _sql_reads_quarantine(root: Path) -> bool:
    out = subprocess.run(
        [SIE, "-w", str(root), "sql", "--format", "csv", "SELECT count(*) AS n, count(raw) AS r FROM quarantine"],
        capture_output=True,
        text=True,
    )
    return out.returncode == 0


# ---- kills -------------------------------------------------------------------------------


def _sie(root: Path, *args: str, env: dict | None = None, **kw) -> subprocess.Popen:
    cmd = [SIE, "-w", str(root), *(a for s in SETTINGS for a in ("--set", s)), *args]
    full_env = dict(os.environ, PYSPARK_PYTHON=sys.executable, **(env or {}))
    full_env.pop("SIE_CONFIG", None)
    return subprocess.Popen(
        cmd, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True, **kw
    )


def _run(root: Path, *args: str, env: dict | None = None) -> tuple[int, str]:
    proc = _sie(root, *args, env=env)
    _, err = proc.communicate(timeout=1800)
    return proc.returncode, err.decode(errors="replace")[-2000:]


def _state(root: Path, ds: str) -> dict:
    """What a reader sees: every table's rows (commit times dropped) and the model's meta."""
    from sie.schemas import TABLES
    from sie.store import Warehouse

    wh = Warehouse(root)
    out = {}
    for t in TABLES:
        frame = wh.read_table(t).to_pandas()
        measured = ("committed_at", "created_at", "train_seconds", "score_seconds")  # clocks, not results
        frame = frame.drop(columns=[c for c in measured if c in frame.columns])
        frame = frame.astype(str).sort_values(list(frame.columns)).reset_index(drop=True)
        out[t] = frame.to_csv(index=False)
    meta = wh.model_dir(ds) / "meta.json"
    out["model"] = _model_fingerprint(meta)
    return out


def _model_fingerprint(meta: Path) -> str | None:
    if not meta.exists():
        return None
    data = json.loads(meta.read_text())
    return json.dumps({k: v for k, v in data.items() if k not in ("train_seconds", "trained_at")}, sort_keys=True)


STEPS = {  # step -> the command that (re)does it for DS
    "ingest": ("ingest", "--ds", DS),
    "train": ("train", "--ds", DS),
    "score": ("score", "--ds", DS),
    "evaluate": ("evaluate", "--ds", DS),
}
COMMIT_POINTS = [
    f"ingest.{stage}.{t}"
    for stage in ("staged", "committed")
    for t in ("events", "queries", "quarantine", "samples", "reconciliation")
]


def prepare_world(workdir: Path) -> Path:
    """Two simulated days, the first ingested: DS is the day every kill is aimed at."""
    root = workdir / "world"
    shutil.rmtree(root, ignore_errors=True)
    prev = "2026-11-19"
    for args in (("simulate", "--start", prev, "--days", "2"), ("ingest", "--ds", prev)):
        rc, err = _run(root, *args)
        if rc:
            raise RuntimeError(f"sie {' '.join(args)} failed: {err}")
    return root


def reference_states(workdir: Path, world: Path) -> dict[str, dict]:
    """The state after each step of a clean run; the warehouse before each step is kept as
    ``before-<step>`` (a kill trial starts from a copy of it)."""
    ref = workdir / "reference"
    shutil.rmtree(ref, ignore_errors=True)
    shutil.copytree(world, ref)
    states = {}
    for step, args in STEPS.items():
        keep = workdir / f"before-{step}"
        shutil.rmtree(keep, ignore_errors=True)
        shutil.copytree(ref, keep)
        states[f"before-{step}"] = _state(ref, DS)
        t0 = time.time()
        rc, err = _run(ref, *args)
        if rc:
            raise RuntimeError(f"reference {step} failed: {err}")
        states[f"seconds-{step}"] = time.time() - t0
        states[step] = _state(ref, DS)
    return states


def kill_runs(workdir: Path, refs: dict, points: list[str], random_kills: int, seed: int) -> dict:
    """Kill at each commit point and at random times in each step; check what readers see, then rerun."""
    rng = random.Random(seed)
    trials = [("ingest", p, None) for p in points]
    for step in STEPS:
        trials += [(step, None, rng.random()) for _ in range(random_kills)]
    outcomes = []
    for step, point, fraction in trials:
        root = workdir / "kill"
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(workdir / f"before-{step}", root)
        if point:
            proc = _sie(root, *STEPS[step], env={"SIE_FAULTS": f"{point}=kill"})
            proc.wait(timeout=1800)
            killed = proc.returncode == -signal.SIGKILL
        else:
            proc = _sie(root, *STEPS[step])
            try:  # a random moment within the step's clean duration (JVM/torch start included)
                proc.wait(timeout=fraction * refs[f"seconds-{step}"])
                killed = False
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=60)
                killed = True
        after = _state(root, DS)
        # the old state, or the new one when the step committed before the kill landed
        visible_ok = after == refs[f"before-{step}"] or after == refs[step]
        rc, err = _run(root, *STEPS[step])
        rerun_ok = rc == 0 and _state(root, DS) == refs[step]
        outcomes.append(
            {
                "step": step,
                "point": point,
                "at_fraction": None if point else round(fraction, 3),
                "killed": killed,
                "state_ok_after_kill": visible_ok,
                "rerun_identical": rerun_ok,
                "error": None if rc == 0 else err[-300:],
            }
        )
        print(f"[faults] kill {step} {point or f'at {fraction:.2f}'}: ok={visible_ok and rerun_ok}", flush=True)
    return {
        "kills": len(outcomes),
        "kills_landed": sum(o["killed"] for o in outcomes),
        "survived": sum(o["state_ok_after_kill"] and o["rerun_identical"] for o in outcomes),
        "runs": outcomes,
    }


# ---- concurrency -------------------------------------------------------------------------


def _commit_many(args) -> int:
    import pyarrow as pa

    from sie.store import Warehouse

    root, method, n = args
    wh, failures = Warehouse(root), 0
    for i in range(n):
        table = pa.table(
            {
                "sample_id": ["a", "b"],
                "sample_ds": [DS] * 2,
                "run_id": ["r"] * 2,
                "model_version": ["v"] * 2,
                "score": [float(i)] * 2,
                "model_id": ["mlp"] * 2,
            }
        )
        try:
            wh.write_partition("importance_scores", {"ds": DS, "method": method}, table)
        except Exception as exc:  # counted, not raised: the number is the result
            print(f"[faults] writer {method}: {type(exc).__name__}: {exc}", file=sys.stderr)
            failures += 1
    return failures


def concurrent_writers(workdir: Path, processes: int, commits: int, world: Path) -> dict:
    from sie.store import Warehouse

    root = workdir / "writers"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    t0 = time.time()
    with mp.get_context("spawn").Pool(processes) as pool:
        failures = pool.map(_commit_many, [(str(root), f"m{k}", commits) for k in range(processes)])
    seconds = time.time() - t0
    wh = Warehouse(root)
    rows = wh.read_table("importance_scores").to_pandas()
    in_log = {f.path for f in wh.data_files("importance_scores")}
    tombstoned = set()  # files replaced by later commits are still on disk until the vacuum: not leftovers
    for c in range(wh.delta("importance_scores").version() + 1):
        tombstoned |= {f.path for f in wh.data_files("importance_scores", as_of=c)}
    on_disk = set(wh.table_dir("importance_scores").glob("ds=*/method=*/*.parquet"))
    correct = sorted(set(rows["method"])) == [f"m{k}" for k in range(processes)] and set(rows["score"]) == {
        float(commits - 1)
    }
    return {
        "processes": processes,
        "commits_each": commits,
        "failures": sum(failures),
        "leftover_files": len(on_disk - in_log - tombstoned),
        "final_state_correct": bool(correct),
        "commits_per_s": round(processes * commits / seconds, 1),
        "two_ingests_of_one_day": two_ingests(workdir, world) if world else {"skipped": "--fast"},
    }


def two_ingests(workdir: Path, world: Path) -> dict:
    """Two `sie ingest` of one day started together: one runs, the other stops at once with a clear error."""
    root = workdir / "two_ingests"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(world, root)
    procs = [_sie(root, *STEPS["ingest"]) for _ in range(2)]
    results = [(p.wait(timeout=1800), p.stderr.read().decode(errors="replace")) for p in procs]
    codes = sorted(rc for rc, _ in results)
    clear = "being ingested by another process" in "".join(err for _, err in results)
    one_outcome = codes == [0, 0] or (codes == [0, 1] and clear)
    return {"exit_codes": codes, "refused_with_clear_error": clear, "one_clear_outcome": one_outcome}


def _read_loop(args) -> tuple[int, int]:
    from sie.schemas import DAY_TABLES
    from sie.store import Warehouse

    root, seconds, sizes = args
    wh, reads, bad = Warehouse(root), 0, 0
    deadline = time.time() + seconds
    while time.time() < deadline:
        runs = wh.current_runs()
        rows = {t: wh.read_table(t, {"ds": [DS]}, runs=runs).num_rows for t in DAY_TABLES}
        reads += 1
        bad += int(set(rows.values()) not in ({n} for n in sizes))
    return reads, bad


def concurrent_readers(workdir: Path, min_reads: int) -> dict:
    """Readers of a day's five tables while the day is republished again and again."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sie.schemas import DAY_TABLES, INGEST_DAYS, TABLES
    from sie.store import Warehouse

    root = workdir / "readers"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    wh = Warehouse(root)

    def publish(run_id: str, n: int) -> None:
        with wh.staged_day(DS, run_id) as folders:
            for t in DAY_TABLES:
                schema = TABLES[t].schema
                cols = {f.name: (pa.array([run_id] * n) if f.name == "run_id" else pa.nulls(n, f.type)) for f in schema}
                pq.write_table(pa.table(cols, schema=schema), folders[t] / "part-00000.parquet")
            row = {f.name: None for f in INGEST_DAYS.schema} | {"run_id": run_id, "settings": "{}"}
            wh.publish_day(DS, run_id, folders, pa.Table.from_pylist([row], schema=INGEST_DAYS.schema))

    publish("run-3", 3)
    republished, reads, bad = 0, 0, 0
    with mp.get_context("spawn").Pool(2) as pool:
        while reads < min_reads:
            pending = pool.map_async(_read_loop, [(str(root), 8.0, (3, 5))] * 2)
            while not pending.ready():
                publish("run-5" if republished % 2 == 0 else "run-3", 5 if republished % 2 == 0 else 3)
                republished += 1
            for r, b in pending.get():
                reads, bad = reads + r, bad + b
    return {"reads": reads, "bad_reads": bad, "republishes": republished}


# ---- sie sql -----------------------------------------------------------------------------

SQL_WRITES = [
    "COPY (SELECT * FROM events LIMIT 5) TO '{root}/tables/events/ds=2026-11-20/zz.parquet'",
    "EXPORT DATABASE '{root}/export'",
    "SELECT 1; SELECT 2",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "ATTACH '{root}/other.duckdb' AS o",
    "CREATE TABLE t AS SELECT 1",
    "INSERT INTO events SELECT * FROM events",
    "DELETE FROM events",
    "DROP VIEW events",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/hostname')",
    "PRAGMA enable_external_access",
    "CALL duckdb_secrets()",
]


def sql_writes(root: Path) -> dict:
    refused, results = 0, []
    before = sorted(str(p) for p in root.rglob("*"))
    for stmt in SQL_WRITES:
        out = subprocess.run([SIE, "-w", str(root), "sql", stmt.format(root=root)], capture_output=True, text=True)
        ok = out.returncode != 0
        refused += ok
        results.append({"statement": stmt, "refused": ok, "message": (out.stdout + out.stderr).strip()[-200:]})
    changed = sorted(str(p) for p in root.rglob("*")) != before
    return {"tried": len(SQL_WRITES), "refused": refused, "warehouse_changed": changed, "statements": results}


# ---- main --------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", action="store_true", help="a smaller run of every part (the test suite's)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "faults.json"))
    parser.add_argument("--workdir", default="/tmp/sie-faults")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    from sie.config import SieConfig
    from sie.spark import get_spark

    spark = get_spark(SieConfig.load({}))
    result: dict = {
        "benchmark": "faults",
        "fast": args.fast,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
    }
    print("[faults] bad inputs", flush=True)
    result["bad_inputs"] = check_bad_inputs(workdir, spark)
    if args.fast:  # the kills are the slow part (a JVM or torch start each): the tests run their own
        result["kills"] = {"kills": 0, "kills_landed": 0, "survived": 0, "runs": [], "skipped": "--fast"}
        world = None
    else:
        print("[faults] world + reference run", flush=True)
        world = prepare_world(workdir)
        refs = reference_states(workdir, world)
        result["kills"] = kill_runs(workdir, refs, COMMIT_POINTS, random_kills=2, seed=args.seed)
    print("[faults] writers", flush=True)
    result["writers"] = concurrent_writers(workdir, 4, 25 if args.fast else 100, world)
    print("[faults] readers", flush=True)
    result["readers"] = concurrent_readers(workdir, 200 if args.fast else 1000)
    result["sql_writes"] = sql_writes(workdir / "bad_inputs")
    result["summary"] = {
        "kinds_tried": result["bad_inputs"]["kinds_tried"],
        "kinds_handled": result["bad_inputs"]["kinds_handled"],
        "lines_lost": result["bad_inputs"].get("lines_lost"),
        "kills": result["kills"]["kills"],
        "kills_survived": result["kills"]["survived"],
        "stress_failures": result["writers"]["failures"] + result["writers"]["leftover_files"],
        "two_ingests_one_outcome": result["writers"]["two_ingests_of_one_day"].get("one_clear_outcome"),
        "reads": result["readers"]["reads"],
        "bad_reads": result["readers"]["bad_reads"],
        "sql_writes_tried": result["sql_writes"]["tried"],
        "sql_writes_refused": result["sql_writes"]["refused"],
    }
    result["seconds"] = round(time.time() - started, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["summary"], indent=2))
    print(f"[faults] wrote {out} in {result['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
