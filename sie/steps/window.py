"""Loading the training window and the evaluation set from the warehouse.

The train step reads and encodes its window (:func:`load_window`) and saves the encoded
window in the model version (:func:`save_window`); the score and evaluate steps of that
version read it back memory-mapped (:func:`load_trained_window`) instead of reading,
sorting and encoding the window's Parquet again, once per method: at 10M samples that
re-read was most of a score step's memory and minutes of its time. A saved window is used
only while the window's days, their `samples` files and the train settings are what they
were when it was saved; otherwise the window is read afresh.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from sie.config import SieConfig
from sie.ds import Ds
from sie.model.features import SampleTensors, TokenRows, sample_ids
from sie.model.window import (
    WINDOW_BATCH_COLUMNS,
    WINDOW_KEY_COLUMNS,
    TrainingWindow,
    WindowEncoder,
    WindowFeatures,
    window_order,
)
from sie.selection.holdout import holdout_tensors, with_titles
from sie.selection.retrain import EvalSet
from sie.store import Warehouse, lean_pandas, release_freed_memory

log = logging.getLogger(__name__)


def usable_days(cfg: SieConfig, ds: Ds, n_days: int) -> list[Ds]:
    """The window's published days that did not fail validation; an error when ``ds`` itself is not usable."""
    from sie.validate import failed_suites
    from sie.validate.suites import INGEST_SUITES

    wh = Warehouse.from_config(cfg)
    published = {p["ds"] for p in wh.partitions("samples")}
    if ds not in published:
        raise FileNotFoundError(f"no published samples for ds={ds} under {wh.table_dir('samples')}")
    days = []
    for day in ds.window(n_days):
        failed = failed_suites(cfg, day, INGEST_SUITES) if day in published else []
        if day == ds and failed:
            raise ValueError(f"ds={ds} failed validation ({', '.join(failed)}): fix its data, re-ingest and validate")
        if failed:
            log.warning("window of ds=%s: leaving out ds=%s, which failed validation (%s)", ds, day, failed)
        elif day in published:
            days.append(day)
    return days


def load_window(cfg: SieConfig, ds: Ds) -> TrainingWindow:
    """The training window ending ``ds`` (``cfg.train.window_days`` days), split and encoded once.

    Its keys are read whole, in window order (:func:`window_order`); its other columns are then
    read again, from the same files (the runs the manifest named at the start), in record
    batches of at most ``train.read_batch_rows`` rows, each encoded at its rows' places in the
    ordered keys (:class:`WindowEncoder`).
    """
    wh = Warehouse.from_config(cfg)
    where, runs = {"ds": usable_days(cfg, ds, cfg.train.window_days)}, wh.current_runs()
    keys = wh.read_table("samples", where, runs=runs, columns=list(WINDOW_KEY_COLUMNS))
    keys = keys.rename_columns(["sample_ds" if c == "ds" else c for c in keys.column_names])
    order = window_order(keys)
    keys = sorted_columns(keys, order)
    release_freed_memory()  # the unsorted columns
    keys = lean_pandas(keys)
    place = np.empty(len(keys), dtype=np.int64)  # each row's place in the ordered keys, in read order
    place[order.to_numpy()] = np.arange(len(keys))
    del order
    release_freed_memory()
    encoder, start = WindowEncoder(ds, keys, cfg.train), 0
    batches = wh.read_batches(
        "samples", where, runs=runs, columns=list(WINDOW_BATCH_COLUMNS), batch_rows=cfg.train.read_batch_rows
    )
    for batch in batches:
        if start + batch.num_rows > len(place):
            raise ValueError(f"window of ds={ds}: its samples changed while it was read; run the step again")
        n, batch = batch.num_rows, lean_pandas(batch).rename(columns={"ds": "sample_ds"})
        encoder.add(batch, place[start : start + n])
        start += n
        batch = None
        release_freed_memory()  # the batch's: else the process keeps the largest batches' memory
        log.info("window of ds=%s: %s of %s rows encoded", ds, f"{start:,}", f"{len(place):,}")
    window = encoder.finish()
    release_freed_memory()  # the keys' columns, freed by the split
    return window


