"""The judged benchmark holdout as model inputs.

Holdout pairs carry no logged features, so their dense features are taken from the
training window: each item's and query's latest statistics in the window's samples
(0 where unseen), and session_query_index = 0.
"""

from __future__ import annotations

import pandas as pd

from sie.config import TrainConfig
from sie.features import SampleTensors, encode_frame
from sie.store import Warehouse


def load_holdout(wh: Warehouse) -> pd.DataFrame:
    if not wh.holdout_path.exists():
        raise FileNotFoundError(f"benchmark holdout not found at {wh.holdout_path} (the simulator writes it)")
    holdout = pd.read_parquet(wh.holdout_path)
    catalog = pd.read_parquet(wh.catalog_path, columns=["item_id", "title"])
    frame = holdout.merge(catalog.rename(columns={"title": "item_title"}), on="item_id", how="left")
    missing = frame["item_title"].isna().sum()
    if missing:
        raise ValueError(f"{missing} holdout items are not in the catalog {wh.catalog_path}")
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
