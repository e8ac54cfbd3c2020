"""The score step and its in-memory scoring context against a warehouse with hand-written samples (no Spark)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from sie.config import SieConfig
from sie.schemas import DENSE_FEATURES, SAMPLES, sample_id
from sie.store import Warehouse

WORDS = "red blue shoe shirt phone case cable lamp desk chair mug pen".split()


def _samples_frame(ds: str, n_requests: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for r in range(n_requests):
        qid = f"{ds}-q{r}"
        query = " ".join(rng.choice(WORDS, size=2))
        for pos in range(6):
            item = f"item{rng.integers(0, 80)}"
            title = " ".join(rng.choice(WORDS, size=4))
            overlap = len(set(query.split()) & set(title.split()))
            click = int(rng.random() < 0.05 + 0.3 * overlap)
            row = {
                "sample_id": sample_id(qid, f"{item}-{pos}"),
                "run_id": "test",
                "query_id": qid,
                "client_id": "c",
                "session_id": f"s{r}",
                "request_ts": datetime(2024, 1, 1, tzinfo=UTC),
                "query_text": query,
                "item_id": item,
                "item_title": title,
                "position": pos,
                "click": click,
                "add_to_cart": 0,
                "purchase": 0,
                "label": click,
                "dwell_time": 0.0,
            }
            row.update({f: float(rng.normal()) for f in DENSE_FEATURES})
            rows.append(row)
    return _conform(pd.DataFrame(rows))


def _conform(frame: pd.DataFrame) -> pd.DataFrame:
    """Fill any other columns of the samples schema with neutral values of their type."""
    for f in SAMPLES.schema:
        if f.name in frame:
            continue
        if pa.types.is_list(f.type):
            source = {"query_tokens": "query_text", "item_tokens": "item_title"}.get(f.name)
            frame[f.name] = [t.split() for t in frame[source]] if source else [[] for _ in range(len(frame))]
        elif pa.types.is_string(f.type):
            frame[f.name] = ""
        elif pa.types.is_integer(f.type):
            frame[f.name] = 0
        elif pa.types.is_floating(f.type):
            frame[f.name] = 0.0
        else:
            frame[f.name] = None
    return frame[SAMPLES.columns]


@pytest.fixture
def small_cfg(tmp_path):
    return SieConfig.load(
        {
            "warehouse": str(tmp_path / "wh"),
            "train": {
                "vocab_size": 128,
                "embedding_dim": 8,
                "hidden_dim": 16,
                "epochs": 3,
                "batch_size": 64,
                "window_days": 2,
                "device": "cpu",
            },
            "importance": {"batch_size": 128, "knn_max_validation": 50},
        }
    )


def test_score_step_publishes_every_default_method(small_cfg):
    from sie.ds import Ds
    from sie.steps import daily
    from sie.steps.models import load_model
    from sie.steps.scoring import read_cost, read_scores, scoring_context
    from sie.steps.window import load_window

    wh = Warehouse.from_config(small_cfg)
    for k, ds in enumerate(["2024-01-01", "2024-01-02"]):
        frame = _samples_frame(ds, 60, seed=k)
        wh.write_day(ds, {"samples": pa.Table.from_pandas(frame, preserve_index=False)}, run_id=f"fixture-{ds}")
    ds = Ds("2024-01-02")
    meta = daily.train(small_cfg, ds)

    window = load_window(small_cfg, ds)
    ctx, train_frame = scoring_context(small_cfg, window, load_model(small_cfg, ds)), window.train_frame
    assert len(ctx.train) == meta["n_train"] and len(ctx.validation) == meta["n_validation"] > 0
    assert ctx.n_checkpoints == 3
    assert not set(ctx.train.sample_id) & set(ctx.validation.sample_id)

    scored = daily.score_all(small_cfg, ds, small_cfg.importance.methods)
    for method, result in scored.items():
        cost = result.cost
        assert cost["n"] == len(ctx.train) and cost["seconds"] >= 0
        assert read_cost(small_cfg, ds, method)["method"] == method
        # what was published is what was computed (read back aligned with the window)
        np.testing.assert_array_equal(read_scores(small_cfg, window, method), result.scores)
    scores = wh.read_table("importance_scores", {"ds": [ds]}).to_pandas()
    assert set(scores["method"]) == set(small_cfg.importance.methods)
    for method, part in scores.groupby("method"):
        assert len(part) == len(train_frame), method
        assert part["sample_id"].is_unique and np.isfinite(part["score"]).all()
        assert (part["model_version"] == meta["model_version"]).all()
    # re-scoring replaces the partition exactly
    daily.score(small_cfg, ds, "random")
    again = wh.read_table("importance_scores", {"ds": [ds]}).to_pandas()
    assert len(again) == len(scores)
    json.loads(json.dumps(cost))  # the cost record is plain JSON
