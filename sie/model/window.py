"""The training window: the samples of the days ending at ``ds``, split once and encoded once.

Every step that needs the window (train, score, nightly evaluate, the benchmark) uses
one :class:`TrainingWindow`: split from the window's sample frame, or as the train step
saved it next to the model version (sie.steps.window); the split rule (1 in ``VALIDATION_BUCKETS`` query requests held out as click validation) lives here
only.

Memory: the window is the largest thing a step holds (10M samples a day), so each part is
encoded straight from the frame's rows (no copy of the frame per part), the parts keep
only the columns their readers need, and the whole frame is dropped once split: what is
left of it is the holdout's small per-item / per-query feature lookup.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

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
    """One window's samples, split and encoded: built from the window's frame by :meth:`split`,
    or read back as the train step saved it (sie.steps.window)."""

    ds: Ds
    train_cfg: TrainConfig
    days: list[str]  # the window's sample days, in order
    train_frame: pd.DataFrame  # the samples the model trains on (:data:`TRAIN_FRAME_COLUMNS`)
    validation_frame: pd.DataFrame  # held-out clicks (:data:`VALIDATION_FRAME_COLUMNS`)
    train: SampleTensors
    validation: SampleTensors
    # each item's and query's latest statistics in the window (sie.selection.holdout)
    holdout_features: WindowFeatures

    @classmethod
    def split(cls, ds: Ds, frame: pd.DataFrame, train_cfg: TrainConfig) -> TrainingWindow:
        """The window of ``frame`` (every sample of the window, sorted by sample_ds, sample_id).

        ``frame`` is consumed (its columns are deleted as they are read): the window keeps the
        split's parts, its days and the holdout's features.
        """
        validation_mask = is_validation(frame["query_id"])
        train_rows, validation_rows = np.flatnonzero(~validation_mask), np.flatnonzero(validation_mask)
        days = sorted(frame["sample_ds"].unique().tolist())
        holdout_features = latest_features(frame)
        train = encode_frame(frame, train_cfg, rows=train_rows)
        validation = encode_frame(frame, train_cfg, rows=validation_rows)
        for column in set(frame.columns) - set(TRAIN_FRAME_COLUMNS):  # read: free them before the frames' copies
            del frame[column]
        train_frame = frame_rows(frame, train_rows, TRAIN_FRAME_COLUMNS)
        validation_frame = frame_rows(frame, validation_rows, VALIDATION_FRAME_COLUMNS)
        # one copy of the ids: the tensors' are the frames' (equal, taken from the same rows)
        train.sample_id = sample_ids(train_frame["sample_id"])
        validation.sample_id = sample_ids(validation_frame["sample_id"])
        return cls(ds, train_cfg, days, train_frame, validation_frame, train, validation, holdout_features)

    @property
    def n_validation(self) -> int:
        return len(self.validation)

    def sample_keys(self) -> pd.MultiIndex:
        """(sample_id, sample_ds) of the training samples, in model order: the key scores align on."""
        return pd.MultiIndex.from_frame(self.train_frame[["sample_id", "sample_ds"]])
