"""Serialise a :class:`DayLog` as UBI 1.3.0 NDJSON and write deterministic gzip files.

Lines are assembled column-wise with Arrow string kernels (no per-line Python work),
which is what keeps a million-impression day well inside a minute. Every line returned
here ends with ``\\n``. All string values are plain identifiers except ``user_query``,
which is JSON-escaped with :func:`json.dumps`.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sie.files import atomic_path
from sie.simulate.behaviour import ACTIONS, DayLog
from sie.simulate.world import World

APPLICATION = "sie-sim"
MESSAGE_TYPES = {
    "impression": "INTERACTION",
    "click": "INTERACTION",
    "add_to_cart": "CONVERSION",
    "purchase": "CONVERSION",
}


def _s(x: str) -> pa.Scalar:
    return pa.scalar(x, pa.large_string())


def _join(*parts) -> pa.Array:
    """Element-wise concatenation of string arrays / scalars, as large strings (a 10M-impression
    day's event lines hold more than the 2 GiB a plain string array can)."""
    arrays = [_s(p) if isinstance(p, str) else p.cast(pa.large_string()) for p in parts]
    return pc.binary_join_element_wise(*arrays, _s(""))


_HMS = pa.array([f"{h:02d}:{m:02d}:{x:02d}" for h in range(24) for m in range(60) for x in range(60)], pa.string())
_MS = pa.array([f".{i:03d}Z" for i in range(1000)], pa.string())


def iso_timestamps(ds: str, seconds: np.ndarray) -> pa.Array:
    """Seconds since midnight UTC of ``ds`` (clipped into the day) → ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    ms = np.clip(np.floor(np.asarray(seconds, dtype=np.float64) * 1000.0), 0, 86_399_999).astype(np.int64)
    return _join(f"{ds}T", _HMS.take(pa.array(ms // 1000)), _MS.take(pa.array(ms % 1000)))


def _strings(values) -> pa.Array:
    return pa.array(np.asarray(values, dtype=object), pa.string())


def _user_part(log: DayLog) -> pa.Array:
    """Per session: ``,"user_id":"…"`` for logged-in users, else empty."""
    uid = _strings(log.session_user_id)
    return pc.fill_null(_join(',"user_id":"', uid, '"'), _s(""))


def query_lines(world: World, log: DayLog) -> pa.Array:
    """One UBI query document per request, in time order."""
    order = np.argsort(log.req_ts, kind="stable")
    sess = log.req_session[order]
    uq = _strings([json.dumps(t) for t in world.intent_text]).take(pa.array(log.req_intent[order]))
    hits = _strings(world.item_ids).take(pa.array(log.imp_item[order].ravel()))
    hit_lists = pa.ListArray.from_arrays(pa.array(np.arange(0, len(hits) + 1, log.K, dtype=np.int32)), hits)
    return _join(
        '{"query_id":"',
        _strings(log.query_ids[order]),
        '","user_query":',
        uq,
        ',"timestamp":"',
        iso_timestamps(log.ds, log.req_ts[order]),
        '","client_id":"',
        _strings(log.session_client[sess]),
        '","application":"' + APPLICATION + '","query_response_id":"',
        _strings(log.response_ids[order]),
        '","query_response_hit_ids":["',
        pc.binary_join(hit_lists, pa.scalar('","', pa.string())),
        '"],"object_id_field":"item_id","query_attributes":{"session_id":"',
        _strings(log.session_ids[sess]),
        '"',
        _user_part(log).take(pa.array(sess)),
        "}}\n",
    )


def event_lines(world: World, log: DayLog) -> pa.Array:
    """All event lines in file order (impressions, clicks, add_to_cart, purchases; retries included)."""
    req = pa.array(log.ev_req)
    sess = pa.array(log.req_session[log.ev_req])
    act = pa.array(log.ev_action.astype(np.int32))
    is_click = log.ev_action == 1
    dwell = np.where(is_click, log.dwell[log.ev_req, log.ev_pos], np.nan)
    dwell_s = pc.cast(pc.round(pa.array(dwell, from_pandas=True), 3), pa.string())
    extra = pc.fill_null(_join(',"dwell_time":', dwell_s), _s(""))
    return _join(
        '{"action_name":"',
        _strings(ACTIONS).take(act),
        '","application":"' + APPLICATION + '","query_id":"',
        _strings(log.query_ids).take(req),
        '","client_id":"',
        _strings(log.session_client).take(sess),
        '","session_id":"',
        _strings(log.session_ids).take(sess),
        '"',
        _user_part(log).take(sess),
        ',"timestamp":"',
        iso_timestamps(log.ds, log.ev_ts),
        '","message_type":"',
        _strings([MESSAGE_TYPES[a] for a in ACTIONS]).take(act),
        '","event_attributes":{"object":{"object_id":"',
        _strings(world.item_ids).take(pa.array(log.imp_item[log.ev_req, log.ev_pos])),
        '","object_id_field":"item_id"},"position":{"ordinal":',
        pc.cast(pa.array(log.ev_pos + 1), pa.string()),
        "}",
        extra,
        "}}\n",
    )


def to_pylines(lines: pa.Array) -> list[str]:
    """Arrow lines → Python strings without the trailing newline."""
    return [s[:-1] for s in lines.to_pylist()]


def from_pylines(lines: list[str]) -> pa.Array:
    return pa.array([s + "\n" for s in lines], pa.string())


def _payload(lines: pa.Array):
    """The bytes of newline-terminated string array ``lines`` laid end to end (zero copy)."""
    if len(lines) == 0:
        return b""
    lines = lines.cast(pa.large_string()) if lines.type != pa.large_string() else lines
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)
    start, end = int(offsets[lines.offset]), int(offsets[lines.offset + len(lines)])
    return memoryview(lines.buffers()[2])[start:end]


def write_ndjson_gz(path: Path, lines: pa.Array, level: int = 6) -> None:
    """Write newline-terminated lines as gzip NDJSON atomically; same lines → same bytes (mtime 0)."""
    comp = zlib.compressobj(level, zlib.DEFLATED, 31)  # 31: gzip container, mtime 0, no file name
    step = 1 << 20
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        for i in range(0, len(lines), step):
            fh.write(comp.compress(_payload(lines.slice(i, step))))
        fh.write(comp.flush())
