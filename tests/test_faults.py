"""The one fault-injection mechanism (sie.faults): parsing, actions, and that every point is marked in code."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sie import faults

ROOT = Path(__file__).resolve().parent.parent


def test_unset_points_do_nothing(monkeypatch):
    monkeypatch.delenv(faults.ENV, raising=False)
    for name in faults.POINTS:
        faults.point(name)


def test_bad_specs_and_undeclared_points_fail_loudly(monkeypatch):
    monkeypatch.setenv(faults.ENV, "train.start=explode")
    with pytest.raises(ValueError, match="ACTION"):
        faults.point("train.start")
    monkeypatch.setenv(faults.ENV, "nowhere=fail")
    with pytest.raises(ValueError, match="unknown fault point 'nowhere'"):
        faults.configured()
    monkeypatch.delenv(faults.ENV)
    with pytest.raises(ValueError, match="not declared"):
        faults.point("nowhere")


def test_fail_and_fail_once(monkeypatch, tmp_path):
    monkeypatch.setenv(faults.STATE_ENV, str(tmp_path))
    monkeypatch.setenv(faults.ENV, "score.start=fail, train.start=fail_once")
    for _ in range(2):
        with pytest.raises(faults.InjectedFault):
            faults.point("score.start")
    with pytest.raises(faults.InjectedFault, match="once"):
        faults.point("train.start")
    faults.point("train.start")  # the retry passes
    assert (tmp_path / "train.start.failed").exists()


def test_pause_announces_itself_and_kill_kills(tmp_path):
    code = "from sie import faults; faults.point('evaluate.start')"
    env = {faults.ENV: "evaluate.start=pause", faults.STATE_ENV: str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=ROOT)
    try:
        deadline = time.time() + 60
        while not (tmp_path / "evaluate.start.paused").exists():
            assert proc.poll() is None and time.time() < deadline
            time.sleep(0.1)
    finally:
        proc.kill()
        proc.wait()
    env[faults.ENV] = "evaluate.start=kill"
    assert subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT).returncode == -9


def test_every_declared_point_is_marked_in_the_code():
    source = "\n".join(p.read_text() for p in (ROOT / "sie").rglob("*.py") if p.name != "faults.py")
    marked = set(re.findall(r'faults\.point\("([a-z_.]+)"\)', source))
    staged = re.search(r'faults\.point\(f"ingest\.staged\.\{', source)  # one call per staged table
    committed = re.search(r'faults\.point\(f"ingest\.committed\.\{', source)  # one per committed table
    expected = {p for p in faults.POINTS if not p.startswith(("ingest.staged.", "ingest.committed."))}
    assert expected <= marked
    assert staged and committed, "ingest marks each staged and each committed table"