def sorted_columns(table: pa.Table, order: pa.Array) -> pa.Table:
    """``table.take(order)`` (e.g. Arrow's sort indices: ~10x pandas' sort), one column at a time:
    each unsorted column is released once its sorted copy exists, so the table is never held twice."""
    columns = {}
    for name in table.column_names:
        columns[name] = table.column(name).take(order)
        table = table.drop_columns([name])
    return pa.table(columns)


# ---- the encoded window saved in a model version -------------------------------------------

#: the folder of a model version that holds the window it was trained on, encoded
SAVED_WINDOW = "window"
_TENSORS = ("dense", "click", "label", "group", "client", "session")
#: the train settings a window's encoding depends on (TrainConfig fields)
_ENCODING_SETTINGS = ("model", "transformer", "window_days", "vocab_size", "max_query_tokens", "max_item_tokens")


def window_source(cfg: SieConfig, ds: Ds) -> dict:
    """What the window ending ``ds`` is read from now: its usable days, their `samples` files
    and the train settings that fix its encoding. Take it before reading the window: a day
    re-published in between then shows as a changed source, never as a stale window."""
    wh = Warehouse.from_config(cfg)
    days = usable_days(cfg, ds, cfg.train.window_days)
    files = sorted(str(f.path.relative_to(wh.root)) for f in wh.data_files("samples", {"ds": days}))
    train = asdict(cfg.train)
    encoding = {k: train[k] for k in _ENCODING_SETTINGS}
    # (through JSON: the form it is saved in, so that a saved source compares equal)
    return json.loads(json.dumps({"days": days, "samples_files": files, "encoding": encoding}))


def save_window(window: TrainingWindow, source: dict, folder: Path, version_id: str) -> None:
    """Write ``window`` (read from ``source``, :func:`window_source`) to ``folder``, in the model
    version ``version_id``: its tensors as ``.npy`` arrays, its frames and holdout features as
    Parquet, ``source.json`` last."""
    folder.mkdir(parents=True)
    for part in ("train", "validation"):
        _save_tensors(getattr(window, part), folder / part)
    window.train_frame.to_parquet(folder / "train_frame.parquet")
    window.validation_frame.to_parquet(folder / "validation_frame.parquet")
    window.holdout_features.items.to_parquet(folder / "holdout_items.parquet")
    window.holdout_features.queries.to_parquet(folder / "holdout_queries.parquet")
    (folder / "source.json").write_text(json.dumps({"ds": window.ds, "version_id": version_id, **source}))


def _save_tensors(data: SampleTensors, folder: Path) -> None:
    folder.mkdir()
    for name in ("query_tokens", "item_tokens"):
        tokens = getattr(data, name)
        if not isinstance(tokens, TokenRows):  # dense rows: each its own table row
            tokens = TokenRows(tokens, torch.arange(len(tokens), dtype=torch.int32))
        np.save(folder / f"{name}_table.npy", tokens.table.numpy())
        np.save(folder / f"{name}_codes.npy", tokens.codes.numpy())
    for name in _TENSORS:
        if getattr(data, name) is not None:
            np.save(folder / f"{name}.npy", getattr(data, name).numpy())


def load_trained_window(cfg: SieConfig, ds: Ds) -> TrainingWindow:
    """The window ``ds``'s model version was trained on: as the train step saved it while its
    source is unchanged (:func:`window_source`), else read afresh (:func:`load_window`)."""
    folder = Warehouse.from_config(cfg).model_dir(ds) / SAVED_WINDOW
    saved = folder / "source.json"
    if saved.exists():
        source = json.loads(saved.read_text())
        version_id = source.pop("version_id", None)
        if source.pop("ds") == ds and source == window_source(cfg, ds):
            return read_window(folder, Ds(ds), source["days"], cfg, version_id)
        log.info("window of ds=%s: its samples or train settings changed since training; reading it afresh", ds)
    return load_window(cfg, ds)


