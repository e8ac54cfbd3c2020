"""Dev harness: run DAGs with the real `airflow dags test` on a private SQLite Airflow home."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # sie/dev/ → the project root


def airflow_env(airflow_home: Path, warehouse: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    airflow_home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
            "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "10",  # dev runs fail fast; deployments keep 300
            "GX_ANALYTICS_ENABLED": "False",
            "PYSPARK_PYTHON": sys.executable,
            "SIE_WAREHOUSE": str(warehouse),
        }
    )
    env.update(extra or {})
    return env


def airflow_bin() -> str:
    candidate = Path(sys.executable).parent / "airflow"
    return str(candidate) if candidate.exists() else "airflow"


def migrate(env: dict[str, str]) -> None:
    subprocess.run([airflow_bin(), "db", "migrate"], env=env, check=True, capture_output=True, text=True)


def dags_test(
    dag_id: str, env: dict[str, str], conf: dict | None = None, logical_date: str | None = None, stream: bool = True
) -> subprocess.CompletedProcess:
    """`airflow dags test DAG [DATE] -c CONF`; raises with the log tail when the run fails."""
    cmd = [airflow_bin(), "dags", "test", dag_id]
    if logical_date:
        cmd.append(logical_date)
    if conf is not None:
        cmd += ["-c", json.dumps(conf)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:  # type: ignore[union-attr]
        lines.append(line)
        if stream and ("[sie]" in line or "ERROR" in line or "Traceback" in line):
            log.info("  | %s", line.rstrip().split("[sie] ", 1)[-1][-200:])  # relayed from the DAG run
    proc.wait()
    output = "".join(lines)
    if proc.returncode != 0:  # `airflow dags test` exits 1 when the run fails
        raise RuntimeError(
            f"`{' '.join(cmd)}` failed (exit {proc.returncode}) after {time.perf_counter() - start:.0f}s:\n"
            + output[-6000:]
        )
    return subprocess.CompletedProcess(cmd, proc.returncode, output, "")
