"""The judged benchmark holdout as model inputs.

Holdout pairs carry no logged features, so their dense features are taken from the
training window: each item's and query's latest statistics in the window's samples
(0 where unseen), and session_query_index = 0.
"""

from __future__ import annotations

import pandas as pd

from sie.config import TrainConfig
from sie.model.features import SampleTensors, encode_frame


def with_titles(holdout: pd.DataFrame, catalog: pd.DataFrame) -> pd.DataFrame:
    """The holdout's (query_text, item_id, grade) rows with each item's title from ``catalog``."""
    frame = holdout.merge(catalog.rename(columns={"title": "item_title"}), on="item_id", how="left")
    missing = frame["item_title"].isna().sum()
    if missing:
        raise ValueError(f"{missing} holdout items are not in the catalog")
    return frame


def holdout_tensors(holdout: pd.DataFrame, window: pd.DataFrame, cfg: TrainConfig) -> SampleTensors:
    latest = window.sort_values(["sample_ds", "request_ts"])
    items = latest.groupby("item_id")[["item_prior_ctr", "item_log_impressions"]].last()
    queries = latest.groupby("query_text")[["query_log_freq"]].last()
    frame = holdout.join(items, on="item_id").join(queries, on="query_text")
    frame["session_query_index"] = 0.0
    frame["label"] = frame["grade"]
    return encode_frame(
        frame.fillna({"item_prior_ctr": 0.0, "item_log_impressions": 0.0, "query_log_freq": 0.0}),
        cfg,
        group_col="query_text",
    )
