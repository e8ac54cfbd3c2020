"""A Spark standalone cluster on 127.0.0.1 (one master, one worker) for integration tests and drills.

Both daemons are started from the installed pyspark's ``bin/spark-class`` as foreground
subprocesses, each leading its own process group: the worker's executor JVMs and their
Python workers inherit the worker's group, so :meth:`StandaloneCluster.stop` ends every
process the cluster started. Ports are free ones picked at start (``spark.port.maxRetries=0``:
a port taken meanwhile fails the start, which is then retried on new ports instead of
silently binding the next port). Logs, the worker's work dir and the local (shuffle) dirs
all live under the given root::

    with standalone_cluster(tmp_path / "spark", cores=2, memory="1g") as cluster:
        subprocess.run([..., "--master", cluster.master_url, ...], env=cluster.client_env(os.environ))
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"


class ClusterError(RuntimeError):
    """The master or the worker did not come up; the message ends with the tail of its log."""


def spark_home() -> Path:
    """The installed pyspark package, which ships ``bin/spark-class`` and ``jars/``."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (the daemon binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class StandaloneCluster:
    """One master and one worker (``cores``, ``memory`` for executors) with every file under ``root``.

    ``app_cores``: the cores an application gets unless it sets ``spark.cores.max`` (the
    master's ``spark.deploy.defaultCores``; None: all free cores), e.g. 1 to run two
    applications side by side on a 2-core worker.
    """

    root: Path
    cores: int = 2
    memory: str = "1g"
    app_cores: int | None = None
    daemon_memory: str = "512m"
    master_port: int = field(default_factory=free_port)
    master_ui_port: int = field(default_factory=free_port)
    worker_ui_port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.master_port}"

    @property
    def master_ui_url(self) -> str:
        return f"http://{HOST}:{self.master_ui_port}"

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    @property
    def work_dir(self) -> Path:
        """The worker's work dir: one ``app-*/<executor>/`` folder (stdout, stderr) per executor."""
        return self.root / "work"

    def client_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for a driver of this cluster (spark-submit, an embedded session): bound to
        127.0.0.1, its local dirs under ``root``."""
        env = dict(os.environ if base is None else base)
        env.update(SPARK_LOCAL_IP=HOST, SPARK_LOCAL_DIRS=str(self._dir("client-local")))
        env.pop("SPARK_CONF_DIR", None)
        return env

    def _daemon_env(self) -> dict[str, str]:
        env = self.client_env()
        env.update(
            SPARK_HOME=str(spark_home()),
            SPARK_LOG_DIR=str(self._dir("logs")),
            SPARK_PID_DIR=str(self._dir("pids")),
            SPARK_WORKER_DIR=str(self._dir("work")),
            SPARK_LOCAL_DIRS=str(self._dir("worker-local")),
            SPARK_DAEMON_MEMORY=self.daemon_memory,
            SPARK_DAEMON_JAVA_OPTS=f"-Dspark.port.maxRetries=0 -Djava.io.tmpdir={self._dir('tmp')}",
        )
        for key in ("SPARK_MASTER_OPTS", "SPARK_WORKER_OPTS", "SPARK_MASTER_HOST", "SPARK_MASTER_PORT"):
            env.pop(key, None)
        if self.app_cores is not None:
            env["SPARK_MASTER_OPTS"] = f"-Dspark.deploy.defaultCores={self.app_cores}"
        return env

    def _dir(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _spawn(self, name: str, args: list[str]) -> None:
        out = (self._dir("logs") / f"{name}.out").open("ab")
        try:
            self.procs[name] = subprocess.Popen(
                [str(spark_home() / "bin" / "spark-class"), *args],
                env=self._daemon_env(),
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() signals the group
            )
        finally:
            out.close()  # the child holds its own descriptor
        log.info("spark standalone %s started (pid %d)", name, self.procs[name].pid)

    def start(self, timeout_s: float = 90.0) -> StandaloneCluster:
        """Start the master, then the worker; return once the worker is registered ALIVE."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._spawn(
            "master",
            [MASTER_CLASS, "--host", HOST, "--port", str(self.master_port), "--webui-port", str(self.master_ui_port)],
        )
        deadline = time.monotonic() + timeout_s
        self._wait(lambda state: state is not None, deadline, "the master web UI")
        self._spawn(
            "worker",
            [
                WORKER_CLASS,
                self.master_url,
                "--host",
                HOST,
                "--cores",
                str(self.cores),
                "--memory",
                self.memory,
                "--webui-port",
                str(self.worker_ui_port),
                "--work-dir",
                str(self.work_dir),
            ],
        )
        self._wait(lambda state: bool(state and self.alive_workers(state)), deadline, "an ALIVE worker")
        log.info("spark standalone cluster up at %s (UI %s)", self.master_url, self.master_ui_url)
        return self

    def _wait(self, ready, deadline: float, what: str) -> None:
        while True:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise ClusterError(f"spark {name} exited with {proc.returncode}\n{self.log_tail(name)}")
            state = self.state()
            if ready(state):
                return
            if time.monotonic() > deadline:
                name = "worker" if "worker" in self.procs else "master"
                raise ClusterError(f"timed out waiting for {what}\n{self.log_tail(name)}")
            time.sleep(0.5)

    def state(self) -> dict | None:
        """The master's JSON status (workers, active and completed apps), or None if not reachable."""
        try:
            with urllib.request.urlopen(f"{self.master_ui_url}/json/", timeout=5) as resp:
                return json.loads(resp.read())
        except (OSError, urllib.error.URLError, ValueError):
            return None

    def alive_workers(self, state: dict | None = None) -> list[dict]:
        state = self.state() if state is None else state
        return [w for w in (state or {}).get("workers", []) if w.get("state") == "ALIVE"]

    def applications(self) -> list[dict]:
        """Every application the master has seen (active first, then completed)."""
        state = self.state() or {}
        return list(state.get("activeapps", [])) + list(state.get("completedapps", []))

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.log_dir / f"{name}.out"
        if not path.exists():
            return f"(no log {path})"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, grace_s: float = 15.0) -> None:
        """Stop the worker (with its executors), then the master: SIGTERM to each process group,
        SIGKILL to whatever of the group is left after ``grace_s``. Safe to call twice."""
        for name in ("worker", "master"):
            proc = self.procs.pop(name, None)
            if proc is None:
                continue
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                log.warning("spark %s (pid %d) ignored SIGTERM for %.0f s; killing it", name, proc.pid, grace_s)
            _signal_group(proc.pid, signal.SIGKILL)  # stragglers of the group (executors, python workers)
            proc.wait(timeout=30)
            log.info("spark standalone %s stopped (exit %s)", name, proc.returncode)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone


