"""`IngestRun`: what every stage of one day's ingest shares (config, warehouse, Spark, the day)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sie.config import IngestConfig, SieConfig
from sie.ds import Ds
from sie.ingest.day import DayWindow
from sie.store import Warehouse


@dataclass(frozen=True)
class IngestRun:
    """One ingest of one day.

    ``files``: the raw files per source; ``history_days``: the published ``samples``
    days of the trailing statistics window; ``started``: wall-clock start (``time.time()``).
    """

    cfg: SieConfig
    warehouse: Warehouse
    spark: Any
    day: DayWindow
    run_id: str
    files: dict[str, list[Path]] = field(default_factory=dict)
    history_days: list[str] = field(default_factory=list)
    started: float = 0.0

    @property
    def ds(self) -> Ds:
        return self.day.ds

    @property
    def ic(self) -> IngestConfig:
        return self.cfg.ingest
