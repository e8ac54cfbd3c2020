"""The judged benchmark holdout as model inputs.

Holdout pairs carry no logged features, so their dense features are taken from the
training window: each item's and query's latest statistics in the window's samples
(0 where unseen; :func:`sie.model.window.latest_features`), and session_query_index = 0.
"""

from __future__ import annotations

import pandas as pd

from sie.config import TrainConfig
from sie.model.features import SampleTensors, encode_frame
from sie.model.window import WindowFeatures, latest_features


def with_titles(holdout: pd.DataFrame, catalog: pd.DataFrame) -> pd.DataFrame:
    """The holdout's (query_text, item_id, grade) rows with each item's title from ``catalog``."""
    frame = holdout.merge(catalog.rename(columns={"title": "item_title"}), on="item_id", how="left")
    missing = frame["item_title"].isna().sum()
    if missing:
        raise ValueError(f"{missing} holdout items are not in the catalog")
    return frame


def holdout_tensors(holdout: pd.DataFrame, window: WindowFeatures | pd.DataFrame, cfg: TrainConfig) -> SampleTensors:
    """``window``: the training window's :class:`WindowFeatures` (or its samples frame)."""
    features = latest_features(window) if isinstance(window, pd.DataFrame) else window
    frame = holdout.join(features.items, on="item_id").join(features.queries, on="query_text")
    frame["session_query_index"] = 0.0
    frame["label"] = frame["grade"]
    return encode_frame(
        frame.fillna({"item_prior_ctr": 0.0, "item_log_impressions": 0.0, "query_log_freq": 0.0}),
        cfg,
        group_col="query_text",
    )
