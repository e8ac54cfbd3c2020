"""Model versions under ``models/ds=D``: checkpoints, training dynamics and the trained index.

``save_model`` publishes a version atomically (staged, then swapped in); ``load_model``
reads everything scoring needs into memory, so estimators never touch files.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from sie.config import SieConfig, TrainConfig
from sie.ds import Ds
from sie.model.ranker import NeuralRanker, build_ranker, resolve_device
from sie.model.training import TrainResult
from sie.model.window import TrainingWindow
from sie.steps.window import SAVED_WINDOW, save_window
from sie.store import Warehouse, lean_pandas


@dataclass
class ModelVersion:
    """The files of the model trained on the window ending ``ds``."""

    ds: str
    path: Path

    @property
    def index_path(self) -> Path:
        return self.path / "train_index.parquet"

    @property
    def meta_path(self) -> Path:
        return self.path / "model.json"

    def checkpoint_path(self, epoch: int) -> Path:
        return self.path / "checkpoints" / f"epoch-{epoch:03d}.pt"


@dataclass
class LoadedModel:
    """A model version in memory: the final model, its meta, every epoch's state and the dynamics."""

    model: NeuralRanker
    meta: dict
    checkpoint_states: list[dict]
    dynamics_loss: np.ndarray
    dynamics_logit: np.ndarray
    # sample_id, sample_ds, ... of the trained samples, in model order (read in batches: :func:`index_batches`)
    index_path: Path


def model_meta(cfg: SieConfig, window: TrainingWindow, result: TrainResult) -> dict:
    return {
        "ds": window.ds,
        # one train step's publication: the saved window and the model it names are one version's
        "version_id": uuid.uuid4().hex,
        "model_id": result.model.model_id,
        "model_version": model_version(result.model.model_id, window.ds),
        "n_train": result.n_train,
        "n_validation": window.n_validation,
        "epochs": result.epochs,
        "epoch_loss": result.epoch_loss,
        "learning_rates": result.learning_rates,
        "train_seconds": result.seconds,
        "window": window.days,
        "device": str(next(result.model.parameters()).device),
        "train_config": asdict(cfg.train),
    }


def model_version(model_id: str, ds: str) -> str:
    """``ranker-<ds>`` for the default MLP (as before models had ids), ``<model id>-<ds>`` otherwise."""
    return f"ranker-{ds}" if model_id == "mlp" else f"{model_id}-{ds}"


def save_model(cfg: SieConfig, window: TrainingWindow, result: TrainResult, source: dict | None = None) -> dict:
    """Publish checkpoints, dynamics, the trained index and meta as ``models/ds=<window.ds>``; with
    the window's ``source`` (sie.steps.window.window_source) also the encoded window, which the
    version's score steps then read instead of the window's Parquet."""
    wh = Warehouse.from_config(cfg)
    staging = wh.staging_dir / f"model-{uuid.uuid4().hex}"
    (staging / "checkpoints").mkdir(parents=True)
    version = ModelVersion(window.ds, staging)
    for epoch, state in enumerate(result.checkpoints):
        torch.save(state, version.checkpoint_path(epoch))
    np.save(staging / "dynamics_loss.npy", result.dynamics_loss)
    np.save(staging / "dynamics_logit.npy", result.dynamics_logit)
    window.train_frame[["sample_id", "sample_ds", "query_id", "click", "label"]].to_parquet(version.index_path)
    meta = model_meta(cfg, window, result)
    version.meta_path.write_text(json.dumps(meta, indent=2))
    if source is not None:
        save_window(window, source, staging / SAVED_WINDOW, meta["version_id"])
    wh.publish_folder(staging, wh.model_dir(window.ds))
    return meta


def checked_train_config(cfg: SieConfig, meta: dict) -> TrainConfig:
    """``cfg.train``, refused when the version (``meta``) was trained with another ranker."""
    trained = meta.get("train_config", {}).get("model", "mlp")
    if trained != cfg.train.model:
        raise ValueError(
            f"the model of ds={meta['ds']} is {trained!r} but train.model={cfg.train.model!r}; "
            f"retrain it (`sie train --ds {meta['ds']}`) or set train.model={trained}"
        )
    return cfg.train


def read_index(index_path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """The trained index whole, with Arrow-backed strings (a Python str per sample id would cost a
    10M-sample window's scoring step about 0.8 GB)."""
    return lean_pandas(pq.read_table(index_path, columns=columns))


def index_batches(index_path: Path, columns: list[str], batch_rows: int) -> Iterator[pa.Table]:
    """The trained index's ``columns`` in model order, at most ``batch_rows`` rows at a time."""
    for batch in pq.ParquetFile(index_path).iter_batches(batch_size=batch_rows, columns=columns):
        yield pa.Table.from_batches([batch])


def index_rows(index_path: Path, columns: list[str], rows: np.ndarray, batch_rows: int) -> pa.Table:
    """The trained index's ``columns`` at the positions ``rows`` (ascending), read batch by batch:
    only those rows are kept (a rank's shard of a 10M-sample window)."""
    parts, start = [], 0
    for batch in index_batches(index_path, columns, batch_rows):
        low, high = np.searchsorted(rows, [start, start + batch.num_rows])
        parts.append(batch.take(rows[low:high] - start))
        start += batch.num_rows
    if len(rows) and (rows[-1] >= start or np.any(np.diff(rows) <= 0)):
        raise IndexError(f"rows {rows[0]}..{rows[-1]} are not ascending positions of the {start} trained samples")
    return pa.concat_tables(parts) if parts else pq.read_schema(index_path).empty_table().select(columns)


def load_model(cfg: SieConfig, ds: Ds) -> LoadedModel:
    """The model version trained on the window ending ``ds``, in memory on the configured device."""
    version = ModelVersion(ds, Warehouse.from_config(cfg).model_dir(ds))
    if not version.meta_path.exists():
        raise FileNotFoundError(f"no trained model for ds={ds} at {version.path}; run `sie train --ds {ds}` first")
    meta = json.loads(version.meta_path.read_text())
    states = [torch.load(version.checkpoint_path(e), map_location="cpu") for e in range(meta["epochs"])]
    model = build_ranker(checked_train_config(cfg, meta), pretrained=False)
    model.load_state_dict(states[-1])
    model.to(resolve_device(cfg.train.device))
    return LoadedModel(
        model=model,
        meta=meta,
        checkpoint_states=states,
        dynamics_loss=np.load(version.path / "dynamics_loss.npy"),
        dynamics_logit=np.load(version.path / "dynamics_logit.npy"),
        index_path=version.index_path,
    )