def read_window(folder: Path, ds: Ds, days: list[str], cfg: SieConfig, version_id: str | None) -> TrainingWindow:
    """The window of ``days`` saved in ``folder`` by :func:`save_window`, its arrays memory-mapped.

    The training frame (the ids and keys of every training sample: the largest thing left to
    read) is read only when first used: the score step does not use it (its scores' keys come
    from the model's index, batch by batch), so the training tensors carry no ids either."""
    validation_frame = lean_pandas(pq.read_table(folder / "validation_frame.parquet"))
    features = WindowFeatures(
        items=lean_pandas(pq.read_table(folder / "holdout_items.parquet")),
        queries=lean_pandas(pq.read_table(folder / "holdout_queries.parquet")),
    )
    train = _read_tensors(folder / "train", None)
    validation = _read_tensors(folder / "validation", sample_ids(validation_frame["sample_id"]))
    return TrainingWindow(
        ds,
        cfg.train,
        days,
        None,
        validation_frame,
        train,
        validation,
        features,
        read_train_frame=lambda: lean_pandas(pq.read_table(folder / "train_frame.parquet")),
        version_id=version_id,
    )


def _read_tensors(folder: Path, ids: np.ndarray | None) -> SampleTensors:
    def array(name: str) -> torch.Tensor | None:
        path = folder / f"{name}.npy"
        # copy-on-write mapping: pages are read as batches touch them, and are the page cache's to drop
        return torch.from_numpy(np.load(path, mmap_mode="c")) if path.exists() else None

    tokens = {
        name: TokenRows(array(f"{name}_table"), array(f"{name}_codes")) for name in ("query_tokens", "item_tokens")
    }
    values = {name: array(name) for name in _TENSORS}
    return SampleTensors(**tokens, **values, sample_id=ids)


def load_holdout(wh: Warehouse) -> pd.DataFrame:
    """The judged holdout with item titles; FileNotFoundError when the warehouse has none."""
    if not wh.holdout_path.exists():
        raise FileNotFoundError(f"benchmark holdout not found at {wh.holdout_path} (the simulator writes it)")
    catalog = pd.read_parquet(wh.catalog_path, columns=["item_id", "title"])
    return with_titles(pd.read_parquet(wh.holdout_path), catalog)


def oracle_truth(wh: Warehouse, days: list[str], samples: pd.DataFrame) -> pd.DataFrame | None:
    """The simulator oracle's (noise_type, is_noise, matched) aligned row by row with ``samples``
    (columns sample_id, sample_ds); None when no day has an oracle (real logs).

    Samples the oracle does not know get noise type ``'unknown'`` and count as clean.
    """
    parts = []
    for day in days:
        path = wh.oracle_path(day)
        if path.exists():
            o = pd.read_parquet(path, columns=["sample_id", "noise_type", "is_noise"])
            parts.append(o.assign(sample_ds=day).drop_duplicates(["sample_id", "sample_ds"]))
    if not parts:
        return None
    oracle = pd.concat(parts, ignore_index=True)
    keys = samples[["sample_id", "sample_ds"]]
    truth = keys.merge(oracle, on=["sample_id", "sample_ds"], how="left", validate="many_to_one")
    truth["matched"] = truth["noise_type"].notna()
    truth["noise_type"] = truth["noise_type"].fillna("unknown")
    truth["is_noise"] = truth["is_noise"].fillna(False).astype(bool)
    return truth


def load_evalset(cfg: SieConfig, window: TrainingWindow, per_query: bool = False) -> EvalSet:
    """The holdout (features from the window) and the window's held-out clicks.

    Where the simulator's oracle exists, ``validation_noise`` marks the held-out clicks'
    injected noise, so cells also report the clean-click metrics; ``per_query`` keeps each
    holdout row's query text, so cells also report NDCG@10 per held-out query.
    """
    wh = Warehouse.from_config(cfg)
    holdout = load_holdout(wh)
    truth = oracle_truth(wh, window.days, window.validation_frame)
    return EvalSet(
        holdout=holdout_tensors(holdout, window.holdout_features, cfg.train),
        validation=window.validation,
        validation_noise=None if truth is None else truth["is_noise"].to_numpy(dtype=np.bool_),
        holdout_queries=holdout["query_text"].to_numpy(dtype=object) if per_query else None,
    )
