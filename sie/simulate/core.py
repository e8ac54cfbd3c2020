"""Write one simulated day into the raw landing contract (docs/RAW_CONTRACT.md)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sie.config import SieConfig
from sie.simulate import ubi
from sie.simulate.behaviour import LABEL_NOISE, NOISE_CODE, NOISE_TYPES, DayLog, simulate_traffic
from sie.simulate.world import World, get_world
from sie.store import Warehouse

QUERIES_FILE = "part-00000.ndjson.gz"
EVENTS_FILE = "part-00000.ndjson.gz"
ORACLE_ITEMS = Path("oracle") / "_world" / "items.parquet"


def _check_ds(ds: str) -> str:
    try:
        dt.date.fromisoformat(ds)
    except ValueError as exc:
        raise ValueError(f"ds must be YYYY-MM-DD, got {ds!r}") from exc
    return ds


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write atomically (temp file + rename); same table → same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def _clear_day(folder: Path) -> None:
    if folder.exists():
        for f in folder.iterdir():
            if f.is_file():
                f.unlink()


def sample_ids(query_ids: list[str], item_ids: list[str]) -> list[str]:
    """:func:`sie.schemas.sample_id` for many rows (same formula, inlined for speed)."""
    sha = hashlib.sha256
    return [sha(f"{q}|{i}".encode()).hexdigest()[:16] for q, i in zip(query_ids, item_ids)]


def oracle_table(world: World, log: DayLog) -> pa.Table:
    """One row per impression, requests in time order, positions 1..K."""
    order = np.argsort(log.req_ts, kind="stable")
    K = log.K
    qid = np.repeat(log.query_ids[order], K).tolist()
    items = world.item_ids[log.imp_item[order]].ravel().tolist()
    noise = log.noise[order].ravel()
    names = np.array(NOISE_TYPES, dtype=object)
    label_noise = np.isin(noise, [NOISE_CODE[n] for n in LABEL_NOISE])
    return pa.table(
        {
            "sample_id": pa.array(sample_ids(qid, items), pa.string()),
            "query_id": pa.array(qid, pa.string()),
            "item_id": pa.array(items, pa.string()),
            "true_grade": pa.array(log.imp_grade[order].ravel().astype(np.int32), pa.int32()),
            "noise_type": pa.array(names[noise].tolist(), pa.string()),
            "is_noise": pa.array(label_noise, pa.bool_()),
            "position": pa.array(np.tile(np.arange(1, K + 1, dtype=np.int32), len(order)), pa.int32()),
            "label": pa.array(log.label()[order].ravel(), pa.int32()),
        }
    )


def world_items_table(world: World) -> pa.Table:
    """Hidden per-item truth (latent quality, clickbait flag): for analysis, never for training."""
    return pa.table(
        {
            "item_id": pa.array(world.item_ids.tolist(), pa.string()),
            "quality": pa.array(world.quality, pa.float64()),
            "clickbait": pa.array(world.clickbait, pa.bool_()),
        }
    )


def simulate_day(cfg: SieConfig, ds: str) -> dict[str, Any]:
    """Simulate one day and land it under ``cfg.warehouse``; returns a summary dict.

    Writes (replacing any previous output for ``ds``): UBI query and event NDJSON (gzip),
    the catalog, the judged holdout (fixed per world and seed), the oracle, and — when
    ``simulate.bad_records`` > 0 — the sidecar ``raw/_injected/ds=D/bad_records.json``.
    """
    return run_day(cfg, ds)[0]


def run_day(cfg: SieConfig, ds: str, timings: dict[str, float] | None = None) -> tuple[dict[str, Any], World, DayLog]:
    """:func:`simulate_day` returning also the world and the day's arrays; ``timings`` gets seconds per stage."""
    from sie.simulate.bad_records import inject_bad_records

    clock = _Clock(timings)
    _check_ds(ds)
    sim = cfg.simulate
    wh = Warehouse.from_config(cfg)
    world = get_world(sim)
    clock("world")
    log = simulate_traffic(world, sim, ds)
    clock("traffic")

    qlines = ubi.query_lines(world, log)
    elines = ubi.event_lines(world, log)
    injected: list[dict[str, Any]] = []
    if sim.bad_records > 0:
        q, e, injected = inject_bad_records(world, log, ubi.to_pylines(qlines), ubi.to_pylines(elines), sim)
        qlines, elines = ubi.from_pylines(q), ubi.from_pylines(e)
    clock("serialise")

    qdir, edir = wh.raw_dir("ubi_queries", ds), wh.raw_dir("ubi_events", ds)
    inj_path = wh.root / "raw" / "_injected" / f"ds={ds}" / "bad_records.json"
    for d in (qdir, edir):
        _clear_day(d)
    ubi.write_ndjson_gz(qdir / QUERIES_FILE, qlines, sim.compress_level)
    ubi.write_ndjson_gz(edir / EVENTS_FILE, elines, sim.compress_level)
    if injected:
        inj_path.parent.mkdir(parents=True, exist_ok=True)
        inj_path.write_text(json.dumps(injected, indent=1, sort_keys=True) + "\n")
    elif inj_path.exists():
        inj_path.unlink()
    clock("gzip_write")

    write_parquet(world.catalog, wh.catalog_path)
    write_parquet(world.holdout, wh.holdout_path)
    write_parquet(world_items_table(world), wh.root / ORACLE_ITEMS)
    oracle = oracle_table(world, log)
    write_parquet(oracle, wh.oracle_path(ds))
    clock("oracle_catalog_holdout")

    noise_counts = {n: int((log.noise == NOISE_CODE[n]).sum()) for n in NOISE_TYPES}
    summary = {
        "ds": ds,
        "world": sim.world,
        "seed": sim.seed,
        "sessions": int(len(log.session_ids)),
        "requests": int(log.R),
        "bot_requests": int(log.req_bot.sum()),
        "impressions": int(log.R * log.K),
        "clicks": int(log.click.sum()),
        "add_to_cart": int(log.cart.sum()),
        "purchases": int(log.purchase.sum()),
        "query_lines": len(qlines),
        "event_lines": len(elines),
        "duplicate_lines": int(log.ev_copy.sum()),
        "bad_records": len(injected),
        "noise": noise_counts,
        "paths": {
            "queries": str(qdir / QUERIES_FILE),
            "events": str(edir / EVENTS_FILE),
            "catalog": str(wh.catalog_path),
            "holdout": str(wh.holdout_path),
            "oracle": str(wh.oracle_path(ds)),
            **({"bad_records": str(inj_path)} if injected else {}),
        },
    }
    return summary, world, log


class _Clock:
    def __init__(self, sink: dict[str, float] | None):
        self.sink, self.t = sink, time.perf_counter()

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        if self.sink is not None:
            self.sink[stage] = round(self.sink.get(stage, 0.0) + now - self.t, 3)
        self.t = now


def day_range(start: str, days: int) -> list[str]:
    d0 = dt.date.fromisoformat(_check_ds(start))
    return [(d0 + dt.timedelta(days=i)).isoformat() for i in range(int(days))]


def simulate_days(cfg: SieConfig, start: str, days: int) -> list[dict[str, Any]]:
    """Simulate ``days`` consecutive days from ``start``; writes ``raw/_meta/simulate_config.json``."""
    wh = Warehouse.from_config(cfg)
    meta = wh.root / "raw" / "_meta" / "simulate_config.json"
    meta.parent.mkdir(parents=True, exist_ok=True)
    get_world(cfg.simulate)  # fail early (e.g. missing ESCI data) before writing anything else
    # exactly cfg.to_dict(): the file can be fed back as SIE_CONFIG to reproduce the run
    meta.write_text(json.dumps(cfg.to_dict(), indent=2, sort_keys=True) + "\n")
    return [simulate_day(cfg, ds) for ds in day_range(start, days)]
