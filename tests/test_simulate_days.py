"""The simulator's day handling (:class:`sie.ds.Ds`), atomic writes and a content fingerprint."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sie.config import SieConfig
from sie.simulate import simulate_day, simulate_days

DS = "2024-03-01"

# Content digests of every file one small day writes, taken from the simulator before its
# refactor into small functions. The same config and seed must keep producing the same data;
# if a deliberate change to the simulation alters it, update these digests in that change.
FINGERPRINT = {
    "benchmark/holdout/holdout.parquet": "871890b850907718",
    "oracle/_world/items.parquet": "4f62c4ddfff0d3fb",
    "oracle/ds=2024-03-01/oracle.parquet": "fda0eb1187a57ae5",
    "raw/_injected/ds=2024-03-01/bad_records.json": "2a87e54896ad2e68",
    "raw/catalog/catalog.parquet": "4b46c4f49e13f553",
    "raw/ubi_events/ds=2024-03-01/part-00000.ndjson.gz": "f6243c349e0e221f",
    "raw/ubi_queries/ds=2024-03-01/part-00000.ndjson.gz": "31b6580bfd4b2536",
}


def _content_digests(root: Path) -> dict[str, str]:
    """Per file: sha256 of its content (gzip decompressed, parquet as its rows), so the digest
    does not depend on the zlib or parquet writer version."""
    out = {}
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        if p.suffix == ".gz":
            data = gzip.decompress(p.read_bytes())
        elif p.suffix == ".parquet":
            data = json.dumps(pq.read_table(p).to_pydict(), sort_keys=True, default=str).encode()
        else:
            data = p.read_bytes()
        out[p.relative_to(root).as_posix()] = hashlib.sha256(data).hexdigest()[:16]
    return out


def _small(tmp_path: Path, name: str, **simulate) -> SieConfig:
    sim = {"requests_per_day": 300, "n_items": 300, "n_users": 200, "n_intents": 60, **simulate}
    return SieConfig.load({"warehouse": str(tmp_path / name), "simulate": sim})


def test_same_config_and_seed_give_the_same_data(tmp_path):
    cfg = _small(tmp_path, "fp", bad_records=1)
    simulate_day(cfg, DS)
    assert _content_digests(cfg.warehouse_path) == FINGERPRINT


def test_no_days_is_an_error_not_a_silent_no_op(tmp_path):
    with pytest.raises(ValueError, match="days must be >= 1"):
        simulate_days(_small(tmp_path, "none"), DS, 0)


def test_a_date_is_a_day(tmp_path):
    by_date = _small(tmp_path, "date")
    by_text = _small(tmp_path, "text")
    assert simulate_day(by_date, dt.date(2024, 3, 1))["ds"] == DS
    simulate_day(by_text, DS)
    assert _content_digests(by_date.warehouse_path) == _content_digests(by_text.warehouse_path)


@pytest.mark.parametrize("bad", ["20240301", "2024-02-30", "2024-3-1"])
def test_bad_days_are_rejected_before_writing(tmp_path, bad):
    cfg = _small(tmp_path, "bad")
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        simulate_day(cfg, bad)
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        simulate_days(cfg, bad, 2)
    assert not cfg.warehouse_path.exists() or not any(p.is_file() for p in cfg.warehouse_path.rglob("*"))


def test_writes_leave_no_temporary_files(tmp_path):
    cfg = _small(tmp_path, "tmp", bad_records=1)
    simulate_days(cfg, DS, 2)
    simulate_day(cfg, DS)  # a rerun replaces the day
    names = [p.name for p in cfg.warehouse_path.rglob("*") if p.is_file()]
    assert names and not [n for n in names if n.startswith(".") or n.endswith(".tmp")]
