"""Malformed raw lines, injected on purpose so the ingester's quarantine can be tested.

With ``simulate.bad_records = N`` every (source, kind) pair below gets N extra lines,
inserted at seeded random places. They are *additional* lines (copies of real lines,
then broken), so the simulated truth in the oracle is unchanged: a correct ingester
quarantines every one of them and accepts everything else. Each injected line is
listed in ``raw/_injected/ds=D/bad_records.json`` with source, file, 1-based line
number, kind and the raw line verbatim.

Kinds (source):
  broken_json (queries, events)          line cut in half: not parseable JSON
  missing_required (queries, events)     queries lose query_id / user_query / timestamp;
                                         events lose action_name / timestamp
  wrong_type (queries, events)           queries: timestamp is a boolean; events:
                                         position.ordinal is a word, or timestamp a boolean
  impossible_position (events)           ordinal 0, negative, or beyond the hit list
  unknown_query_id (events)              a click for a query_id no query document has
  timestamp_out_of_range (queries, events)  timestamp 400 days before or 30 days after ds
  duplicate_id (queries)                 a second, different query document reusing an
                                         existing query_id, timestamped later (keep the first)
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np

from sie.config import SimulateConfig
from sie.simulate.behaviour import DayLog, ds_int
from sie.simulate.world import WORLD_TAGS, World, _uuid

KINDS: dict[str, tuple[str, ...]] = {
    "ubi_queries": ("broken_json", "missing_required", "wrong_type", "timestamp_out_of_range", "duplicate_id"),
    "ubi_events": (
        "broken_json",
        "missing_required",
        "wrong_type",
        "impossible_position",
        "unknown_query_id",
        "timestamp_out_of_range",
    ),
}
ALL_KINDS = tuple(sorted({k for ks in KINDS.values() for k in ks}))
FILE_NAME = "part-00000.ndjson.gz"


def _dump(doc: dict) -> str:
    return json.dumps(doc, separators=(",", ":"))


def _fmt(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _shift_ts(ts: str, days: int) -> str:
    return _fmt(dt.datetime.fromisoformat(ts.replace("Z", "+00:00")) + dt.timedelta(days=days))


def _make(source: str, kind: str, i: int, line: str, g: np.random.Generator, K: int) -> str:
    if kind == "broken_json":
        return line[: max(1, len(line) // 2)]
    doc = json.loads(line)
    if source == "ubi_queries":
        if kind == "missing_required":
            doc.pop(("query_id", "user_query", "timestamp")[i % 3])
        elif kind == "wrong_type":
            doc["timestamp"] = True
        elif kind == "timestamp_out_of_range":
            doc["timestamp"] = _shift_ts(doc["timestamp"], -400 if i % 2 == 0 else 30)
        elif kind == "duplicate_id":
            doc["user_query"] = doc["user_query"] + " duplicate"
            t = dt.datetime.fromisoformat(doc["timestamp"].replace("Z", "+00:00"))
            later = min(t + dt.timedelta(seconds=1), t.replace(hour=23, minute=59, second=59, microsecond=999000))
            doc["timestamp"] = _fmt(later)
            doc["query_response_id"] = _uuid(g.bytes(16).hex())
        else:
            raise ValueError(kind)
        return _dump(doc)
    if kind == "missing_required":
        doc.pop(("action_name", "timestamp")[i % 2])
    elif kind == "wrong_type":
        if i % 2 == 0:
            doc["event_attributes"]["position"]["ordinal"] = "third"
        else:
            doc["timestamp"] = True
    elif kind == "impossible_position":
        doc["event_attributes"]["position"]["ordinal"] = (0, -1, K + 1 + int(g.integers(0, 100)))[i % 3]
    elif kind == "unknown_query_id":
        doc["action_name"] = "click"
        doc["query_id"] = _uuid(g.bytes(16).hex())
        doc["event_attributes"]["dwell_time"] = 12.5
    elif kind == "timestamp_out_of_range":
        doc["timestamp"] = _shift_ts(doc["timestamp"], -400 if i % 2 == 0 else 30)
    else:
        raise ValueError(kind)
    return _dump(doc)


def inject_bad_records(
    world: World, log: DayLog, qlines: list[str], elines: list[str], sim: SimulateConfig
) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """Return (queries, events, sidecar entries) with ``sim.bad_records`` lines per (source, kind)."""
    n = int(sim.bad_records)
    g = np.random.default_rng(np.random.SeedSequence([sim.seed, WORLD_TAGS[sim.world], ds_int(log.ds), 99]))
    out: dict[str, list[str]] = {}
    sidecar: list[dict[str, Any]] = []
    for source, lines in (("ubi_queries", qlines), ("ubi_events", elines)):
        kinds = KINDS[source]
        bad: list[tuple[str, str]] = []
        # distinct real lines as templates (every event line carries a position)
        pool = np.arange(len(lines))
        picks = g.choice(pool, size=min(len(pool), n * len(kinds)), replace=False)
        seen = set(lines)
        for j, (kind, i) in enumerate((k, i) for k in kinds for i in range(n)):
            line = _make(source, kind, i, lines[int(picks[j % len(picks)])], g, log.K)
            while line in seen:  # must never equal another line (exact duplicates are retries)
                line = line + " "
            seen.add(line)
            bad.append((kind, line))
        where = np.sort(g.integers(0, len(lines) + 1, size=len(bad)))
        order = g.permutation(len(bad))
        merged: list[str] = []
        prev = 0
        for slot, b in zip(where.tolist(), order.tolist()):
            merged.extend(lines[prev:slot])
            prev = slot
            kind, line = bad[b]
            merged.append(line)
            sidecar.append({"source": source, "file": FILE_NAME, "line_no": len(merged), "kind": kind, "raw": line})
        merged.extend(lines[prev:])
        out[source] = merged
    return out["ubi_queries"], out["ubi_events"], sidecar
