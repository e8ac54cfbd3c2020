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
