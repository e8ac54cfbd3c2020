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


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time (Airflow and pytest swap it per task/test)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; the property decides
        pass


def setup(level: int = logging.INFO) -> logging.Logger:
    """Route the ``sie`` logger to stderr with the ``[sie]`` format (idempotent)."""
    logger = logging.getLogger("sie")
    logger.setLevel(level)
    if not any(getattr(h, "_sie", False) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        handler._sie = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False  # one line per message, also under Airflow's root handler
    return logger


@contextmanager
def timed(log: logging.Logger, what: str) -> Iterator[None]:
    """Log ``what ...`` and ``what done in N s`` around a block."""
    log.info("%s ...", what)
    start = time.perf_counter()
    yield
    log.info("%s done in %.1fs", what, time.perf_counter() - start)
