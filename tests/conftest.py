"""Shared fixtures: one real local Spark session per test run, temporary warehouses."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = (ROOT.parent / "shared" / "data").resolve()

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


@pytest.fixture(scope="session")
def spark():
    """The one local SparkSession for the whole test run (start-up costs ~6 s)."""
    from sie.config import SieConfig
    from sie.spark import get_spark

    session = get_spark(SieConfig.load({"ingest": {"spark_master": "local[2]", "shuffle_partitions": 2}}))
    yield session
    session.stop()


@pytest.fixture
def warehouse(tmp_path):
    """An empty warehouse root for one test."""
    root = tmp_path / "warehouse"
    root.mkdir()
    return root


@pytest.fixture
def cfg(warehouse):
    """A small config pointed at the temporary warehouse."""
    from sie.config import SieConfig

    return SieConfig.load(
        {
            "warehouse": str(warehouse),
            "simulate": {"requests_per_day": 300, "n_items": 300, "n_users": 200, "n_intents": 60},
            "train": {"epochs": 2, "batch_size": 256, "window_days": 2},
        }
    )


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"reference data not found at {SHARED_DATA}")
    return SHARED_DATA
