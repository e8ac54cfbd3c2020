"""The training window: the samples of the days ending at ``ds``, split once and encoded once.

Every step that needs the window (train, score, nightly evaluate, the benchmark) builds
one :class:`TrainingWindow` from the window's sample frame and uses its parts; the split
rule (1 in ``VALIDATION_BUCKETS`` query requests held out as click validation) lives here
only.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from sie.config import TrainConfig
from sie.ds import Ds
from sie.model.features import SampleTensors, encode_frame

VALIDATION_BUCKETS = 10  # 1 in 10 query requests is held out of training as click validation
#: the columns :attr:`TrainingWindow.frame` keeps after the split
WHOLE_WINDOW_COLUMNS = (
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
class TrainingWindow:
    """One window's samples (``frame``, sorted by sample_ds, sample_id), split and encoded."""

    ds: Ds
    frame: pd.DataFrame  # every sample of the window (``sample_ds`` and :data:`WHOLE_WINDOW_COLUMNS` once split)
    train_cfg: TrainConfig
    validation_mask: np.ndarray = field(init=False)
    train_frame: pd.DataFrame = field(init=False)  # the samples the model trains on (and that are scored)
    validation_frame: pd.DataFrame = field(init=False)  # held-out clicks from the same days
    train: SampleTensors = field(init=False)
    validation: SampleTensors = field(init=False)

    def __post_init__(self) -> None:
        self.validation_mask = is_validation(self.frame["query_id"])
        self.train_frame = self.frame[~self.validation_mask].reset_index(drop=True)
        self.validation_frame = self.frame[self.validation_mask].reset_index(drop=True)
        # the split frames hold every column; the whole window keeps what the holdout's feature
        # lookup reads (sie.selection.holdout): half the memory of a 10M-sample window otherwise
        self.frame = self.frame[[c for c in WHOLE_WINDOW_COLUMNS if c in self.frame]]
        self.train = encode_frame(self.train_frame, self.train_cfg)
        self.validation = encode_frame(self.validation_frame, self.train_cfg)

    @property
    def days(self) -> list[str]:
        return sorted(self.frame["sample_ds"].unique().tolist())

    @property
    def n_validation(self) -> int:
        return int(self.validation_mask.sum())

    def sample_keys(self) -> pd.MultiIndex:
        """(sample_id, sample_ds) of the training samples, in model order: the key scores align on."""
        return pd.MultiIndex.from_frame(self.train_frame[["sample_id", "sample_ds"]])