def start_cluster(
    root: Path,
    cores: int = 2,
    memory: str = "1g",
    app_cores: int | None = None,
    timeout_s: float = 90.0,
    attempts: int = 3,
) -> StandaloneCluster:
    """Start a master and one worker under ``root`` (see :class:`StandaloneCluster`); a failed start
    (e.g. a port taken between picking and binding it) is stopped and retried on new ports, up to
    ``attempts`` times."""
    for attempt in range(1, attempts + 1):
        cluster = StandaloneCluster(Path(root) / f"attempt-{attempt}", cores=cores, memory=memory, app_cores=app_cores)
        try:
            return cluster.start(timeout_s)
        except BaseException as exc:
            cluster.stop()
            if attempt == attempts or not isinstance(exc, ClusterError):
                raise
            log.warning("spark standalone start failed (attempt %d of %d): %s", attempt, attempts, exc)
    raise AssertionError("unreachable")


@contextmanager
def standalone_cluster(
    root: Path, cores: int = 2, memory: str = "1g", app_cores: int | None = None, timeout_s: float = 90.0
) -> Iterator[StandaloneCluster]:
    """A running cluster for the ``with`` block; master and worker are stopped on exit, also on errors."""
    cluster = start_cluster(root, cores=cores, memory=memory, app_cores=app_cores, timeout_s=timeout_s)
    try:
        yield cluster
    finally:
        cluster.stop()
