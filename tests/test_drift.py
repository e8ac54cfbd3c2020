"""Score drift between consecutive models (sie.steps.drift) on hand-written importance_scores."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from scipy.stats import spearmanr

from sie.config import SieConfig
from sie.steps import drift
from sie.store import Warehouse


def _publish(wh: Warehouse, ds: str, method: str, ids: list[str], scores: np.ndarray) -> None:
    n = len(ids)
    table = pa.table(
        {
            "sample_id": ids,
            "sample_ds": ["2026-11-19"] * n,
            "run_id": [f"daily-{ds}"] * n,
            "model_version": [f"ranker-{ds}"] * n,
            "score": scores,
            "model_id": ["mlp"] * n,
        }
    )
    wh.write_partition("importance_scores", {"ds": ds, "method": method}, table)


def test_drift_against_the_latest_earlier_model(tmp_path):
    cfg = SieConfig.load({"warehouse": str(tmp_path)})
    wh = Warehouse.from_config(cfg)
    rng = np.random.default_rng(0)
    old_ids, new_ids = [f"s{k}" for k in range(0, 100)], [f"s{k}" for k in range(50, 150)]
    old, new = rng.random(100), rng.random(100)
    new[:50] = old[50:] + 0.01 * rng.random(50)  # the 50 common samples keep nearly their order
    _publish(wh, "2026-11-18", "loss", old_ids, old)
    _publish(wh, "2026-11-20", "loss", new_ids, new)
    _publish(wh, "2026-11-21", "aum", new_ids, new)  # another method, later: never the previous one

    out = drift.score_drift_for_events(cfg, [{"ds": "2026-11-20", "method": "loss"}] * 2 + [{}])
    assert len(out) == 1 and out[0]["previous_ds"] == "2026-11-18" and out[0]["n_common"] == 50
    row = wh.read_table("score_drift").to_pylist()[0]
    expected = spearmanr(new[:50], old[50:]).statistic
    assert row["spearman"] == pytest.approx(expected) and row["spearman"] > 0.9
    assert row["n_samples"] == 100 and row["mean_score"] == pytest.approx(new.mean())
    assert 0.0 <= row["top_decile_overlap"] <= 1.0 and row["previous_mean_score"] == pytest.approx(old.mean())


def test_first_model_has_no_previous(tmp_path):
    cfg = SieConfig.load({"warehouse": str(tmp_path)})
    wh = Warehouse.from_config(cfg)
    _publish(wh, "2026-11-20", "loss", ["a", "b", "c"], np.array([1.0, 2.0, 3.0]))
    out = drift.score_drift(cfg, "2026-11-20", "loss")
    assert out["previous_ds"] is None and out["n_common"] == 0
    row = wh.read_table("score_drift").to_pylist()[0]
    assert row["spearman"] is None and row["top_decile_overlap"] is None and row["n_samples"] == 3


def test_top_decile_overlap_counts_shared_top_samples():
    import pandas as pd

    now = pd.Series(np.arange(20.0), index=[f"s{k}" for k in range(20)])
    before = now.copy()
    assert drift.top_decile_overlap(now, before) == 1.0
    assert drift.top_decile_overlap(now, -before) == 0.0
