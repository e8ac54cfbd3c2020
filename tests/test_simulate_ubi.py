"""Simulator output vs the UBI 1.3.0 JSON schemas, the oracle, and injected bad records."""

from __future__ import annotations

import collections
import dataclasses
import gzip
import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from sie.config import SieConfig
from sie.simulate import simulate_day
from sie.simulate.bad_records import ALL_KINDS, KINDS
from sie.store import Warehouse

DS = "2024-05-10"
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def _raw(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return fh.read().splitlines()


def _day_files(cfg, ds=DS) -> tuple[list[str], list[str]]:
    wh = Warehouse.from_config(cfg)
    return (
        _raw(next(wh.raw_dir("ubi_queries", ds).glob("*.ndjson.gz"))),
        _raw(next(wh.raw_dir("ubi_events", ds).glob("*.ndjson.gz"))),
    )


@pytest.fixture(scope="module")
def ubi_schemas():
    root = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "ubi" / "schema"
    if not root.exists():
        pytest.skip(f"UBI schemas not found at {root}")
    from jsonschema import Draft202012Validator

    def load(name):
        schema = json.loads((root / name).read_text())
        Draft202012Validator.check_schema(schema)
        if name == "event.schema.json":
            # Bug in the published UBI 1.3.0 schema: `action_name` is a oneOf of an enum of the
            # standard names and a free string, so every *standard* name (impression, click, ...)
            # matches both branches and fails oneOf. The evident intent is anyOf; same for
            # object.object_id_type. Everything else is validated exactly as published.
            name_rule = schema["properties"]["action_name"]
            name_rule["anyOf"] = name_rule.pop("oneOf")
            obj = schema["properties"]["event_attributes"]["properties"]["object"]["properties"]
            obj["object_id_type"]["anyOf"] = obj["object_id_type"].pop("oneOf")
        return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)

    return {
        "query": load("query.request.schema.json"),
        "response": load("query.response.schema.json"),
        "event": load("event.schema.json"),
    }


def test_lines_conform_to_ubi_schema(cfg, ubi_schemas):
    simulate_day(cfg, DS)
    queries, events = _day_files(cfg)
    for line in queries:
        doc = json.loads(line)
        ubi_schemas["query"].validate(doc)
        ubi_schemas["response"].validate(doc)
        assert ISO_Z.match(doc["timestamp"])
        assert {"session_id"} <= set(doc["query_attributes"])
    for i, line in enumerate(events):
        doc = json.loads(line)
        if doc["action_name"] != "impression" or i % 10 == 0:  # every interaction, a tenth of impressions
            ubi_schemas["event"].validate(doc)
        assert ISO_Z.match(doc["timestamp"])  # (jsonschema checks date-time only with rfc3339-validator)
        assert doc["session_id"] and doc["client_id"] and doc["query_id"]
        assert isinstance(doc["event_attributes"]["position"]["ordinal"], int)


def test_oracle_labels_match_the_events(cfg):
    """What a correct ingest derives (dedup exact lines, max grade per query/item) is the oracle label."""
    summary = simulate_day(cfg, DS)
    _, events = _day_files(cfg)
    counts = collections.Counter(events)
    assert sum(c - 1 for c in counts.values()) == summary["duplicate_lines"] > 0
    grade = {"impression": 0, "click": 1, "add_to_cart": 2, "purchase": 3}
    label: dict[tuple[str, str], int] = {}
    position: dict[tuple[str, str], int] = {}
    for line in counts:
        e = json.loads(line)
        key = (e["query_id"], e["event_attributes"]["object"]["object_id"])
        label[key] = max(label.get(key, 0), grade[e["action_name"]])
        if e["action_name"] == "impression":
            position[key] = e["event_attributes"]["position"]["ordinal"]
    oracle = pq.read_table(Warehouse.from_config(cfg).oracle_path(DS)).to_pylist()
    assert len(oracle) == len(position) == len(label)
    for row in oracle:
        key = (row["query_id"], row["item_id"])
        assert label[key] == row["label"] and position[key] == row["position"]
        assert row["is_noise"] == (row["noise_type"] in {"bot", "accidental_click", "clickbait", "label_flip"})


def test_bad_records_inject_every_kind(cfg, tmp_path):
    clean_cfg = dataclasses.replace(cfg, warehouse=str(tmp_path / "clean"))
    simulate_day(clean_cfg, DS)
    bad_cfg = SieConfig.load(
        {"warehouse": str(tmp_path / "bad"), "simulate": {**cfg.to_dict()["simulate"], "bad_records": 3}}
    )
    summary = simulate_day(bad_cfg, DS)
    sidecar = json.loads(Path(summary["paths"]["bad_records"]).read_text())
    kinds = collections.Counter((e["source"], e["kind"]) for e in sidecar)
    assert kinds == {(s, k): 3 for s, ks in KINDS.items() for k in ks}
    assert {e["kind"] for e in sidecar} == set(ALL_KINDS)
    files = dict(zip(("ubi_queries", "ubi_events"), _day_files(bad_cfg)))
    clean = dict(zip(("ubi_queries", "ubi_events"), _day_files(clean_cfg)))
    query_ids = {json.loads(q)["query_id"] for q in clean["ubi_queries"]}
    for e in sidecar:
        lines = files[e["source"]]
        assert lines[e["line_no"] - 1] == e["raw"]  # 1-based line numbers
        assert lines.count(e["raw"]) == 1  # never an exact duplicate of another line
        raw = e["raw"]
        if e["kind"] == "broken_json":
            with pytest.raises(json.JSONDecodeError):
                json.loads(raw)
            continue
        doc = json.loads(raw)
        if e["kind"] == "missing_required":
            required = (
                {"query_id", "user_query", "timestamp"}
                if e["source"] == "ubi_queries"
                else {"action_name", "timestamp"}
            )
            assert not required <= set(doc)
        elif e["kind"] == "wrong_type":
            ordinal = doc.get("event_attributes", {}).get("position", {}).get("ordinal", 1)
            assert not isinstance(doc["timestamp"], str) or not isinstance(ordinal, int)
        elif e["kind"] == "impossible_position":
            assert not 1 <= doc["event_attributes"]["position"]["ordinal"] <= cfg.simulate.impressions_per_request
        elif e["kind"] == "unknown_query_id":
            assert doc["query_id"] not in query_ids
        elif e["kind"] == "timestamp_out_of_range":
            assert not doc["timestamp"].startswith(DS)
        elif e["kind"] == "duplicate_id":
            assert doc["query_id"] in query_ids and raw not in clean["ubi_queries"]
    # removing the injected lines gives back exactly the clean day
    for source in files:
        injected = {e["line_no"] - 1 for e in sidecar if e["source"] == source}
        kept = [line for i, line in enumerate(files[source]) if i not in injected]
        assert kept == clean[source]
    # the oracle is untouched by injection
    a = Warehouse.from_config(clean_cfg).oracle_path(DS).read_bytes()
    assert Warehouse.from_config(bad_cfg).oracle_path(DS).read_bytes() == a
