"""The training window: the samples of the days ending at ``ds``, split once and encoded once.

Every step that needs the window (train, score, nightly evaluate, the benchmark) uses
one :class:`TrainingWindow`: split from the window's sample frame, or as the train step
saved it next to the model version (sie.steps.window); the split rule (1 in ``VALIDATION_BUCKETS`` query requests held out as click validation) lives here
only.

Memory: the window is the largest thing a step holds (10M samples a day). A
:class:`WindowEncoder` holds only the window's key columns whole (:data:`WINDOW_KEY_COLUMNS`,
sorted: what the split, the groups and the frames need) and encodes the wide columns
(titles, features: :data:`WINDOW_BATCH_COLUMNS`) batch by batch, in any order, into
preallocated arrays at each row's place; what is left of the batches is the holdout's small
per-item / per-query feature lookup. :meth:`TrainingWindow.split` encodes a whole frame the
same way, as one batch.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import torch

from sie.config import TrainConfig
from sie.ds import Ds
from sie.model.features import SampleTensors, coded_token_inputs, dense_features, key_tensors, sample_ids
from sie.schemas import DENSE_FEATURES

VALIDATION_BUCKETS = 10  # 1 in 10 query requests is held out of training as click validation
#: the columns of :attr:`TrainingWindow.train_frame`: the keys scores align on (sample_id,
#: sample_ds), what the model's index records (query_id, click, label), the evaluation's
#: strata (query_text) and the sample's client
TRAIN_FRAME_COLUMNS = ("sample_id", "sample_ds", "query_id", "query_text", "client_id", "click", "label")
#: the columns of :attr:`TrainingWindow.validation_frame` (the keys the oracle's truth aligns on)
VALIDATION_FRAME_COLUMNS = ("sample_id", "sample_ds")
#: the features the holdout takes from the window, per item and per query text (:class:`LatestFeatures`)
ITEM_FEATURES = ("item_prior_ctr", "item_log_impressions")
QUERY_FEATURES = ("query_log_freq",)
#: the columns the holdout's feature lookup reads
HOLDOUT_FEATURE_COLUMNS = (
    "sample_ds",
    "request_ts",
    "sample_id",
    "item_id",
    "query_text",
    *ITEM_FEATURES,
    *QUERY_FEATURES,
)
#: the samples columns a window holds whole (besides sample_ds), sorted by (sample_ds, sample_id)
WINDOW_KEY_COLUMNS = ("sample_id", "query_id", "client_id", "session_id", "query_text", "click", "label")
#: the samples columns a window encodes batch by batch (besides sample_ds)
WINDOW_BATCH_COLUMNS = ("item_title", "sample_id", "item_id", "request_ts", "query_text", *DENSE_FEATURES)


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
    """The :class:`WindowFeatures` of a window's frame (sorted by sample_ds, sample_id)."""
    latest = LatestFeatures()
    latest.add(frame)
    return latest.result()


class LatestFeatures:
    """:class:`WindowFeatures` reduced batch by batch: for each key (item, query text) and feature,
    the value of its latest row with a value, by (sample_ds, request_ts, sample_id).
    Keys with no value at all are left out (the holdout reads them as 0 either way)."""

    _KEYS = {"item_id": ITEM_FEATURES, "query_text": QUERY_FEATURES}

    def __init__(self) -> None:
        # per key column: one row per (key, feature): its latest value and when it was logged
        self._latest: dict[str, pd.DataFrame | None] = dict.fromkeys(self._KEYS)

    def add(self, batch: pd.DataFrame) -> None:
        """Take in ``batch`` (:data:`HOLDOUT_FEATURE_COLUMNS`): any rows of the window."""
        ds_code, ds_values = pd.factorize(batch["sample_ds"], sort=True)
        id_rank = _ranks(batch["sample_id"])
        ts = pd.to_datetime(batch["request_ts"], utc=True).array.asi8.copy()
        ts[batch["request_ts"].isna().to_numpy()] = np.iinfo(np.int64).max  # (a missing time sorts last)
        for key, features in self._KEYS.items():
            key_code, key_values = pd.factorize(batch[key])
            found = [] if self._latest[key] is None else [self._latest[key]]
            for feature in features:
                has_value = (key_code >= 0) & batch[feature].notna().to_numpy()
                last = _latest_rows(key_code, has_value, (id_rank, ts, ds_code))
                found.append(
                    pd.DataFrame(
                        {
                            "key": key_values[key_code[last]],
                            "feature": feature,
                            "sample_ds": ds_values[ds_code[last]],
                            "ts": ts[last],
                            "sample_id": batch["sample_id"].array[last],
                            "value": batch[feature].to_numpy(dtype=float)[last],
                        }
                    )
                )
            latest = pd.concat(found, ignore_index=True).sort_values(["sample_ds", "ts", "sample_id"])
            self._latest[key] = latest.groupby(["key", "feature"], sort=False).tail(1)

    def result(self) -> WindowFeatures:
        def wide(key: str) -> pd.DataFrame:
            long = self._latest[key]
            if long is None or long.empty:
                return pd.DataFrame(columns=list(self._KEYS[key]), dtype=float).rename_axis(key)
            out = long.pivot(index="key", columns="feature", values="value").astype(float)
            return out.reindex(columns=list(self._KEYS[key])).rename_axis(index=key, columns=None)

        return WindowFeatures(items=wide("item_id"), queries=wide("query_text"))


