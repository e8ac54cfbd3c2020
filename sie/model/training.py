"""Training the ranker (no I/O: tensors in, a model and its training dynamics out).

Training records, at no extra forward cost, the per-sample loss and logit of every
epoch (the raw material of the training-dynamics estimators: loss, EL2N, forgetting,
AUM) and keeps a checkpoint (state dict) per epoch in memory (for TracIn).

The loss is ``train.objective`` (sie.model.objective): pointwise BCE on clicks, or a
listwise / pairwise loss over each query request's graded relevance; for those, every
batch holds whole requests (:func:`request_batches`) so a request's loss is computed
over all its samples, and the recorded per-sample loss is the sample's term of it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch

from sie.config import TrainConfig
from sie.model.features import SampleTensors
from sie.model.objective import Objective
from sie.model.ranker import NeuralRanker, resolve_device

log = logging.getLogger(__name__)


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


def request_batches(group: torch.Tensor, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    """Sample indices in batches of whole query requests, requests in a random order.

    A batch takes the requests that start within its ``batch_size`` slots of the shuffled
    order, so it holds about ``batch_size`` samples (more by at most one request).
    """
    uniq, inverse = torch.unique(group, return_inverse=True)
    rank = torch.empty(len(uniq), dtype=torch.long)
    rank[torch.randperm(len(uniq), generator=gen)] = torch.arange(len(uniq))
    order = torch.argsort(rank[inverse], stable=True)  # a request's samples stay together
    sizes = torch.bincount(rank[inverse], minlength=len(uniq))
    starts = torch.cumsum(sizes, 0) - sizes  # position of each (shuffled) request in ``order``
    batch_of_request = starts // batch_size
    _, per_batch = torch.unique_consecutive(batch_of_request.repeat_interleave(sizes), return_counts=True)
    return list(torch.split(order, per_batch.tolist()))


def epoch_batches(data: SampleTensors, cfg: TrainConfig, gen: torch.Generator, whole_requests: bool):
    if whole_requests:
        return request_batches(data.group, cfg.batch_size, gen)
    order = torch.randperm(len(data), generator=gen)
    return [order[begin : begin + cfg.batch_size] for begin in range(0, len(data), cfg.batch_size)]


def train_ranker(
    data: SampleTensors,
    cfg: TrainConfig,
    *,
    seed: int | None = None,
    sample_weight: torch.Tensor | None = None,
    keep_checkpoints: bool = True,
    progress: bool = False,
) -> TrainResult:
    """Train a fresh ranker with ``cfg.objective`` (default: pointwise BCE on clicks), recording training dynamics."""
    seed = cfg.seed if seed is None else seed
    gen = set_seed(seed)
    device = resolve_device(cfg.device)
    model = NeuralRanker.from_config(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = len(data)
    if n == 0:
        raise ValueError("cannot train on zero samples")
    objective = Objective.of(cfg, data)
    dyn_loss = np.zeros((cfg.epochs, n), dtype=np.float32)
    dyn_logit = np.zeros((cfg.epochs, n), dtype=np.float32)
    checkpoints: list[dict] = []
    epoch_loss: list[float] = []
    start = time.perf_counter()
    for epoch in range(cfg.epochs):
        model.train()
        total = 0.0
        for idx in epoch_batches(data, cfg, gen, objective.is_group):
            q, i, d = data.inputs(device, idx)
            logits = model(q, i, d)
            per_sample = objective.losses(logits, idx)
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
            log.info("  epoch %d/%d: loss=%.4f", epoch + 1, cfg.epochs, epoch_loss[-1])
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
