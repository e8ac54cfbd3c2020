"""Great Expectations suites: importance scores and samples failing with clear messages."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from sie.schemas import sample_id
from sie.store import Warehouse

DS = "2025-01-02"


def _scores(n: int, method: str, score=None) -> pa.Table:
    ids = [sample_id(f"q{i}", f"i{i}") for i in range(n)]
    return pa.table(
        {
            "sample_id": ids,
            "sample_ds": [DS] * n,
            "run_id": ["r"] * n,
            "model_version": ["m1"] * n,
            "score": np.linspace(0, 1, n) if score is None else score,
            "model_id": ["mlp"] * n,
        }
    )


def test_importance_scores_pass(cfg):
    from sie.validate import validate

    wh = Warehouse.from_config(cfg)
    wh.write_partition("importance_scores", {"ds": DS, "method": "loss"}, _scores(20, "loss"))
    wh.write_partition("importance_scores", {"ds": DS, "method": "random"}, _scores(20, "random"))
    out = validate(cfg, DS, "importance_scores")
    assert out["success"] and out["rows"] == 40
    stored = json.loads((wh.validation_dir("importance_scores", DS) / "result.json").read_text())
    assert stored["success"] and stored["ds"] == DS


def test_importance_scores_fail_names_ds_and_expectations(cfg):
    from sie.validate import ValidationFailed, validate

    wh = Warehouse.from_config(cfg)
    bad = _scores(10, "loss", score=[0.1, np.nan, np.inf, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    bad = pa.concat_tables([bad, bad.slice(0, 2)])  # duplicated (sample_id, method)
    wh.write_partition("importance_scores", {"ds": DS, "method": "loss"}, bad)
    with pytest.raises(ValidationFailed) as err:
        validate(cfg, DS, "importance_scores")
    msg = str(err.value)
    assert f"ds={DS}" in msg
    assert "expect_compound_columns_to_be_unique" in msg
    assert "expect_column_values_to_not_be_null(score)" in msg
    assert "_score_finite" in msg
    assert not err.value.result["success"]


def test_unknown_suite_and_missing_partition(cfg):
    from sie.validate import validate

    with pytest.raises(ValueError, match="unknown validation suite"):
        validate(cfg, DS, "nope")
    with pytest.raises(FileNotFoundError, match=f"ds={DS}"):
        validate(cfg, DS, "samples")


# ---- a day validated in row batches (validate.batch_rows) ---------------------------------

SIM_DS = "2025-01-03"
BATCH = 700  # a simulated day of ~3,000 samples / ~3,400 events: 5 row batches each


@pytest.fixture(scope="module")
def sim_tables(tmp_path_factory, spark) -> dict[str, pa.Table]:
    """The events and samples of a small simulated, ingested day (each test publishes them, as
    they are or altered, in its own warehouse)."""
    from sie.config import SieConfig
    from sie.ingest import ingest_day
    from sie.simulate import simulate_day

    root = tmp_path_factory.mktemp("sim") / "warehouse"
    cfg = SieConfig.load(
        {"warehouse": str(root), "simulate": {"requests_per_day": 300, "n_items": 300, "n_users": 200, "n_intents": 60}}
    )
    simulate_day(cfg, SIM_DS)
    ingest_day(cfg, SIM_DS, spark=spark)
    wh = Warehouse.from_config(cfg)
    return {t: wh.read_table(t, {"ds": [SIM_DS]}) for t in ("events", "samples")}


def _publish(cfg, **tables: pa.Table) -> None:
    Warehouse.from_config(cfg).write_day(SIM_DS, tables, run_id="fixture")


def _settings(cfg, **validate):
    from sie.config import SieConfig

    return SieConfig.load({"warehouse": cfg.warehouse, "validate": {"data_docs": False} | validate})


def _key(row: dict) -> tuple[str, str]:
    return row["expectation"], json.dumps(row["kwargs"], sort_keys=True)


def _verdicts(out: dict) -> dict[tuple[str, str], bool]:
    """Each expectation's verdict over all the parts it ran on."""
    verdicts: dict[tuple[str, str], bool] = {}
    for row in out["results"]:
        verdicts[_key(row)] = verdicts.get(_key(row), True) and row["success"]
    return verdicts


def test_config_batch_rows_is_range_checked():
    from sie.config import SieConfig

    assert SieConfig.load().validate.batch_rows == 1_000_000
    with pytest.raises(ValueError, match="validate.batch_rows"):
        SieConfig.load({"validate": {"batch_rows": 0}})


