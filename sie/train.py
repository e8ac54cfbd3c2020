"""Training the ranker on a rolling window of sample days.

Training records, at no extra forward cost, the per-sample loss and logit of every
epoch (the raw material of the training-dynamics estimators: loss, EL2N, forgetting,
AUM) and saves a checkpoint per epoch (for TracIn).
"""

from __future__ import annotations

import json
import time
import zlib
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from sie.config import SieConfig, TrainConfig
from sie.features import SampleTensors, encode_frame
from sie.models import NeuralRanker, resolve_device
from sie.store import Warehouse

VALIDATION_BUCKETS = 10  # 1 in 10 query requests is held out of training as click validation


def window_days(ds: str, n_days: int) -> list[str]:
    end = date.fromisoformat(ds)
    return [(end - timedelta(days=k)).isoformat() for k in range(n_days - 1, -1, -1)]


def load_window(wh: Warehouse, ds: str, n_days: int) -> pd.DataFrame:
    """Samples of the ``n_days`` ending at ``ds`` (missing earlier days are skipped)."""
    days = window_days(ds, n_days)
    published = {p["ds"] for p in wh.partitions("samples")}
    if ds not in published:
        raise FileNotFoundError(f"no published samples for ds={ds} under {wh.table_dir('samples')}")
    table = wh.read_table("samples", {"ds": [d for d in days if d in published]})
    df = table.to_pandas()
    df = df.rename(columns={"ds": "sample_ds"}).sort_values(["sample_ds", "sample_id"], kind="stable")
    return df.reset_index(drop=True)


def is_validation(query_ids: pd.Series) -> np.ndarray:
    """Deterministic split by query request: held-out clicks for validation-based methods."""
    return np.array([zlib.crc32(q.encode()) % VALIDATION_BUCKETS == 0 for q in query_ids], dtype=bool)


@dataclass
class TrainResult:
    model: NeuralRanker
    seconds: float
    epochs: int
    n_train: int
    epoch_loss: list[float]
    # per-epoch, per-sample values recorded during training: [epochs, N]
    dynamics_loss: np.ndarray
    dynamics_logit: np.ndarray
    checkpoints: list[dict]  # state_dict per epoch (CPU tensors)
    learning_rates: list[float]


def set_seed(seed: int) -> torch.Generator:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    return torch.Generator().manual_seed(seed)


def train_ranker(
    data: SampleTensors,
    cfg: TrainConfig,
    *,
    seed: int | None = None,
    sample_weight: torch.Tensor | None = None,
    keep_checkpoints: bool = True,
    progress: bool = False,
) -> TrainResult:
    """Train a fresh ranker with pointwise BCE on clicks, recording training dynamics."""
    seed = cfg.seed if seed is None else seed
    gen = set_seed(seed)
    device = resolve_device(cfg.device)
    model = NeuralRanker.from_config(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = len(data)
    if n == 0:
        raise ValueError("cannot train on zero samples")
    dyn_loss = np.zeros((cfg.epochs, n), dtype=np.float32)
    dyn_logit = np.zeros((cfg.epochs, n), dtype=np.float32)
    checkpoints: list[dict] = []
    epoch_loss: list[float] = []
    start = time.perf_counter()
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.randperm(n, generator=gen)
        total = 0.0
        for begin in range(0, n, cfg.batch_size):
            idx = order[begin : begin + cfg.batch_size]
            q, i, d = data.inputs(device, idx)
            y = data.click[idx].to(device)
            logits = model(q, i, d)
            per_sample = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
            if sample_weight is not None:
                loss = (per_sample * sample_weight[idx].to(device)).mean()
            else:
                loss = per_sample.mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            dyn_loss[epoch, idx.numpy()] = per_sample.detach().float().cpu().numpy()
            dyn_logit[epoch, idx.numpy()] = logits.detach().float().cpu().numpy()
            total += float(per_sample.detach().sum())
        epoch_loss.append(total / n)
        if keep_checkpoints:
            checkpoints.append({k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
        if progress:
            print(f"  epoch {epoch + 1}/{cfg.epochs}: loss={epoch_loss[-1]:.4f}", flush=True)
    return TrainResult(
        model=model,
        seconds=time.perf_counter() - start,
        epochs=cfg.epochs,
        n_train=n,
        epoch_loss=epoch_loss,
        dynamics_loss=dyn_loss,
        dynamics_logit=dyn_logit,
        checkpoints=checkpoints,
        learning_rates=[cfg.lr] * cfg.epochs,
    )


@torch.no_grad()
def predict(model: NeuralRanker, data: SampleTensors, batch_size: int = 8192) -> np.ndarray:
    model.eval()
    device = next(model.parameters()).device
    out = []
    for begin in range(0, len(data), batch_size):
        sl = slice(begin, begin + batch_size)
        out.append(model(*data.inputs(device, sl)).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


# ---- the daily training step -------------------------------------------------


@dataclass
class ModelVersion:
    """What `sie train` leaves under ``models/ds=D`` for the scoring steps."""

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


def train_day(cfg: SieConfig, ds: str, progress: bool = True) -> dict:
    """Train the ranker on the window ending ``ds``; save checkpoints + dynamics atomically."""
    import uuid

    wh = Warehouse.from_config(cfg)
    frame = load_window(wh, ds, cfg.train.window_days)
    val_mask = is_validation(frame["query_id"])
    train_frame = frame[~val_mask].reset_index(drop=True)
    data = encode_frame(train_frame, cfg.train)
    if progress:
        days = sorted(frame["sample_ds"].unique())
        print(f"train ds={ds}: {len(data)} samples from {days} ({int(val_mask.sum())} held out)", flush=True)
    result = train_ranker(data, cfg.train, progress=progress)

    final = wh.model_dir(ds)
    staging = wh.staging_dir / f"model-{uuid.uuid4().hex}"
    (staging / "checkpoints").mkdir(parents=True)
    version = ModelVersion(ds, staging)
    for epoch, state in enumerate(result.checkpoints):
        torch.save(state, version.checkpoint_path(epoch))
    np.save(staging / "dynamics_loss.npy", result.dynamics_loss)
    np.save(staging / "dynamics_logit.npy", result.dynamics_logit)
    train_frame[["sample_id", "sample_ds", "query_id", "click", "label"]].to_parquet(version.index_path)
    meta = {
        "ds": ds,
        "model_version": f"ranker-{ds}",
        "n_train": result.n_train,
        "n_validation": int(val_mask.sum()),
        "epochs": result.epochs,
        "epoch_loss": result.epoch_loss,
        "learning_rates": result.learning_rates,
        "train_seconds": result.seconds,
        "window": sorted(frame["sample_ds"].unique().tolist()),
        "device": str(next(result.model.parameters()).device),
        "train_config": asdict(cfg.train),
    }
    version.meta_path.write_text(json.dumps(meta, indent=2))
    wh.publish(staging, final)
    return meta


def load_model_version(cfg: SieConfig, ds: str):
    """(model, meta, train_frame, validation_frame) for the model trained on ``ds``'s window."""
    wh = Warehouse.from_config(cfg)
    version = ModelVersion(ds, wh.model_dir(ds))
    if not version.meta_path.exists():
        raise FileNotFoundError(f"no trained model for ds={ds} at {version.path}; run `sie train --ds {ds}` first")
    meta = json.loads(version.meta_path.read_text())
    model = NeuralRanker.from_config(cfg.train)
    last = meta["epochs"] - 1
    model.load_state_dict(torch.load(version.checkpoint_path(last), map_location="cpu"))
    model.to(resolve_device(cfg.train.device))
    return model, meta, version