def _ranks(values: pd.Series) -> np.ndarray:
    """Each value's place in ``values`` sorted (Arrow's sort: no Python object per value)."""
    order = pc.sort_indices(pa.array(values.array)).to_numpy()
    ranks = np.empty(len(order), dtype=np.int64)
    ranks[order] = np.arange(len(order))
    return ranks


def _latest_rows(key_code: np.ndarray, has_value: np.ndarray, order: tuple[np.ndarray, ...]) -> np.ndarray:
    """Each key's last row among those ``has_value``, by ``np.lexsort(order)`` (last key primary)."""
    rows = np.flatnonzero(has_value)
    rows = rows[np.lexsort(tuple(o[rows] for o in order))]
    _, first_from_end = np.unique(key_code[rows][::-1], return_index=True)
    return rows[len(rows) - 1 - first_from_end]


@dataclass
class TrainingWindow:
    """One window's samples, split and encoded: built from the window's frame by :meth:`split`,
    or read back as the train step saved it (sie.steps.window)."""

    ds: Ds
    train_cfg: TrainConfig
    days: list[str]  # the window's sample days, in order
    # the samples the model trains on (:data:`TRAIN_FRAME_COLUMNS`), through :attr:`train_frame`;
    # None until first read where ``read_train_frame`` is given (a saved window: the score step
    # never reads it, so that its memory does not grow with the window's ids)
    loaded_train_frame: pd.DataFrame | None
    validation_frame: pd.DataFrame  # held-out clicks (:data:`VALIDATION_FRAME_COLUMNS`)
    train: SampleTensors
    validation: SampleTensors
    # each item's and query's latest statistics in the window (sie.selection.holdout)
    holdout_features: WindowFeatures
    read_train_frame: Callable[[], pd.DataFrame] | None = field(default=None, repr=False)
    # the model version whose train step saved this window (None: the window was read afresh)
    version_id: str | None = None

    @property
    def train_frame(self) -> pd.DataFrame:
        if self.loaded_train_frame is None:
            self.loaded_train_frame = self.read_train_frame()
        return self.loaded_train_frame

    @classmethod
    def split(cls, ds: Ds, frame: pd.DataFrame, train_cfg: TrainConfig) -> TrainingWindow:
        """The window of ``frame`` (every sample of the window, sorted by sample_ds, sample_id).

        ``frame`` is consumed (its columns are deleted as they are read): the window keeps the
        split's parts, its days and the holdout's features.
        """
        key_columns = [c for c in ("sample_ds", *WINDOW_KEY_COLUMNS) if c in frame]
        order = np.argsort(is_validation(frame["query_id"]), kind="stable")  # (window_order's, for a sorted frame)
        encoder = WindowEncoder(ds, frame[key_columns].iloc[order].reset_index(drop=True), train_cfg)
        places = np.empty(len(order), dtype=np.int64)
        places[order] = np.arange(len(order))
        encoder.add(frame, places)
        for column in list(frame.columns):  # consumed, as a window read in batches
            del frame[column]
        return encoder.finish()

    @property
    def n_validation(self) -> int:
        return len(self.validation)


