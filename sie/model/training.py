"""Training the ranker (no I/O: tensors in, a model and its training dynamics out).

Training records, at no extra forward cost, the per-sample loss and logit of every
epoch (the raw material of the training-dynamics estimators: loss, EL2N, forgetting,
AUM) and keeps a checkpoint (state dict) per epoch in memory (for TracIn).

The loss is ``train.objective`` (sie.model.objective): pointwise BCE on clicks, or a
listwise / pairwise loss over each query request's graded relevance; for those, every
batch holds whole requests (:func:`request_batches`) so a request's loss is computed
over all its samples, and the recorded per-sample loss is the sample's term of it.

Data-parallel (``world`` of several ``torchrun`` processes, sie.model.distributed): every
rank draws the same batches (same seed) and takes its contiguous part of each (whole
requests for a group objective); the model is wrapped in DistributedDataParallel, whose
gradient all-reduce averages over ranks, so each rank's loss is scaled to make the
averaged gradient the gradient of the *global* batch's mean loss, as in one process. Each
rank records the dynamics of its own samples; they are summed over the ranks after every
epoch, so every rank returns the dynamics of all samples. What matches one process: the
batches, the initial weights and, exactly, which sample's dynamics come from which
batch; what is only close: the gradient (a sum split in two and reduced across ranks,
float32 rounding differs), hence the weights, losses and logits after the first step.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch

from sie.config import TrainConfig
from sie.model.distributed import SINGLE, World, split_batch, sum_arrays
from sie.model.features import SampleTensors
from sie.model.objective import Objective
from sie.model.ranker import NeuralRanker, build_ranker, resolve_device

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
    world: World = SINGLE,
) -> TrainResult:
    """Train a fresh ranker with ``cfg.objective`` (default: pointwise BCE on clicks), recording training dynamics.

    ``world``: the data-parallel processes this one is part of (module doc); every rank must call
    this with the same data and settings, and every rank returns the same result.
    """
    cfg = cfg.effective()
    seed = cfg.seed if seed is None else seed
    gen = set_seed(seed)
    device = resolve_device(cfg.device)
    model = build_ranker(cfg).to(device)
    forward = data_parallel(model, world, device)
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
        for batch in epoch_batches(data, cfg, gen, objective.is_group):
            idx = split_batch(batch, data.group if objective.is_group else None, world.rank, world.size)
            # a rank with no share of a (tiny) batch still joins its gradient all-reduce, with a zero loss
            share = 1.0 if len(idx) else 0.0
            idx = idx if len(idx) else batch[:1]
            q, i, d = data.inputs(device, idx)
            with autocast(device):
                logits = forward(q, i, d).float()
            per_sample = objective.losses(logits, idx)
            if sample_weight is not None:
                weighted = per_sample * sample_weight[idx].to(device)
            else:
                weighted = per_sample
            # DDP averages the ranks' gradients: scaled so that the average is the global batch mean's
            loss = weighted.mean() if not world.is_distributed else weighted.sum() * (share * world.size / len(batch))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if share:
                dyn_loss[epoch, idx.numpy()] = per_sample.detach().float().cpu().numpy()
                dyn_logit[epoch, idx.numpy()] = logits.detach().float().cpu().numpy()
                total += float(per_sample.detach().sum())
        if world.is_distributed:  # each rank filled its own samples: the sums hold every sample's values
            dyn_loss[epoch], dyn_logit[epoch], summed = sum_arrays(
                [dyn_loss[epoch], dyn_logit[epoch], np.array([total])], world
            )
            total = float(summed[0])
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


def data_parallel(model: NeuralRanker, world: World, device: torch.device):
    """What the training loop calls forward on: ``model`` itself, or its DDP wrapper with several ranks.

    Every parameter of both rankers takes part in each forward pass (the cross-encoder is built
    without the checkpoint's unused pooler), so DDP need not search for unused ones each step.
    """
    if not world.is_distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def autocast(device: torch.device):
    """bf16 autocast on CUDA (matmuls in bf16, losses and optimiser state in fp32); a no-op on CPU."""
    return torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


@torch.no_grad()
def predict(model: NeuralRanker, data: SampleTensors, batch_size: int = 8192) -> np.ndarray:
    model.eval()
    device = next(model.parameters()).device
    out = []
    for begin in range(0, len(data), batch_size):
        sl = slice(begin, begin + batch_size)
        with autocast(device):
            out.append(model(*data.inputs(device, sl)).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)
