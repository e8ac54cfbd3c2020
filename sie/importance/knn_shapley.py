"""`knn_shapley`: exact KNN-Shapley values (Jia et al. 2019, PVLDB 12(11), Theorem 1).

Utility of a training subset S for one validation point (x_v, y_v): the K-nearest-
neighbour likelihood of the right label, ``U_v(S) = (1/K) Σ_{k ≤ min(K,|S|)} 1[y_{α_k(S)} = y_v]``.
Sorting the N training points by distance to x_v (α_1 nearest … α_N farthest), the
exact Shapley values follow from the recursion

    s_{α_N} = 1[y_{α_N} = y_v] · min(K, N) / (N K)      (= 1[·]/N when N ≥ K, as in the paper)
    s_{α_i} = s_{α_{i+1}} + (1[y_{α_i} = y_v] − 1[y_{α_{i+1}} = y_v]) / K · min(K, i) / i

and the score is the mean over validation points, ``s_i = (1/M) Σ_v s_{v,i}``
(higher = the sample's label agrees with held-out clicks near it = more valuable).

Points are the final ranker's penultimate representation (``NeuralRanker.embed``),
labels are clicks, distances Euclidean. The validation points are ``ctx.validation``
(held-out clicks of the window, never trained on; never the benchmark holdout), capped
at ``knn_max_validation`` by a seeded uniform sample (0 = no cap). Equal distances are
broken by training-set position (stable sort), which is what makes "exact" well defined;
distances are sorted in the precision of the embeddings (float32 from the ranker, float64
when the caller passes float64 points).

Batched over validation points: ``b = max(1, knn_batch_elements // N)`` rows of the
distance matrix are sorted at a time (:func:`nearest_first`) and the recursion runs as a vectorised suffix sum
in float64; memory is O(N·H) for the embeddings plus O(knn_batch_elements) per batch,
independent of M. Cost O(M · N log N) (GPU when present).
"""

from __future__ import annotations

import numpy as np
import torch

from sie.importance.base import Estimator, ScoringContext, batches, register, require_validation
from sie.model.features import SampleTensors


@torch.no_grad()
def embed(model, data: SampleTensors, device: torch.device, batch_size: int) -> torch.Tensor:
    """[N, H] penultimate representations on ``device``, computed in batches."""
    model.eval()
    parts = [model.embed(*data.inputs(device, sl)).float() for sl in batches(len(data), batch_size)]
    if not parts:
        return torch.zeros(0, 0, device=device)
    return torch.cat(parts)


def nearest_first(dist: torch.Tensor) -> torch.Tensor:
    """[b, N] int64 argsort of each row in ``dist``'s own precision, ties broken by index (a stable sort).

    CUDA: ``torch.argsort(stable=True)``. CPU, float32: an in-place numpy sort of composite
    int64 keys ``(float32 distance bits << 32) | index`` — the bit pattern of a non-negative
    float orders like the float, and the unique keys make any sort stable; several times
    faster than torch's CPU argsort (half-precision rows are widened to float32 exactly).
    CPU, float64: numpy's stable argsort of the values as they are, because rounding them
    to float32 would order near-ties (differences below ~1e-7 relative) by index instead
    of by distance.
    """
    if dist.device.type != "cpu" or dist.shape[1] >= 2**32:
        return dist.argsort(dim=1, stable=True)
    if dist.dtype == torch.float64:
        return torch.from_numpy(np.argsort(dist.numpy(), axis=1, kind="stable"))
    d = dist.float().clamp(min=0.0).add(0.0).contiguous()  # +0.0 turns -0.0 into 0.0
    keys = d.view(torch.int32).numpy().astype(np.int64) << 32
    keys |= np.arange(d.shape[1], dtype=np.int64)
    keys.sort(axis=1)
    keys &= 0xFFFFFFFF
    return torch.from_numpy(keys)


@torch.no_grad()
def knn_shapley_values(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    val_x: torch.Tensor,
    val_y: torch.Tensor,
    k: int,
    batch_elements: int = 1 << 21,
) -> torch.Tensor:
    """[N] exact KNN-Shapley values averaged over the validation points (float64)."""
    n, m = train_x.shape[0], val_x.shape[0]
    device = train_x.device
    acc = torch.zeros(n, dtype=torch.float64, device=device)
    if n == 0 or m == 0:
        return acc
    ranks = torch.arange(1, n + 1, dtype=torch.float64, device=device)
    coef = (torch.clamp(ranks, max=k) / ranks / k)[:-1]  # min(K, i) / (i K), i = 1..N-1
    train_y = train_y.to(device)
    val_y = val_y.to(device)
    rows = max(1, int(batch_elements) // n)
    # float64 points: distances from differences, not ‖x‖² + ‖y‖² − 2⟨x, y⟩, whose
    # cancellation error could reorder near-ties the caller asked float64 to resolve
    mode = "donot_use_mm_for_euclid_dist" if train_x.dtype == torch.float64 else "use_mm_for_euclid_dist_if_necessary"
    for begin in range(0, m, rows):
        vx, vy = val_x[begin : begin + rows], val_y[begin : begin + rows]
        order = nearest_first(torch.cdist(vx, train_x, compute_mode=mode))  # [b, N]
        match = (train_y[order] == vy[:, None]).to(torch.float64)
        last = match[:, -1:] * (min(k, n) / (n * k))  # s_{α_N}
        diff = (match[:, :-1] - match[:, 1:]).mul_(coef)  # [b, N-1]
        # s_{α_i} = s_{α_N} + Σ_{j=i}^{N-1} diff_j  (suffix sum = total − exclusive prefix)
        prefix = diff.cumsum(1)
        suffix = prefix[:, -1:] - prefix + diff
        values = torch.cat([suffix + last, last], 1)
        acc.index_add_(0, order.reshape(-1), values.reshape(-1))
        del order, match, diff, prefix, suffix, values
    return acc / m


def validation_subset(ctx: ScoringContext, cap: int) -> SampleTensors:
    m = len(ctx.validation)
    if cap <= 0 or m <= cap:
        return ctx.validation
    rng = np.random.default_rng(int(ctx.seed) + 104729)
    return ctx.validation.subset(np.sort(rng.choice(m, size=cap, replace=False)))


@register
class KNNShapley(Estimator):
    name = "knn_shapley"
    summary = "exact KNN-Shapley value of each sample against held-out validation clicks, on ranker embeddings"
    needs = ("model", "validation")

    def score(self, ctx: ScoringContext) -> np.ndarray:
        require_validation(ctx, self.name)
        icfg = self.cfg.importance
        val = validation_subset(ctx, int(icfg.knn_max_validation))
        train_x = embed(ctx.model, ctx.train, ctx.device, ctx.batch_size)
        val_x = embed(ctx.model, val, ctx.device, ctx.batch_size)
        values = knn_shapley_values(
            train_x, ctx.train.click, val_x, val.click, int(icfg.knn_k), int(icfg.knn_batch_elements)
        )
        return values.cpu().numpy()
