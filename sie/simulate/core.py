"""Write one simulated day into the raw landing contract (docs/RAW_CONTRACT.md)."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sie.config import SieConfig, SimulateConfig
from sie.ds import Ds
from sie.files import write_atomic, write_text_atomic
from sie.simulate import ubi
from sie.simulate.behaviour import LABEL_NOISE, NOISE_CODE, NOISE_TYPES, DayLog, simulate_traffic
from sie.simulate.world import World, get_world
from sie.store import Warehouse

QUERIES_FILE = "part-00000.ndjson.gz"
EVENTS_FILE = "part-00000.ndjson.gz"
ORACLE_ITEMS = Path("oracle") / "_world" / "items.parquet"


def write_parquet(table: pa.Table, path: Path) -> None:
    """Write atomically (:mod:`sie.files`); same table → same bytes."""
    write_atomic(path, lambda tmp: pq.write_table(table, tmp, compression="zstd"))


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


def simulate_day(cfg: SieConfig, ds: str | Ds) -> dict[str, Any]:
    """Simulate one day and land it under ``cfg.warehouse``; returns a summary dict.

    Writes (replacing any previous output for ``ds``): UBI query and event NDJSON (gzip),
    the catalog, the judged holdout (fixed per world and seed), the oracle, and — when
    ``simulate.bad_records`` > 0 — the sidecar ``raw/_injected/ds=D/bad_records.json``.
    """
    return simulate_day_with_arrays(cfg, ds)[0]


@dataclass(frozen=True)
class _RawDay:
    """One day's raw UBI lines (Arrow strings, newline-terminated) and the injected bad records."""

    queries: pa.Array
    events: pa.Array
    injected: list[dict[str, Any]]


@dataclass(frozen=True)
class _DayPaths:
    """Where one day lands in the warehouse."""

    queries: Path
    events: Path
    bad_records: Path

    @classmethod
    def of(cls, wh: Warehouse, ds: Ds) -> _DayPaths:
        return cls(
            queries=wh.raw_dir("ubi_queries", ds) / QUERIES_FILE,
            events=wh.raw_dir("ubi_events", ds) / EVENTS_FILE,
            bad_records=wh.root / "raw" / "_injected" / f"ds={ds}" / "bad_records.json",
        )


def _serialise(world: World, log: DayLog, sim: SimulateConfig) -> _RawDay:
    """The day as UBI NDJSON lines, with ``sim.bad_records`` malformed lines per kind mixed in."""
    from sie.simulate.bad_records import inject_bad_records

    qlines = ubi.query_lines(world, log)
    elines = ubi.event_lines(world, log)
    if sim.bad_records <= 0:
        return _RawDay(qlines, elines, [])
    q, e, injected = inject_bad_records(world, log, ubi.to_pylines(qlines), ubi.to_pylines(elines), sim)
    return _RawDay(ubi.from_pylines(q), ubi.from_pylines(e), injected)


def _write_raw(raw: _RawDay, paths: _DayPaths, compress_level: int) -> None:
    """Replace the day's raw files; the bad-records sidecar exists only when lines were injected."""
    for d in (paths.queries.parent, paths.events.parent):
        _clear_day(d)
    ubi.write_ndjson_gz(paths.queries, raw.queries, compress_level)
    ubi.write_ndjson_gz(paths.events, raw.events, compress_level)
    if raw.injected:
        write_text_atomic(paths.bad_records, json.dumps(raw.injected, indent=1, sort_keys=True) + "\n")
    elif paths.bad_records.exists():
        paths.bad_records.unlink()


def _write_world_and_oracle(world: World, log: DayLog, wh: Warehouse) -> None:
    """The catalog, the holdout and the hidden item truth (fixed per world), and the day's oracle."""
    write_parquet(world.catalog, wh.catalog_path)
    write_parquet(world.holdout, wh.holdout_path)
    write_parquet(world_items_table(world), wh.root / ORACLE_ITEMS)
    write_parquet(oracle_table(world, log), wh.oracle_path(log.ds))


def _summary(sim: SimulateConfig, log: DayLog, raw: _RawDay, paths: _DayPaths, wh: Warehouse) -> dict[str, Any]:
    return {
        "ds": log.ds,
        "world": sim.world,
        "seed": sim.seed,
        "sessions": int(len(log.session_ids)),
        "requests": int(log.R),
        "bot_requests": int(log.req_bot.sum()),
        "impressions": int(log.R * log.K),
        "clicks": int(log.click.sum()),
        "add_to_cart": int(log.cart.sum()),
        "purchases": int(log.purchase.sum()),
        "query_lines": len(raw.queries),
        "event_lines": len(raw.events),
        "duplicate_lines": int(log.ev_copy.sum()),
        "bad_records": len(raw.injected),
        "noise": {n: int((log.noise == NOISE_CODE[n]).sum()) for n in NOISE_TYPES},
        "paths": {
            "queries": str(paths.queries),
            "events": str(paths.events),
            "catalog": str(wh.catalog_path),
            "holdout": str(wh.holdout_path),
            "oracle": str(wh.oracle_path(log.ds)),
            **({"bad_records": str(paths.bad_records)} if raw.injected else {}),
        },
    }


def simulate_day_with_arrays(
    cfg: SieConfig, ds: str | Ds, timings: dict[str, float] | None = None
) -> tuple[dict[str, Any], World, DayLog]:
    """:func:`simulate_day` returning also the world and the day's arrays; ``timings`` gets seconds per stage."""
    clock = _Clock(timings)
    ds = Ds(ds)
    sim = cfg.simulate
    wh = Warehouse.from_config(cfg)
    world = get_world(sim)
    clock("world")
    log = simulate_traffic(world, sim, ds)
    clock("traffic")
    raw = _serialise(world, log, sim)
    clock("serialise")
    paths = _DayPaths.of(wh, ds)
    _write_raw(raw, paths, sim.compress_level)
    clock("gzip_write")
    _write_world_and_oracle(world, log, wh)
    clock("oracle_catalog_holdout")
    return _summary(sim, log, raw, paths, wh), world, log


class _Clock:
    def __init__(self, sink: dict[str, float] | None):
        self.sink, self.t = sink, time.perf_counter()

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        if self.sink is not None:
            self.sink[stage] = round(self.sink.get(stage, 0.0) + now - self.t, 3)
        self.t = now


def simulate_days(cfg: SieConfig, start: str | Ds, days: int) -> list[dict[str, Any]]:
    """Simulate ``days`` consecutive days from ``start``; writes ``raw/_meta/simulate_config.json``."""
    dss = Ds.span(start, days)
    wh = Warehouse.from_config(cfg)
    meta = wh.root / "raw" / "_meta" / "simulate_config.json"
    get_world(cfg.simulate)  # fail early (e.g. bad start day, missing ESCI data) before writing anything
    # exactly cfg.to_dict(): the file can be fed back as SIE_CONFIG to reproduce the run
    write_text_atomic(meta, json.dumps(cfg.to_dict(), indent=2, sort_keys=True) + "\n")
    return [simulate_day(cfg, ds) for ds in dss]