@pytest.mark.parametrize("suite, table", [("raw_events", "events"), ("samples", "samples")])
def test_batched_day_has_the_verdicts_of_the_whole_day(sim_tables, cfg, suite, table):
    from sie.validate import validate

    _publish(cfg, events=sim_tables["events"], samples=sim_tables["samples"])
    whole = validate(_settings(cfg), SIM_DS, suite)
    batched = validate(_settings(cfg, batch_rows=BATCH), SIM_DS, suite)
    n = sim_tables[table].num_rows
    batches = [f"rows={i}-{min(i + BATCH, n) - 1}" for i in range(0, n, BATCH)]
    assert whole["success"] and batched["success"] and whole["rows"] == batched["rows"] == n
    assert all("part" not in r for r in whole["results"])  # one frame: the rows as before batching
    assert _verdicts(batched) == _verdicts(whole)
    day = {_key(r): r for r in batched["results"] if r["part"] == "day"}
    assert {e for e, _ in day} >= {"expect_column_values_to_be_unique", "expect_table_row_count_to_be_between"}
    parts = {}
    for r in batched["results"]:
        parts.setdefault(_key(r), []).append(r["part"])
    for key, where in parts.items():  # every check once per part it ran on: each batch, or the day
        assert where == (["day"] if key in day else batches), key
    observed = {_key(r): (r["observed"], r["unexpected_count"]) for r in whole["results"]}
    assert {k: (r["observed"], r["unexpected_count"]) for k, r in day.items()} == {k: observed[k] for k in day}


def test_duplicate_sample_id_in_different_batches_is_caught(sim_tables, cfg):
    from sie.validate import ValidationFailed, validate

    samples = sim_tables["samples"]
    _publish(cfg, samples=pa.concat_tables([samples, samples.slice(0, 1)]))  # the first row again, last
    with pytest.raises(ValidationFailed) as err:
        validate(_settings(cfg, batch_rows=BATCH), SIM_DS, "samples")
    (failed,) = err.value.result["failed_critical"]  # every batch alone passes
    assert failed.startswith("expect_column_values_to_be_unique(sample_id) 2 unexpected") and failed.endswith("[day]")


def test_click_with_its_impression_in_another_batch_is_not_flagged(sim_tables, cfg):
    import pyarrow.compute as pc

    from sie.validate import validate

    events = sim_tables["events"]
    impression = pc.equal(events["action_name"], "impression")
    later = events.filter(pc.invert(impression))  # every interaction after every impression ...
    items = later["item_id"].to_numpy(zero_copy_only=False).copy()
    first_click = np.flatnonzero(later["action_name"].to_numpy(zero_copy_only=False) == "click")[0]
    items[first_click] = "no-such-item"  # ... and one click without an impression anywhere
    later = later.set_column(later.column_names.index("item_id"), "item_id", pa.array(items, pa.string()))
    _publish(cfg, events=pa.concat_tables([events.filter(impression), later]))
    out = validate(_settings(cfg, batch_rows=BATCH), SIM_DS, "raw_events")
    assert out["success"], out["failed_critical"]
    (check,) = [r for r in out["results"] if r["column"] == "_click_has_impression"]
    assert check["part"] == "day" and check["unexpected_count"] == 1


def test_ctr_is_judged_over_the_whole_day(sim_tables, cfg):
    from sie.validate import validate

    samples = sim_tables["samples"].sort_by("click")  # batches of no clicks first, clicks last
    ctr = np.mean(samples["click"].to_numpy())
    assert 0.005 < ctr < 0.6 and BATCH < np.sum(samples["click"].to_numpy() == 0)
    _publish(cfg, samples=samples)
    within = validate(_settings(cfg, batch_rows=BATCH), SIM_DS, "samples")  # a batch of CTR 0 alone would fail
    assert within["success"], within["failed_critical"]
    above = validate(
        _settings(cfg, batch_rows=BATCH, min_ctr=0.0, max_ctr=ctr * 0.9), SIM_DS, "samples", raise_on_failure=False
    )
    (failed,) = above["failed_critical"]
    assert failed.startswith("expect_column_mean_to_be_between(click) observed") and failed.endswith("[day]")
    (check,) = [r for r in above["results"] if r["column"] == "click" and "max_value" in r["kwargs"]]
    assert check["observed"] == pytest.approx(ctr)


def test_a_validated_frame_is_not_kept_alive():
    """GX's pandas data source holds every frame it validated; a process that validates day
    after day (a backfill) or batch after batch grew by each frame until it was deleted."""
    import gc
    import weakref

    import pandas as pd

    from sie.config import SieConfig
    from sie.validate.run import run_checks
    from sie.validate.suites import Check

    refs = []
    for _ in range(2):
        frame = pd.DataFrame({"a": np.arange(100)})
        refs.append(weakref.ref(frame))
        _, result, _ = run_checks(
            SieConfig.load(), "2026-01-01", "samples", frame, [Check("ExpectColumnValuesToNotBeNull", {"column": "a"})]
        )
        assert result.success
        del frame, result
    gc.collect()
    assert [r() is None for r in refs] == [True, True]