def window_order(keys: pa.Table) -> pa.Array:
    """The order of a window's key rows (an Arrow table with sample_ds, sample_id, query_id):
    the training rows, then the held-out ones (:func:`is_validation`), each by (sample_ds,
    sample_id). Each part is then one run of rows, which its tensors and frames slice, not copy."""
    held_out = is_validation(pd.Series(pd.arrays.ArrowStringArray(keys.column("query_id"))))
    keys = pa.table(
        {"held_out": held_out, "sample_ds": keys.column("sample_ds"), "sample_id": keys.column("sample_id")}
    )
    return pc.sort_indices(
        keys, sort_keys=[("held_out", "ascending"), ("sample_ds", "ascending"), ("sample_id", "ascending")]
    )


class WindowEncoder:
    """Builds a :class:`TrainingWindow` from its keys and its batches.

    ``keys``: the window's :data:`WINDOW_KEY_COLUMNS` and sample_ds, every sample, in
    :func:`window_order`; it is consumed. :meth:`add` then takes the other columns
    (:data:`WINDOW_BATCH_COLUMNS` and sample_ds) in batches, in any order, each row with its place
    in ``keys``; :meth:`finish` returns the window once every row was added.
    """

    def __init__(self, ds: Ds, keys: pd.DataFrame, train_cfg: TrainConfig) -> None:
        self.ds, self.keys, self.train_cfg = ds, keys, train_cfg
        held_out = is_validation(keys["query_id"])  # (window_order's split again: the order is checked)
        n_train = int(len(keys) - held_out.sum())
        if held_out[:n_train].any():
            raise ValueError("the window's keys are not in window order (sie.model.window.window_order)")
        self.parts = {"train": slice(0, n_train), "validation": slice(n_train, len(keys))}
        self.dense = np.zeros((len(keys), len(DENSE_FEATURES)), np.float32)
        self.title_code = np.full(len(keys), -1, np.int32)
        self.titles: dict[str, int] = {}  # each distinct title's code, in order of first appearance
        self.latest = LatestFeatures()
        self.added = 0

    def add(self, batch: pd.DataFrame, positions: np.ndarray) -> None:
        """Encode ``batch``, whose row i is the row ``positions[i]`` of the keys."""
        codes, distinct = pd.factorize(batch["item_title"].fillna(""), sort=False)
        known = np.fromiter((self.titles.setdefault(t, len(self.titles)) for t in distinct), np.int32, len(distinct))
        self.title_code[positions] = known[codes]
        self.dense[positions] = dense_features(batch)
        self.latest.add(batch)
        self.added += len(batch)

    def finish(self) -> TrainingWindow:
        keys = self.keys
        if self.added != len(keys):
            raise ValueError(f"window of ds={self.ds}: {self.added:,} rows encoded for {len(keys):,} keys")
        days = sorted(keys["sample_ds"].unique().tolist())
        parts = {part: self._encode(part) for part in self.parts}
        frames = self._frames()
        for part, tensors in parts.items():  # one copy of the ids: the frames' (equal, from the same rows)
            tensors.sample_id = sample_ids(frames[part]["sample_id"])
        return TrainingWindow(
            self.ds,
            self.train_cfg,
            days,
            frames["train"],
            frames["validation"],
            parts["train"],
            parts["validation"],
            self.latest.result(),
        )

    def _frames(self) -> dict[str, pd.DataFrame]:
        """The parts' frames (:data:`TRAIN_FRAME_COLUMNS`, :data:`VALIDATION_FRAME_COLUMNS`): slices
        of the keys' columns (Arrow strings are sliced, not copied); the other columns are freed."""
        wanted = {"train": TRAIN_FRAME_COLUMNS, "validation": VALIDATION_FRAME_COLUMNS}
        frames = {
            part: pd.DataFrame(
                {c: self.keys[c].iloc[self.parts[part]].reset_index(drop=True) for c in names if c in self.keys},
                copy=False,
            )
            for part, names in wanted.items()
        }
        self.keys = None
        return frames

    def _encode(self, part: str) -> SampleTensors:
        rows = self.parts[part]
        q_codes, q_distinct = pd.factorize(self.keys["query_text"].iloc[rows].fillna(""), sort=False)
        t_codes, t_used = pd.factorize(self.title_code[rows], sort=False)  # the part's own titles, in order
        titles = np.array(list(self.titles), dtype=object)[t_used]
        first, second = coded_token_inputs(q_codes, np.asarray(q_distinct), t_codes, titles, self.train_cfg)
        tensors = SampleTensors(first, second, torch.from_numpy(self.dense[rows]), **key_tensors(self.keys, rows))
        tensors.sample_id = None  # (set from the part's frame: not held twice meanwhile)
        return tensors
