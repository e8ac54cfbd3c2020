"""The ingest on a real Spark standalone cluster (a master and one 2-core worker on 127.0.0.1,
``sie.dev.spark_cluster``) publishes the same five tables, row for row, as the ``local[2]``
ingest of the same raw files: once through the ``sie`` CLI (its embedded session with
``ingest.spark_master=spark://...``) and once through ``spark-submit --master spark://...
jobs/ingest.py``. Both drivers run in subprocesses: this process already holds the shared
local SparkSession, and a JVM has one SparkContext."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
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


@pytest.fixture(scope="module")
def raw_day(tmp_path_factory) -> Path:
    """One simulated day (with injected bad records); its ``raw/`` folder is copied into each warehouse."""
    from sie.simulate import simulate_day

    root = tmp_path_factory.mktemp("cluster-sim") / "warehouse"
    simulate_day(SieConfig.load({"warehouse": str(root), "simulate": WORLD}), DS)
    return root / "raw"


def _warehouse(raw: Path, root: Path) -> Path:
    shutil.copytree(raw, root / "raw")
    return root


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
def local_rows(raw_day, spark, tmp_path_factory) -> dict[str, tuple]:
    """The reference: the same raw files ingested by the shared local[2] session."""
    from sie.ingest import ingest_day

    root = _warehouse(raw_day, tmp_path_factory.mktemp("cluster-local") / "warehouse")
    ingest_day(SieConfig.load({"warehouse": str(root), "simulate": WORLD}), DS, spark=spark)
    rows = _rows(root)
    assert all(rows[t][1] for t in TABLES), {t: len(rows[t][1]) for t in TABLES}  # quarantine too
    return rows


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from sie.dev.spark_cluster import standalone_cluster

    with standalone_cluster(tmp_path_factory.mktemp("spark-standalone"), cores=2, memory="1g") as c:
        yield c


def _run(cluster, cmd: list[str], log_path: Path) -> None:
    """Run a driver of the cluster; fail with the tail of its output (and the worker's) on a non-zero exit."""
    env = cluster.client_env(os.environ)
    env["PYSPARK_PYTHON"] = sys.executable  # executors' Python workers: the venv (sie installed)
    for key in ("SIE_CONFIG", "SIE_SPARK_MASTER", "SIE_FAULTS", "SIE_WAREHOUSE"):
        env.pop(key, None)
    with log_path.open("wb") as out:
        rc = subprocess.run(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, timeout=300).returncode
    if rc != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-60:])
        pytest.fail(f"{cmd[0]} exited {rc}:\n{tail}\n--- worker ---\n{cluster.log_tail('worker')}")


def _app_ids(cluster) -> set[str]:
    return {a["id"] for a in cluster.applications()}


def _assert_same(cluster, root: Path, local_rows: dict, before: set[str], app_name: str) -> None:
    new = [a for a in cluster.applications() if a["id"] not in before]
    assert [a["name"] for a in new] == [app_name], new  # the run was one application of the cluster ...
    assert list((cluster.work_dir / new[0]["id"]).glob("*/stderr")), "no executor ran on the worker"  # ... on it
    rows = _rows(root)
    for t in TABLES:
        assert rows[t][0] == local_rows[t][0], f"{t}: schema differs from local[2]"
        assert len(rows[t][1]) == len(local_rows[t][1]), f"{t}: row count differs from local[2]"
        assert rows[t][1] == local_rows[t][1], f"{t}: rows differ from local[2]"


def test_cli_ingest_on_standalone_cluster_equals_local(raw_day, local_rows, cluster, tmp_path):
    root = _warehouse(raw_day, tmp_path / "warehouse")
    before = _app_ids(cluster)
    cmd = [str(BIN / "sie"), "--warehouse", str(root), "--set", f"ingest.spark_master={cluster.master_url}"]
    cmd += [f"--set=simulate.{k}={v}" for k, v in WORLD.items()]
    _run(cluster, [*cmd, "ingest", "--ds", DS], tmp_path / "sie-ingest.log")
    _assert_same(cluster, root, local_rows, before, "sie")


def test_spark_submit_ingest_on_standalone_cluster_equals_local(raw_day, local_rows, cluster, tmp_path):
    root = _warehouse(raw_day, tmp_path / "warehouse")
    before = _app_ids(cluster)
    cmd = [str(BIN / "spark-submit"), "--master", cluster.master_url, "--conf", "spark.driver.host=127.0.0.1"]
    cmd += ["--conf", f"spark.pyspark.python={sys.executable}", "--conf", "spark.executor.memory=1g"]
    cmd += ["--conf", "spark.ui.enabled=false", "--conf", "spark.log.level=WARN"]
    cmd += [str(ROOT / "jobs" / "ingest.py"), "--ds", DS, "--warehouse", str(root)]
    cmd += [f"--set=simulate.{k}={v}" for k, v in WORLD.items()]
    _run(cluster, cmd, tmp_path / "spark-submit.log")
    _assert_same(cluster, root, local_rows, before, "sie-ingest")
