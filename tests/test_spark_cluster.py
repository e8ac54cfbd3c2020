"""The ingest on a real Spark standalone cluster (a master and one 2-core worker on 127.0.0.1,
``sie.dev.spark_cluster``) publishes the same five tables, row for row, as the ``local[2]``
ingest of the same raw files: once through the ``sie`` CLI (its embedded session with
``ingest.spark_master=spark://...``) and once through ``spark-submit --master spark://...
jobs/ingest.py``.

Both cluster drivers run in subprocesses (this process holds the shared local SparkSession,
and a JVM has one SparkContext), side by side as two applications of one core each, while
this process ingests the local[2] reference: three ingests of a few minutes each on a
2-core machine would otherwise run one after the other."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sie.config import SieConfig
from sie.store import Warehouse

pytestmark = [pytest.mark.slow, pytest.mark.integration]

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DS = "2025-01-02"
TABLES = ("events", "queries", "quarantine", "samples", "reconciliation")
WORLD = {"requests_per_day": 300, "n_items": 300, "n_users": 200, "n_intents": 60, "bad_records": 2}
DRIVER_TIMEOUT_S = 600
APP_NAMES = {"cli": "sie", "spark-submit": "sie-ingest"}  # get_spark's / jobs/ingest.py's app name


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Master + one worker (2 cores, 2 GiB for executors); each application gets 1 core (and a 1 GiB
    executor), so the two drivers run side by side."""
    from sie.dev.spark_cluster import standalone_cluster

    with standalone_cluster(tmp_path_factory.mktemp("spark-standalone"), cores=2, memory="2g", app_cores=1) as c:
        yield c


def _commands(cluster, roots: dict[str, Path]) -> dict[str, list[str]]:
    world = [f"--set=simulate.{k}={v}" for k, v in WORLD.items()]  # the reference's config (ingest ignores it)
    cli = [str(BIN / "sie"), "--warehouse", str(roots["cli"]), f"--set=ingest.spark_master={cluster.master_url}"]
    submit = [str(BIN / "spark-submit"), "--master", cluster.master_url]
    for conf in (
        "spark.driver.host=127.0.0.1",
        f"spark.pyspark.python={sys.executable}",
        "spark.executor.memory=1g",
        "spark.ui.enabled=false",
        "spark.log.level=WARN",
    ):
        submit += ["--conf", conf]
    submit += [str(ROOT / "jobs" / "ingest.py"), "--ds", DS, "--warehouse", str(roots["spark-submit"])]
    return {"cli": [*cli, *world, "ingest", "--ds", DS], "spark-submit": [*submit, *world]}


def _launch(cluster, cmd: list[str], log_path: Path) -> subprocess.Popen:
    env = cluster.client_env(os.environ)
    env["PYSPARK_PYTHON"] = sys.executable  # executors' Python workers: the venv (sie installed)
    for key in ("SIE_CONFIG", "SIE_SPARK_MASTER", "SIE_FAULTS", "SIE_WAREHOUSE"):
        env.pop(key, None)
    with log_path.open("wb") as out:
        return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _finish(procs: dict[str, subprocess.Popen], deadline: float) -> dict[str, int | None]:
    """Exit codes of the drivers; a driver still running at ``deadline`` is killed (None)."""
    codes: dict[str, int | None] = {}
    for name, proc in procs.items():
        try:
            codes[name] = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            codes[name] = None
        if codes[name] != 0:
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # and its Spark JVM
            except ProcessLookupError:
                pass
            proc.wait(timeout=30)
    return codes


def _rows(root: Path) -> dict[str, tuple]:
    """Each table's day partition as (schema, rows sorted by all columns, as canonical JSON)."""
    wh = Warehouse(root)
    out = {}
    for t in TABLES:
        table = wh.read_table(t, {"ds": [DS]})
        rows = sorted(json.dumps(r, sort_keys=True, default=str) for r in table.to_pylist())
        out[t] = (str(table.schema), rows)
    return out


@pytest.fixture(scope="module")
def runs(cluster, spark, tmp_path_factory) -> dict:
    """One simulated day (with injected bad records), its raw files copied into three warehouses,
    ingested by the two cluster drivers (subprocesses) and, meanwhile, by the shared local[2] session."""
    from sie.ingest import ingest_day
    from sie.simulate import simulate_day

    base = tmp_path_factory.mktemp("cluster-runs")
    sim = base / "sim"
    simulate_day(SieConfig.load({"warehouse": str(sim), "simulate": WORLD}), DS)
    roots = {name: base / name for name in ("local", "cli", "spark-submit")}
    for root in roots.values():
        shutil.copytree(sim / "raw", root / "raw")
    before = {a["id"] for a in cluster.applications()}
    logs = {name: base / f"{name}.log" for name in APP_NAMES}
    procs = {name: _launch(cluster, cmd, logs[name]) for name, cmd in _commands(cluster, roots).items()}
    try:
        ingest_day(SieConfig.load({"warehouse": str(roots["local"]), "simulate": WORLD}), DS, spark=spark)
    except BaseException:
        _finish(procs, time.monotonic())  # kill the drivers now
        raise
    codes = _finish(procs, time.monotonic() + DRIVER_TIMEOUT_S)
    apps = [a for a in cluster.applications() if a["id"] not in before]
    return {"roots": roots, "logs": logs, "codes": codes, "apps": apps, "local": _rows(roots["local"])}


@pytest.mark.parametrize("driver", list(APP_NAMES))
def test_ingest_on_standalone_cluster_equals_local(runs, cluster, driver):
    if runs["codes"][driver] != 0:
        tail = "\n".join(runs["logs"][driver].read_text(errors="replace").splitlines()[-60:])
        pytest.fail(f"{driver} exited {runs['codes'][driver]}:\n{tail}\n--- worker ---\n{cluster.log_tail('worker')}")
    local = runs["local"]
    assert all(local[t][1] for t in TABLES), {t: len(local[t][1]) for t in TABLES}  # quarantine too
    apps = [a for a in runs["apps"] if a["name"] == APP_NAMES[driver]]
    assert len(apps) == 1, runs["apps"]  # the run was one application of the cluster ...
    assert list((cluster.work_dir / apps[0]["id"]).glob("*/stderr")), "no executor ran on the worker"  # ... on it
    rows = _rows(runs["roots"][driver])
    for t in TABLES:
        assert rows[t][0] == local[t][0], f"{t}: schema differs from local[2]"
        assert len(rows[t][1]) == len(local[t][1]), f"{t}: row count differs from local[2]"
        assert rows[t][1] == local[t][1], f"{t}: rows differ from local[2]"
