"""Fault injection: the one named mechanism tests and fault drills use to break a run on purpose.

Production code marks a few named points with ``faults.point("<step>.<where>")``. They
do nothing unless ``SIE_FAULTS`` names them::

    SIE_FAULTS="ingest.staged.queries=pause,train.start=fail_once"

Actions:

- ``fail``: raise :class:`InjectedFault` every time;
- ``fail_once``: raise the first time only (a marker under ``SIE_FAULTS_STATE`` remembers
  it), so a retried task then succeeds;
- ``pause``: write ``<SIE_FAULTS_STATE>/<point>.paused`` and sleep (a test kills the process);
- ``kill``: SIGKILL this process at once.

``SIE_FAULTS_STATE`` is a folder (default: the system temp folder). The points are
listed in ``POINTS`` and documented in docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path

ENV = "SIE_FAULTS"
STATE_ENV = "SIE_FAULTS_STATE"
ACTIONS = ("fail", "fail_once", "pause", "kill")

#: every point production code marks (a test checks each is reachable by name)
POINTS = (
    "ingest.staged.events",
    "ingest.staged.queries",
    "ingest.staged.quarantine",
    "ingest.staged.samples",
    "ingest.staged.reconciliation",
    "ingest.committed.events",
    "ingest.committed.queries",
    "ingest.committed.quarantine",
    "ingest.committed.samples",
    "ingest.committed.reconciliation",
    "train.start",
    "score.start",
    "evaluate.start",
)


class InjectedFault(RuntimeError):
    """Raised at a fault point named in ``SIE_FAULTS``."""


def configured() -> dict[str, str]:
    """``{point: action}`` from ``SIE_FAULTS`` (unknown points or actions fail loudly)."""
    spec = os.environ.get(ENV, "").strip()
    out: dict[str, str] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, sep, action = item.partition("=")
        if not sep or action not in ACTIONS:
            raise ValueError(f"{ENV}: expected POINT=ACTION with ACTION in {ACTIONS}, got {item!r}")
        if name not in POINTS:
            raise ValueError(f"{ENV}: unknown fault point {name!r}; known: {', '.join(POINTS)}")
        out[name] = action
    return out


def state_dir() -> Path:
    path = Path(os.environ.get(STATE_ENV) or tempfile.gettempdir())
    path.mkdir(parents=True, exist_ok=True)
    return path


def point(name: str) -> None:
    """A named fault point: a no-op unless ``SIE_FAULTS`` configures it."""
    if name not in POINTS:
        raise ValueError(f"fault point {name!r} is not declared in sie.faults.POINTS")
    action = configured().get(name)
    if action is None:
        return
    if action == "fail":
        raise InjectedFault(f"injected fault at {name}")
    if action == "fail_once":
        marker = state_dir() / f"{name}.failed"
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            raise InjectedFault(f"injected fault at {name} (once)")
        return
    if action == "pause":
        (state_dir() / f"{name}.paused").write_text(str(os.getpid()))
        time.sleep(600)
        return
    os.kill(os.getpid(), signal.SIGKILL)
