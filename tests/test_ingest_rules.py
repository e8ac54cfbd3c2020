"""Ingest rules for hostile raw files: exact bytes, file-level faults, field types, bulk routing.

One small day of hand-made files (every line's fate known) is ingested once with real
Spark; the landing pre-pass (:mod:`sie.ingest.landing`) is also tested on its own.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import zlib
from pathlib import Path

import pytest

from sie.config import SieConfig
from sie.store import Warehouse

DS = "2025-06-01"
TS = f"{DS}T10:00:00Z"
CRLF_FILE = "events [v1]:2025.ndjson"  # a space, brackets and a colon: Spark reads paths as globs/URIs


def _doc(**kw) -> bytes:
    return json.dumps(kw).encode()


def _imp(qid="q1", item="i1", ordinal=1, client="c1", ts=TS, **kw) -> bytes:
    attrs = {"object": {"object_id": item}, "position": {"ordinal": ordinal}}
    attrs.update(kw.pop("attrs", {}))
    doc = {
        "action_name": "impression",
        "query_id": qid,
        "client_id": client,
        "timestamp": ts,
        "event_attributes": attrs,
    }
    doc.update(kw)
    return json.dumps(doc).encode()


def _click(dwell: str, item="i1", ordinal=1, qid="q1") -> bytes:
    """A click whose dwell_time is the JSON text ``dwell`` (json.dumps cannot write 1e400)."""
    return (
        b'{"action_name": "click", "query_id": "' + qid.encode() + b'", "client_id": "c1", "timestamp": "' + TS.encode()
        + b'", "event_attributes": {"object": {"object_id": "' + item.encode() + b'"}, "position": {"ordinal": '
        + str(ordinal).encode() + b'}, "dwell_time": ' + dwell.encode() + b"}}"
    )  # fmt: skip


BOM = b"\xef\xbb\xbf"
# (line bytes, fate) of a CRLF file that opens with a byte order mark; fate: "accepted", "blank" or a reason.
CRLF_LINES = [
    (BOM + _imp(item="i1", ordinal=1), "accepted"),  # the BOM opening a file is tolerated
    (_imp(item="i2", ordinal=2).replace(b', "client_id"', b',\r"client_id"'), "accepted"),  # a stray CR (JSON space)
    # a Latin-1 byte in a UTF-8 file (json.dumps would escape it, so the raw byte is put back)
    (_imp(item="i3", ordinal=3, user_query="cafe").replace(b'"cafe"', b'"caf\xe9"'), "invalid_utf8"),
    (_doc(action_name="page_view", timestamp=TS, message="a\x00b").replace(b"\\u0000", b"\x00"), "invalid_json"),
    (_imp(item="i3", ordinal=3)[:-1] + b', "action_name": "purchase"}', "duplicate_key"),  # impression or purchase?
    (_doc(action_name="click", query_id={"a": 1}, client_id="c1", timestamp=TS), "bad_field_type"),
    (_doc(action_name=["click"], query_id="q1", client_id="c1", timestamp=TS), "bad_field_type"),
    (_imp(item="i2", client=42), "bad_field_type"),
    (_click("1e400"), "bad_dwell_time"),
    (_click('"NaN"'), "bad_dwell_time"),
    (_click("-5"), "bad_dwell_time"),
    (_click("1e9"), "bad_dwell_time"),
    (_imp(item="i3", ordinal=3, ts=f"{DS}t10:00:05z"), "accepted"),  # RFC 3339 allows lower-case t and z
    (_imp(qid="q2", item="i4", ordinal="2"), "bad_position"),  # a number as a string
    (_click("12.5", item="i2", ordinal=2), "accepted"),
    (BOM + _imp(qid="q2", item="i5"), "invalid_json"),  # a BOM inside the file is not tolerated
    (b"", "blank"),
]

MIXED_BULK = [  # an OpenSearch bulk export of both indices, landed in the queries folder
    (b'{"index": {"_index": "ubi_queries", "_id": "a"}}', "bulk_action"),
    (_doc(query_id="q3", user_query="desk", client_id="c3", timestamp=TS), "accepted:ubi_queries"),
    (b'{"index": {"_index": "ubi_events"}}', "bulk_action"),
    (_imp(qid="q3", item="i7", client="c3"), "accepted:ubi_events"),
    (b'{"create": {"_index": "ubi_events-000001"}}', "bulk_action"),
    (_click("3.0", item="i7", qid="q3").replace(b'"c1"', b'"c3"'), "accepted:ubi_events"),
    (b'{"index": {"_index": "ubi_queries"}}', "bulk_action"),
    (_imp(qid="q3", item="i8", client="c3"), "wrong_source"),  # an event sent to ubi_queries
    (b'{"index": {"_index": "ubi_events"}}', "bulk_action"),
    (_doc(query_id="q4", user_query="oak", query_response_id="r4", timestamp=TS), "wrong_source"),
]
QUERY_LINES = [
    (_doc(query_id="q1", user_query="red shoes", client_id="c1", timestamp=TS, query_response_hit_ids=["i1", "i2", "i3"]), "accepted"),
    (_doc(query_id="q2", user_query="lamp", client_id="c1", timestamp=TS), "accepted"),
    (_imp(qid="q9", item="i9"), "wrong_source"),  # an event document in the queries folder
    (_doc(query_id="q5", user_query="rug", client_id="c1", timestamp=TS, query_response_hit_ids=[1, 2]), "bad_field_type"),
]  # fmt: skip
TRUNCATED = [_imp(qid="q2", item=f"t{i}", ordinal=i + 1) for i in range(40)]


def _truncated_gzip() -> tuple[bytes, int, bytes]:
    """(a gzip cut at two thirds, its complete lines, the bytes of its partial last line)."""
    data = gzip.compress(b"".join(line + b"\n" for line in TRUNCATED))
    cut = data[: len(data) * 2 // 3]
    readable = zlib.decompressobj(31).decompress(cut)
    complete = readable.count(b"\n")
    return cut, complete, readable[readable.rindex(b"\n") + 1 :]


def _land(root: Path, source: str, name: str, data: bytes) -> Path:
    d = root / "raw" / source / f"ds={DS}"
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)
    return d / name


@pytest.fixture(scope="module")
def hostile_day(tmp_path_factory, spark):
    from sie.ingest import ingest_day

    root = tmp_path_factory.mktemp("hostile") / "warehouse"
    _land(root, "ubi_events", CRLF_FILE, b"".join(line + b"\r\n" for line, _ in CRLF_LINES))
    _land(root, "ubi_events", "truncated.ndjson.gz", _truncated_gzip()[0])
    _land(root, "ubi_events", "plain-named.gz", _imp(qid="q2", item="p1", ordinal=21) + b"\n")
    _land(root, "ubi_events", "gzip-named.ndjson", gzip.compress(_imp(qid="q2", item="g1", ordinal=22) + b"\n"))
    _land(root, "ubi_events", "events.ndjson.bz2", bz2.compress(_imp(qid="q2", item="b1", ordinal=23) + b"\n"))
    _land(root, "ubi_events", "archive.zst", b"\x28\xb5\x2f\xfd" + os.urandom(32))
    trailing = gzip.compress(_imp(qid="q2", item="z1", ordinal=24) + b"\n") + b"\0" * 64
    _land(root, "ubi_events", "trailing.gz", trailing)
    _land(root, "ubi_queries", "queries.ndjson", b"".join(line + b"\n" for line, _ in QUERY_LINES))
    _land(root, "ubi_queries", "mixed-bulk.json", b"".join(line + b"\n" for line, _ in MIXED_BULK))
    cfg = SieConfig.load({"warehouse": str(root)})
    return cfg, ingest_day(cfg, DS, spark=spark)


def _published(cfg) -> dict[tuple, str]:
    """(file, line_no) -> 'accepted:<source>' or the quarantine reason, for every published row."""
    wh = Warehouse.from_config(cfg)
    got = {(r["file"], r["line_no"]): r["reason"] for r in wh.read_table("quarantine").to_pylist()}
    for table, source in (("events", "ubi_events"), ("queries", "ubi_queries")):
        for r in wh.read_table(table).to_pylist():
            assert (r["file"], r["line_no"]) not in got, r
            got[(r["file"], r["line_no"])] = f"accepted:{source}"
    return got


def test_every_line_has_its_expected_fate(hostile_day):
    cfg, summary = hostile_day
    _, complete, _ = _truncated_gzip()
    expected: dict[tuple, str] = {}
    for name, lines, source in (
        (CRLF_FILE, CRLF_LINES, "ubi_events"),
        ("queries.ndjson", QUERY_LINES, "ubi_queries"),
        ("mixed-bulk.json", MIXED_BULK, None),
    ):
        for no, (_, fate) in enumerate(lines, start=1):
            if fate not in ("blank", "bulk_action"):
                expected[(name, no)] = f"accepted:{source}" if fate == "accepted" else fate
    expected.update({("truncated.ndjson.gz", no): "accepted:ubi_events" for no in range(1, complete + 1)})
    expected[("truncated.ndjson.gz", complete + 1)] = "truncated_file"
    for name in ("plain-named.gz", "gzip-named.ndjson", "events.ndjson.bz2", "trailing.gz"):
        expected[(name, 1)] = "accepted:ubi_events"  # read as what they are, whatever their name says
    expected[("trailing.gz", 2)] = "truncated_file"  # bytes after the gzip data: one row, nothing lost
    expected[("archive.zst", None)] = "unreadable_file"
    assert _published(cfg) == expected
    assert 0 < complete < len(TRUNCATED)


def test_reconciliation_counts_files_and_lines(hostile_day):
    _, summary = hostile_day
    rec = {r["source"]: r for r in summary["reconciliation"]}
    for row in rec.values():
        assert row["raw_records"] == row["accepted"] + row["quarantined"] + row["dedup_dropped"], row
        assert row["raw_lines"] == row["raw_records"] + row["blank_lines"] + row["bulk_action_lines"], row
        assert row["files"] == row["files_read"] + row["files_truncated"] + row["files_unreadable"], row
    ev, qu = rec["ubi_events"], rec["ubi_queries"]
    assert (ev["files"], ev["files_read"], ev["files_truncated"], ev["files_unreadable"]) == (7, 4, 2, 1)
    assert (qu["files"], qu["files_read"], qu["files_truncated"], qu["files_unreadable"]) == (2, 2, 0, 0)
    # bulk action lines count under the source their _index names, wherever the file landed
    assert ev["bulk_action_lines"] == 3 and qu["bulk_action_lines"] == 2
    _, complete, _ = _truncated_gzip()
    event_lines = len(CRLF_LINES) + complete + 1 + 4 + 1 + 1  # + bz2/plain/gzip-named/trailing, zst, trailing's tail
    assert ev["raw_lines"] == event_lines + 6  # the 6 lines of the mixed bulk file routed to ubi_events
    assert qu["raw_lines"] == len(QUERY_LINES) + 4 and ev["blank_lines"] == 1


def test_quarantine_keeps_exact_bytes_beside_valid_text(hostile_day):
    from sie.store import duckdb_connect

    cfg, _ = hostile_day
    wh = Warehouse.from_config(cfg)
    q = {(r["file"], r["line_no"]): r for r in wh.read_table("quarantine").to_pylist()}
    for no, (line, fate) in enumerate(CRLF_LINES, start=1):
        if fate not in ("accepted", "blank"):
            row = q[(CRLF_FILE, no)]
            assert row["raw_bytes"] == line, no  # exact, without the CRLF ending
            assert row["raw"] == line.decode("utf-8", "replace"), no
    assert "\ufffd" in q[(CRLF_FILE, 3)]["raw"] and q[(CRLF_FILE, 3)]["reason"] == "invalid_utf8"
    assert "\x00" in q[(CRLF_FILE, 4)]["raw"]
    assert q[(CRLF_FILE, 16)]["raw_bytes"].startswith(BOM)
    assert q[(CRLF_FILE, 5)]["detail"] == "repeated key: action_name"
    _, complete, partial = _truncated_gzip()
    tail = q[("truncated.ndjson.gz", complete + 1)]
    assert (
        tail["raw_bytes"] == partial
        and "truncated" in tail["detail"]
        and f"{complete} complete lines" in tail["detail"]
    )
    assert q[("trailing.gz", 2)]["raw_bytes"] == b"" and "after the end" in q[("trailing.gz", 2)]["detail"]
    assert "zstd" in q[("archive.zst", None)]["detail"] and q[("archive.zst", None)]["raw_bytes"] is None
    # the whole quarantine is queryable by DuckDB (it failed on invalid UTF-8 before)
    con = duckdb_connect(wh)
    rows = con.execute("SELECT reason, raw, raw_bytes FROM quarantine WHERE reason = 'invalid_utf8'").fetchall()
    assert rows == [("invalid_utf8", CRLF_LINES[2][0].decode("utf-8", "replace"), CRLF_LINES[2][0])]
    assert con.execute("SELECT count(*) FROM quarantine WHERE length(raw) >= 0").fetchone()[0] == len(q) - 1


def test_field_rules_details(hostile_day):
    cfg, summary = hostile_day
    q = {(r["file"], r["line_no"]): r for r in Warehouse.from_config(cfg).read_table("quarantine").to_pylist()}
    assert q[(CRLF_FILE, 6)]["detail"] == "query_id is OBJECT<a: BIGINT>"
    assert q[(CRLF_FILE, 7)]["detail"] == "action_name is ARRAY<STRING>"
    assert q[(CRLF_FILE, 8)]["detail"] == "client_id is BIGINT"
    assert [q[(CRLF_FILE, n)]["detail"] for n in (9, 10, 11, 12)] == [
        "dwell_time=Infinity",
        "dwell_time=NaN",
        "dwell_time=-5",
        "dwell_time=1.0E9",  # the number as parsed
    ]
    assert q[("queries.ndjson", 2 + 1)]["detail"] == "an event document sent to ubi_queries by its landing folder"
    assert (
        q[("mixed-bulk.json", 8)]["detail"] == "an event document sent to ubi_queries by its bulk action line's _index"
    )
    assert (
        q[("mixed-bulk.json", 10)]["detail"] == "a query document sent to ubi_events by its bulk action line's _index"
    )
    ev = Warehouse.from_config(cfg).read_table("events").to_pandas()
    assert ev["dwell_time"].dropna().between(0, 86_400).all()
    lower = ev[(ev["file"] == CRLF_FILE) & (ev["line_no"] == 13)]
    assert str(lower["event_ts"].iloc[0]) == "2025-06-01 10:00:05+00:00"
    from sie.ingest.reasons import REASONS

    assert set(summary["quarantine_reasons"]["ubi_events"]) <= set(REASONS)


def test_every_reason_is_documented_in_rule_order():
    from sie.ingest.reasons import REASONS

    doc = (Path(__file__).resolve().parent.parent / "docs" / "INGEST.md").read_text()
    rules = doc[doc.index("## Rules, in order") :]
    positions = [rules.find(f"| `{code}` |") for code in REASONS]
    assert all(p >= 0 for p in positions), [c for c, p in zip(REASONS, positions) if p < 0]
    line_rules = [p for c, p in zip(REASONS, positions) if c not in ("duplicate_query_id", "unknown_query_id")]
    assert line_rules == sorted(line_rules)


def test_read_lines_round_trips_every_byte(tmp_path, spark):
    """Every byte 0x00-0xFF (but the line feed) comes back exactly, CR only dropped before LF."""
    from sie.ingest import landing, parse

    body = bytes(b for b in range(256) if b != 0x0A)
    lines = [body, b"\r" + body, b"no ending\r\r", b"", b"\xff\xfe\x00last"]
    src = tmp_path / "ubi_events"
    src.mkdir()
    (src / "all bytes [x].bin").write_bytes(b"\n".join(lines[:-1]) + b"\r\n" + lines[-1])
    with landing.prepared({"ubi_events": landing.list_raw_files(src)}, tmp_path / "_staging") as files:
        got = parse.read_lines(spark, files).orderBy("line_no").collect()
        assert not files[0].bulk and files[0].routes is None
    assert [r["raw_bytes"] for r in got] == [body, b"\r" + body, b"no ending\r", b"", b"\xff\xfe\x00last"]
    assert [r["line_no"] for r in got] == [1, 2, 3, 4, 5] and {r["file"] for r in got} == {"all bytes [x].bin"}
    assert not list((tmp_path / "_staging").iterdir())  # the private folder is removed


def test_a_day_in_one_gzip_file_is_spread_over_the_cores_with_exact_line_numbers(tmp_path, spark):
    """Spark reads a .gz file in one task: its numbered lines are spread before the parse."""
    import gzip

    from sie.ingest import landing, parse

    src = tmp_path / "ubi_events"
    src.mkdir()
    (src / "day.json.gz").write_bytes(gzip.compress(b"\n".join(b"line %d" % i for i in range(1, 5001))))
    with landing.prepared({"ubi_events": landing.list_raw_files(src)}, tmp_path / "_staging") as files:
        lines = parse.read_lines(spark, files)
        assert lines.rdd.getNumPartitions() == 2 * spark.sparkContext.defaultParallelism
        got = lines.select("line_no", "raw_bytes").collect()
    assert sorted((r["line_no"], r["raw_bytes"]) for r in got) == [(i, b"line %d" % i) for i in range(1, 5001)]


# ---- the landing pre-pass on its own (no Spark) --------------------------------------------


def _prepare(tmp_path: Path, name: str, data: bytes):
    from sie.ingest import landing

    path = tmp_path / name
    path.write_bytes(data)
    folder = tmp_path / f"prep-{name}"
    folder.mkdir()
    return landing.prepare(0, "ubi_events", path, folder)


def test_landing_sniffs_formats_by_magic_bytes(tmp_path):
    lines = b'{"a": 1}\n{"b": 2}\n'
    gz = _prepare(tmp_path, "x.json", gzip.compress(lines))
    assert gz.fault is None and gz.read_as.suffix == ".gz" and gz.read_as.resolve() == (tmp_path / "x.json").resolve()
    plain = _prepare(tmp_path, "y.gz", lines)
    assert plain.fault is None and plain.read_as.suffix == ".txt"
    multi = _prepare(tmp_path, "m.gz", gzip.compress(lines) + gzip.compress(b'{"c": 3}\n'))
    assert multi.fault is None and multi.read_as.suffix == ".gz"  # concatenated members are one file
    for name, data in (("b.bz2", bz2.compress(lines)), ("x.xz", lzma.compress(lines))):
        f = _prepare(tmp_path, name, data)
        assert f.fault is None and f.read_as.read_bytes() == lines, name
    for name, magic in (("a.zst", b"\x28\xb5\x2f\xfd"), ("a.zip", b"PK\x03\x04")):
        f = _prepare(tmp_path, name, magic + b"\0" * 20)
        assert (f.fault, f.read_as) == ("unreadable_file", None), name
    text = _prepare(tmp_path, "bzh.ndjson", b"BZh9 is no bzip2 header\n")  # only a real bzip2 head is one
    assert text.fault is None and text.read_as.suffix == ".txt"
    bulk = _prepare(tmp_path, "bulk.ndjson", b'{"index": {"_index": "ubi_events"}}\n' + lines)
    assert bulk.bulk and not plain.bulk


def test_landing_keeps_the_readable_lines_of_a_damaged_stream(tmp_path):
    lines = b"".join(b'{"n": %d}\n' % i for i in range(2000))
    data = gzip.compress(lines)
    cut = _prepare(tmp_path, "cut.gz", data[: len(data) // 2])
    kept = cut.read_as.read_bytes()
    assert cut.fault == "truncated_file" and lines.startswith(kept + cut.tail) and kept.endswith(b"\n")
    assert cut.tail_line == kept.count(b"\n") + 1 and "ends early" in cut.detail
    bad_crc = bytearray(data)
    bad_crc[-8] ^= 0xFF  # the CRC32 in the trailer
    crc = _prepare(tmp_path, "crc.gz", bytes(bad_crc))
    assert crc.fault == "truncated_file" and crc.read_as.read_bytes() == lines and crc.tail == b""
    assert _prepare(tmp_path, "header.gz", b"\x1f\x8b").fault == "truncated_file"
    empty = _prepare(tmp_path, "empty.gz", b"")
    assert empty.fault is None and empty.read_as.suffix == ".txt"


def test_landing_lists_any_name_and_skips_links_to_nothing(tmp_path):
    from sie.ingest import landing

    odd = os.fsdecode(b"caf\xe9 [1]:{x}*?.json")  # not UTF-8, and glob characters
    (tmp_path / odd).write_bytes(b"{}\n")
    (tmp_path / ".hidden").write_bytes(b"{}\n")
    (tmp_path / "_SUCCESS").write_bytes(b"")
    (tmp_path / "gone.json").symlink_to(tmp_path / "nowhere")
    files = landing.list_raw_files(tmp_path)
    assert [p.name for p in files] == [odd]
    assert landing.display_name(files[0]) == "caf\ufffd [1]:{x}*?.json"


def test_bulk_routes_name_the_source_of_the_line_after_each_action_line():
    from sie.ingest.landing import bulk_routes

    lines = [
        b'\xef\xbb\xbf{"index": {"_index": "ubi_events"}}\n',  # a BOM opening the file is ignored
        b'{"action_name": "click"}\n',  # -> ubi_events (2)
        b"\n",
        b'{"create": {"_index": "UBI_QUERIES-000001"}}\r\n',  # an action line routes by its own _index (Spark)
        b"   \n",
        b'{"query_id": "q"}\n',  # -> ubi_queries (1): blank lines between are skipped
        b'{"query_id": "q2"}\n',  # after a document: its folder
        b'{"index": {"_index": "products"}}\n',
        b'{"a": 1}\n',  # an index naming neither source: its folder
        b'{"delete": {"_index": "ubi_events"}}\n',
        b'{"index": {"_index": "ubi_queries"}, "timestamp": 1}',  # a document with an `index` field
        b'{"a": 2}',
    ]
    assert list(bulk_routes(lines)) == [0, 2, 0, 0, 1, 1, 0, 0, 0, 0, 2, 0]
