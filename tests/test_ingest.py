"""Spark ingest: the real UBI files, hand-made messy days, empty and missing days."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from sie.config import SieConfig
from sie.store import Warehouse

DS = "2024-12-12"


def land(root: Path, ds: str, source: str, name: str, lines: list[str] | None = None, link: Path | None = None) -> Path:
    d = root / "raw" / source / f"ds={ds}"
    d.mkdir(parents=True, exist_ok=True)
    path = d / name
    if link is not None:
        path.symlink_to(link)
    elif name.endswith(".gz"):
        with gzip.open(path, "wt") as f:
            f.write("\n".join(lines or []) + "\n")
    else:
        path.write_text("\n".join(lines or []) + ("\n" if lines else ""))
    return path


def recon_ok(summary: dict) -> None:
    for row in summary["reconciliation"]:
        assert row["raw_records"] == row["accepted"] + row["quarantined"] + row["dedup_dropped"], row
        assert row["raw_lines"] == row["raw_records"] + row["blank_lines"] + row["bulk_action_lines"], row


def _json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def real_day(tmp_path_factory, shared_data, spark):
    """The real UBI files landed under one ds, ingested with a lateness wide enough to cover all their dates."""
    from sie.ingest import ingest_day

    root = tmp_path_factory.mktemp("real") / "warehouse"
    ubi = shared_data / "ubi"
    land(root, DS, "ubi_queries", "ubi_queries.json", link=ubi / "ubi_queries.json")
    land(root, DS, "ubi_events", "ubi_events.json", link=ubi / "ubi_events.json")
    cfg = SieConfig.load({"warehouse": str(root), "ingest": {"lateness_hours": 24 * 800}})
    summary = ingest_day(cfg, DS, spark=spark)
    return cfg, summary, ubi


def test_real_ubi_every_record_accounted_for(real_day):
    cfg, summary, ubi = real_day
    recon_ok(summary)
    queries, events = _json_lines(ubi / "ubi_queries.json"), _json_lines(ubi / "ubi_events.json")
    rec = {r["source"]: r for r in summary["reconciliation"]}
    assert rec["ubi_queries"]["raw_records"] == len(queries)
    assert rec["ubi_events"]["raw_records"] == len(events)
    # queries: an empty user_query is invalid; a query_id reused for another request (Chorus reuses
    # it while the user types) keeps its first document
    first: dict[str, tuple] = {}
    dup = 0
    for doc in sorted(queries, key=lambda d: d["timestamp"]):  # one format (+0000) per query_id here
        if not doc["user_query"]:
            continue
        key = (doc["user_query"], doc["client_id"])
        dup += first.setdefault(doc["query_id"], key) != key
    assert summary["quarantine_reasons"]["ubi_queries"] == {
        "missing_user_query": sum(1 for q in queries if not q["user_query"]),
        "duplicate_query_id": dup,
    }
    # events: one exact duplicate line (a logging retry) is dropped and counted
    lines = [line.strip() for line in (ubi / "ubi_events.json").read_text().splitlines() if line.strip()]
    assert rec["ubi_events"]["dedup_dropped"] == len(lines) - len(set(lines)) == 1
    assert set(summary["quarantine_reasons"]["ubi_events"]) <= {"bad_position", "unknown_query_id"}
    wh = Warehouse.from_config(cfg)
    ev = wh.read_table("events").to_pandas()
    q = wh.read_table("quarantine").to_pandas()
    assert len(ev) == rec["ubi_events"]["accepted"] and len(q) == sum(r["quarantined"] for r in rec.values())
    # lineage: every raw line is in exactly one place
    seen = set(zip(ev["file"], ev["line_no"])) | set(zip(q["file"], q["line_no"]))
    assert len(seen) == len(ev) + len(q)
    assert (q["raw"].str.len() > 0).all() and q["reason"].notna().all()
    # each quarantined event is what its reason says
    known = {d["query_id"] for d in queries} | {e["query_id"] for e in events if e["action_name"] == "impression"}
    for raw, reason in zip(q.loc[q.source == "ubi_events", "raw"], q.loc[q.source == "ubi_events", "reason"]):
        doc = json.loads(raw)
        if reason == "unknown_query_id":
            assert doc["action_name"] in ("click", "add_to_cart", "purchase") and doc["query_id"] not in known
        else:  # Chorus logs 1-based positions; a 0 is impossible
            assert doc["application"] == "Chorus" and doc["event_attributes"]["position"]["ordinal"] == 0
    # timestamps: epoch ms (ubi-demo) and ISO with Z / +0000 (Chorus) all parsed
    assert ev["event_ts"].notna().all()
    assert ev["event_ts"].min().year == 2024 and ev["event_ts"].max().year == 2025
    # positions are 1-based after the 0-based producer (esci_ubi_sample) is shifted
    assert ev["position"].dropna().min() >= 1


def test_real_ubi_samples(real_day):
    cfg, summary, _ = real_day
    s = Warehouse.from_config(cfg).read_table("samples").to_pandas()
    assert len(s) == summary["rows"]["samples"] > 0
    assert s["sample_id"].is_unique
    assert (s["label"] >= s["click"]).all() and set(s["label"]) <= {0, 1, 2, 3}
    assert s["query_text"].notna().all() and (s["position"] >= 1).all()
    from sie.schemas import sample_id

    row = s.iloc[0]
    assert row["sample_id"] == sample_id(row["query_id"], row["item_id"])
    assert s["click"].sum() == summary["sample_clicks"] > 0


def test_real_ubi_validates(real_day):
    from sie.validate import validate

    cfg, _, _ = real_day
    ev = validate(cfg, DS, "raw_events")
    sa = validate(cfg, DS, "samples")
    assert ev["success"] and sa["success"]
    vdir = Warehouse.from_config(cfg).validation_dir("samples", DS)
    assert json.loads((vdir / "result.json").read_text())["success"] is True


def test_missing_day_is_a_clear_error(cfg):
    from sie.ingest import ingest_day

    with pytest.raises(FileNotFoundError, match=r"ds=2031-01-01") as err:
        ingest_day(cfg, "2031-01-01")
    assert "raw/ubi_events/ds=2031-01-01" in str(err.value)


# ---- a hand-made messy day: every rule, each line's fate known ---------------------------

MESSY_DS = "2025-03-10"


def _q(qid, text="red shoes", client="c1", ts="2025-03-10T10:00:00Z", **kw):
    doc = {"application": "shop", "query_id": qid, "user_query": text, "client_id": client, "timestamp": ts}
    doc.update(kw)
    return json.dumps({k: v for k, v in doc.items() if v is not None})


def _e(action, qid="q1", item="i1", ordinal=1, client="c1", ts="2025-03-10T10:00:05Z", app="shop", **kw):
    attrs = {}
    if item is not None:
        attrs["object"] = {"object_id": item, "object_id_field": "sku"}
    if ordinal is not None:
        attrs["position"] = {"ordinal": ordinal}
    attrs.update(kw.pop("attrs", {}))
    doc = {
        "application": app,
        "action_name": action,
        "query_id": qid,
        "client_id": client,
        "timestamp": ts,
        "event_attributes": attrs,
    }
    doc.update(kw)
    return json.dumps({k: v for k, v in doc.items() if v is not None})


# (line, fate): fate is "accepted", "dedup", "blank", "bulk_action" or a quarantine reason code
MESSY_QUERIES = [
    (_q("q1", query_response_hit_ids=["i1", "i2", "i3"]), "accepted"),
    (_q("q1", ts="2025-03-10T10:00:00.001Z", query_response_id="facets"), "accepted"),  # 2nd response doc
    (_q("q1", text="blue hats", ts="2025-03-10T10:01:00Z"), "duplicate_query_id"),
    (_q("q2", text="lamp", client="c2", ts=1741600800000), "accepted"),  # epoch ms
    ("", "blank"),
    (_q("q3", text=""), "missing_user_query"),
    (_q("q4", ts="2025-03-10 10:00:00"), "bad_timestamp"),  # no zone
    (_q("q5", ts="2025-03-01T00:00:00Z"), "out_of_window"),
    (_q("q6", text="desk", ts="2025-03-09T20:00:00+00:00"), "accepted"),  # early, within the 6 h lateness
    (_q("q2", text="lamp", client="c2", ts=1741600800000), "dedup"),  # exact retry of line 4
    (_q("q7", ts=True), "bad_timestamp"),
]
MESSY_EVENTS = [
    (_e("impression", item="i1", ordinal=1) + "\r", "accepted"),  # CRLF line ending
    (_e("impression", item="i2", ordinal=2), "accepted"),
    (_e("click", item="i2", ordinal=2, ts="2025-03-10T10:00:09Z", attrs={"dwell_time": 30.5}), "accepted"),
    (_e("purchase", item="i2", ordinal=2, ts="2025-03-10T10:02:00Z"), "accepted"),
    (_e("impression", item="i9", ordinal=7), "bad_position"),  # beyond the 3 hits
    (_e("impression", item="i3", ordinal=0), "bad_position"),  # 0 from a 1-based producer
    (_e("impression", item="i3", ordinal="third"), "bad_position"),
    (_e("impression", item="i3", ordinal=-1), "bad_position"),
    (_e("click", qid="qX", item="i1"), "unknown_query_id"),
    (_e("impression", item=None), "missing_object_id"),
    (_e("impression", client=None), "missing_client_id"),
    (_e("impression", ordinal=None), "missing_position"),
    (_e("impression", qid=None), "missing_query_id"),
    (_e("impression", ts=None), "missing_timestamp"),
    (_e(None), "missing_action_name"),
    (_e("impression", ts="2025-03-12T00:00:00Z"), "out_of_window"),
    ('{"action_name": "impression", "query_id": "q1", "timest', "invalid_json"),
    ("[1, 2, 3]", "not_an_object"),
    ('"just a string"', "not_an_object"),
    (_e("impression", item="i1") + _e("impression", item="i2"), "invalid_json"),  # two documents glued
    (_e("click", item="i2", ordinal=2, ts="2025-03-10T10:00:09Z", attrs={"dwell_time": 30.5}), "dedup"),
    (_e("page_view", qid=None, item=None, ordinal=None), "accepted"),  # not a ranking event
    (_e("click", qid="q2", item="i7", client="c2", ordinal=3), "accepted"),  # known request, no impression
    ("   ", "blank"),
    # a producer logging 0-based ordinals (most of its requests start at 0): shifted to 1-based
    (_e("impression", qid="q8", item="i1", ordinal=0, app="legacy", client="c8", user_query="oak desk"), "accepted"),
    (_e("impression", qid="q8", item="i4", ordinal=1, app="legacy", client="c8", user_query="oak desk"), "accepted"),
]
MESSY_BULK = [  # OpenSearch bulk export: action lines before documents; search-hit exports wrap in _source
    ('{"index": {"_index": "ubi_events", "_id": "1"}}', "bulk_action"),
    (_e("impression", qid="q2", item="i5", ordinal=1, client="c2"), "accepted"),
    ('{"create": {"_index": "ubi_events", "_id": "2"}}', "bulk_action"),
    (_e("click", qid="q2", item="i5", ordinal=1, client="c2", attrs={"dwell_time": 0.2}), "accepted"),
    (
        '{"_index": "ubi_events", "_id": "3", "_source": '
        + _e("impression", qid="q2", item="i6", ordinal=2, client="c2")
        + "}",
        "accepted",
    ),
]


@pytest.fixture(scope="module")
def messy_day(tmp_path_factory, spark):
    from sie.ingest import ingest_day

    root = tmp_path_factory.mktemp("messy") / "warehouse"
    land(root, MESSY_DS, "ubi_queries", "queries.ndjson", [line for line, _ in MESSY_QUERIES])
    land(root, MESSY_DS, "ubi_events", "events.ndjson.gz", [line for line, _ in MESSY_EVENTS])
    land(root, MESSY_DS, "ubi_events", "bulk-export.json", [line for line, _ in MESSY_BULK])
    cfg = SieConfig.load({"warehouse": str(root)})
    return cfg, ingest_day(cfg, MESSY_DS, spark=spark)


def test_messy_day_every_line_has_its_expected_fate(messy_day):
    cfg, summary = messy_day
    recon_ok(summary)
    wh = Warehouse.from_config(cfg)
    q = wh.read_table("quarantine").to_pandas()
    got = {(r.file, int(r.line_no)): r.reason for r in q.itertuples()}
    ev = wh.read_table("events").to_pandas()
    got.update({(f, int(n)): "accepted" for f, n in zip(ev["file"], ev["line_no"])})
    qu = wh.read_table("queries").to_pandas()
    got.update({(f, int(n)): "accepted" for f, n in zip(qu["file"], qu["line_no"])})
    expected = {}
    for name, lines in (
        ("queries.ndjson", MESSY_QUERIES),
        ("events.ndjson.gz", MESSY_EVENTS),
        ("bulk-export.json", MESSY_BULK),
    ):
        for no, (_, fate) in enumerate(lines, start=1):
            if fate not in ("dedup", "blank", "bulk_action"):
                expected[(name, no)] = fate
    assert got == expected
    rec = {r["source"]: r for r in summary["reconciliation"]}
    fates = [f for _, f in MESSY_EVENTS + MESSY_BULK]
    assert rec["ubi_events"]["dedup_dropped"] == fates.count("dedup") == 1
    assert rec["ubi_events"]["bulk_action_lines"] == 2 and rec["ubi_events"]["blank_lines"] == 1
    assert rec["ubi_events"]["files"] == 2
    assert rec["ubi_queries"]["dedup_dropped"] == 1 and rec["ubi_queries"]["blank_lines"] == 1
    assert q.loc[q["reason"] == "out_of_window", "detail"].str.contains("not in").all()
    # every quarantined line exactly as landed, whichever rule (a line rule or a day rule) sent it there
    landed = {
        (name, no): line.removesuffix("\r").encode()
        for name, lines in (("queries.ndjson", MESSY_QUERIES), ("events.ndjson.gz", MESSY_EVENTS))
        for no, (line, _) in enumerate(lines, start=1)
    }
    kept = {(r.file, int(r.line_no)): r.raw_bytes for r in q.itertuples()}
    assert kept == {k: landed[k] for k in kept}
    assert {"duplicate_query_id", "bad_position", "unknown_query_id"} <= set(q["reason"])
    assert (q["raw"] == q["raw_bytes"].map(bytes.decode)).all()


def test_messy_day_events_and_samples(messy_day):
    cfg, summary = messy_day
    wh = Warehouse.from_config(cfg)
    ev = wh.read_table("events").to_pandas()
    ts = ev.set_index("line_no")
    assert ev["event_ts"].notna().all() and ev["event_id"].is_unique
    legacy = ev[ev["application"] == "legacy"].sort_values("item_id")
    assert legacy["position"].tolist() == [1, 2]  # 0-based producer shifted
    s = wh.read_table("samples").to_pandas().set_index(["query_id", "item_id"]).sort_index()
    assert sorted(s.index) == [("q1", "i1"), ("q1", "i2"), ("q2", "i5"), ("q2", "i6"), ("q8", "i1"), ("q8", "i4")]
    assert s.loc[("q1", "i2"), "label"] == 3 and s.loc[("q1", "i2"), "purchase"] == 1
    assert s.loc[("q1", "i2"), "dwell_time"] == 30.5
    assert s.loc[("q1", "i1"), "label"] == 0 and s.loc[("q2", "i5"), "click"] == 1
    assert s.loc[("q1", "i1"), "query_text"] == "red shoes"  # the first request, not the duplicate_query_id one
    assert s.loc[("q8", "i4"), "query_text"] == "oak desk"  # from the events when no query document
    assert list(s.loc[("q1", "i1"), "query_tokens"]) == ["red", "shoes"]
    # one session per client (c1: q1 only; c2: q2)
    assert s.loc[("q1", "i1"), "session_query_index"] == 0
    assert summary["orphan_interactions"] == 1  # the q2/i7 click
    assert len(ts) == len(ev)


def test_late_interaction_and_empty_day(messy_day, spark):
    """Next day: a click for a request published the day before is a late arrival; then an empty day."""
    from sie.ingest import ingest_day
    from sie.validate import ValidationFailed, validate

    cfg, _ = messy_day
    root = Path(cfg.warehouse)
    late = _e("click", qid="q1", item="i1", ts="2025-03-10T23:30:00Z")  # landed in ds+1, within the lateness
    orphan = _e("click", qid="q-unknown", item="i1", ts="2025-03-11T08:00:00Z")
    land(
        root,
        "2025-03-11",
        "ubi_queries",
        "queries.ndjson",
        [_q("q9", text="lamp", client="c9", ts="2025-03-11T08:00:00Z")],
    )
    land(
        root,
        "2025-03-11",
        "ubi_events",
        "events.ndjson",
        [late, orphan, _e("impression", qid="q9", item="i5", client="c9", ts="2025-03-11T08:00:01Z")],
    )
    s = ingest_day(cfg, "2025-03-11", spark=spark)
    assert s["late_interactions"] == 1
    assert s["quarantine_reasons"] == {"ubi_events": {"unknown_query_id": 1}}
    assert s["history_days"] == [MESSY_DS]
    samples = Warehouse.from_config(cfg).read_table("samples", {"ds": ["2025-03-11"]}).to_pandas()
    assert len(samples) == 1 and samples["item_log_impressions"].iloc[0] > 0  # i5 was shown on ds-1

    # an empty day: the folders exist, the files are empty -> empty partitions, zero reconciliation
    land(root, "2025-03-12", "ubi_queries", "queries.ndjson", [])
    land(root, "2025-03-12", "ubi_events", "events.ndjson.gz", [])
    e = ingest_day(cfg, "2025-03-12", spark=spark)
    assert e["empty"] is True and e["rows"] == {
        "events": 0,
        "queries": 0,
        "quarantine": 0,
        "samples": 0,
        "reconciliation": 2,
    }
    assert all(r["raw_records"] == 0 for r in e["reconciliation"])
    wh = Warehouse.from_config(cfg)
    assert {"ds": "2025-03-12"} in wh.partitions("samples")
    assert wh.read_table("samples", {"ds": ["2025-03-12"]}).num_rows == 0
    with pytest.raises(ValidationFailed, match=r"ds=2025-03-12.*expect_table_row_count_to_be_between"):
        validate(cfg, "2025-03-12", "samples")
    allowed = SieConfig.load({"warehouse": cfg.warehouse, "validate": {"allow_empty_day": True}})
    assert validate(allowed, "2025-03-12", "samples")["success"]
