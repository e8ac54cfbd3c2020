"""The training window: the samples of the days ending at ``ds``, split once and encoded once.

Every step that needs the window (train, score, nightly evaluate, the benchmark) builds
one :class:`TrainingWindow` from the window's sample frame and uses its parts; the split
rule (1 in ``VALIDATION_BUCKETS`` query requests held out as click validation) lives here
only.

Memory: the window is the largest thing a step holds (10M samples a day), so each part is
encoded straight from the frame's rows (no copy of the frame per part), the parts keep
only the columns their readers need, and the whole frame is dropped once split: what is
left of it is the holdout's small per-item / per-query feature lookup.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sie.config import TrainConfig
from sie.ds import Ds
from sie.model.features import SampleTensors, encode_frame, sample_ids

VALIDATION_BUCKETS = 10  # 1 in 10 query requests is held out of training as click validation
#: the columns of :attr:`TrainingWindow.train_frame`: the keys scores align on (sample_id,
#: sample_ds), what the model's index records (query_id, click, label), the evaluation's
#: strata (query_text) and the sample's client
TRAIN_FRAME_COLUMNS = ("sample_id", "sample_ds", "query_id", "query_text", "client_id", "click", "label")
#: the columns of :attr:`TrainingWindow.validation_frame` (the keys the oracle's truth aligns on)
VALIDATION_FRAME_COLUMNS = ("sample_id", "sample_ds")
#: the columns the holdout's feature lookup reads (:func:`latest_features`)
HOLDOUT_FEATURE_COLUMNS = (
    "sample_ds",
    "request_ts",
    "item_id",
    "query_text",
    "item_prior_ctr",
    "item_log_impressions",
    "query_log_freq",
)


def is_validation(query_ids: pd.Series) -> np.ndarray:
    """Deterministic split by query request: held-out clicks for validation-based methods."""
    codes, distinct = pd.factorize(query_ids)  # a request's impressions share its id: hash it once
    held_out = np.array([zlib.crc32(q.encode()) % VALIDATION_BUCKETS == 0 for q in distinct], dtype=bool)
    return held_out[codes]


@dataclass
class WindowFeatures:
    """Each item's and each query text's latest dense statistics in the window (by sample_ds,
    request_ts; the last non-null value): the judged holdout's features (sie.selection.holdout)."""

    items: pd.DataFrame  # indexed by item_id: item_prior_ctr, item_log_impressions
    queries: pd.DataFrame  # indexed by query_text: query_log_freq


def latest_features(frame: pd.DataFrame) -> WindowFeatures:
    latest = frame[[*HOLDOUT_FEATURE_COLUMNS]].sort_values(["sample_ds", "request_ts"])
    return WindowFeatures(
        items=latest.groupby("item_id")[["item_prior_ctr", "item_log_impressions"]].last(),
        queries=latest.groupby("query_text")[["query_log_freq"]].last(),
    )


def frame_rows(frame: pd.DataFrame, rows: np.ndarray, columns: tuple[str, ...]) -> pd.DataFrame:
    """``frame.iloc[rows]`` of the ``columns`` it has, taken one column at a time."""
    return pd.DataFrame({c: frame[c].iloc[rows].reset_index(drop=True) for c in columns if c in frame})


@dataclass
class TrainingWindow:
    """One window's samples (``frame``, sorted by sample_ds, sample_id), split and encoded.

    ``frame`` is consumed (its columns are deleted as they are read): the window keeps the split's
    parts, its days and the holdout's features.
    """

    ds: Ds
    frame: pd.DataFrame | None  # every sample of the window; None once split
    train_cfg: TrainConfig
    validation_mask: np.ndarray = field(init=False)
    days: list[str] = field(init=False)  # the window's sample days, in order
    train_frame: pd.DataFrame = field(init=False)  # the samples the model trains on (:data:`TRAIN_FRAME_COLUMNS`)
    validation_frame: pd.DataFrame = field(init=False)  # held-out clicks (:data:`VALIDATION_FRAME_COLUMNS`)
    train: SampleTensors = field(init=False)
    validation: SampleTensors = field(init=False)
    # each item's and query's latest statistics in the window (sie.selection.holdout)
    holdout_features: WindowFeatures = field(init=False)

    def __post_init__(self) -> None:
        frame, self.frame = self.frame, None
        self.validation_mask = is_validation(frame["query_id"])
        train_rows, validation_rows = np.flatnonzero(~self.validation_mask), np.flatnonzero(self.validation_mask)
        self.days = sorted(frame["sample_ds"].unique().tolist())
        self.holdout_features = latest_features(frame)
        self.train = encode_frame(frame, self.train_cfg, rows=train_rows)
        self.validation = encode_frame(frame, self.train_cfg, rows=validation_rows)
        for column in set(frame.columns) - set(TRAIN_FRAME_COLUMNS):  # read: free them before the frames' copies
            del frame[column]
        self.train_frame = frame_rows(frame, train_rows, TRAIN_FRAME_COLUMNS)
        self.validation_frame = frame_rows(frame, validation_rows, VALIDATION_FRAME_COLUMNS)
        # one copy of the ids: the tensors' are the frames' (equal, taken from the same rows)
        self.train.sample_id = sample_ids(self.train_frame["sample_id"])
        self.validation.sample_id = sample_ids(self.validation_frame["sample_id"])

    @property
    def n_validation(self) -> int:
        return int(self.validation_mask.sum())

    def sample_keys(self) -> pd.MultiIndex:
        """(sample_id, sample_ds) of the training samples, in model order: the key scores align on."""
        return pd.MultiIndex.from_frame(self.train_frame[["sample_id", "sample_ds"]])
