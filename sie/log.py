"""The one logging path: every module logs through ``logging`` under the ``sie`` logger.

``setup()`` is called once by each entry point (CLI, jobs, DAG tasks); it routes the
``sie`` logger to stderr with the ``[sie]`` prefix. Libraries never print; the CLI
prints results.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

FORMAT = "[sie] %(message)s"


class _StdHandler(logging.StreamHandler):
    """Writes to whatever ``sys.<target>`` is at emit time (Airflow and pytest swap them per task/test)."""

    target = "stderr"

    @property
    def stream(self):  # type: ignore[override]
        return getattr(sys, self.target)

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; the property decides
        pass


def setup(level: int = logging.INFO, target: str = "stderr") -> logging.Logger:
    """Route the ``sie`` logger to ``sys.<target>`` with the ``[sie]`` format (idempotent).

    The CLI logs to stderr (its results go to stdout); Airflow tasks log to stdout, which
    the task log records at level info (stderr would be recorded as errors).
    """
    if target not in ("stderr", "stdout"):
        raise ValueError(f"log target must be stderr or stdout, got {target!r}")
    logger = logging.getLogger("sie")
    logger.setLevel(level)
    handler = next((h for h in logger.handlers if isinstance(h, _StdHandler)), None)
    if handler is None:
        handler = _StdHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        logger.addHandler(handler)
        logger.propagate = False  # one line per message, also under Airflow's root handler
    handler.target = target
    return logger


@contextmanager
def timed(log: logging.Logger, what: str) -> Iterator[None]:
    """Log ``what ...`` and ``what done in N s`` around a block."""
    log.info("%s ...", what)
    start = time.perf_counter()
    yield
    log.info("%s done in %.1fs", what, time.perf_counter() - start)
