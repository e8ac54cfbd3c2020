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

Batched over validation points: distances for a block of them at a time
(:class:`Distances`: one matrix product per block, float32 points), then
``b = max(1, knn_batch_elements // N)`` rows of the distance matrix are sorted at a time
(:func:`nearest_first`) and the recursion runs as a vectorised suffix sum in float64;
memory is O(N·H) for the embeddings plus a 256 MiB distance block plus
O(knn_batch_elements) per batch, independent of M. Cost O(M · N log N) (GPU when present).
"""

from __future__ import annotations

import numpy as np
import torch

from sie.importance.base import Estimator, ScoringContext, batches, register, require_validation
from sie.model.features import SampleTensors


@torch.no_grad()
def embed(model, data: SampleTensors, device: torch.device, batch_size: int) -> torch.Tensor:
    """[N, H] penultimate representations on ``device``, computed in batches into one tensor
    (not concatenated from parts: at 9M samples a second copy would be 2.3 GB)."""
    model.eval()
    out = None
    for sl in batches(len(data), batch_size):
        part = model.embed(*data.inputs(device, sl)).float()
        if out is None:
            out = torch.empty(len(data), part.shape[1], device=device)
        out[sl] = part
    return torch.zeros(0, 0, device=device) if out is None else out


def nearest_first(dist: torch.Tensor) -> torch.Tensor:
    """[b, N] int64 argsort of each row in ``dist``'s own precision, ties broken by index (a stable sort).

    CUDA: ``torch.argsort(stable=True)``. CPU, float32: a sort of composite int64 keys
    ``(float32 distance bits << 32) | index`` — the bit pattern of a non-negative float
    orders like the float, and the unique keys make any sort stable — one row at a time by
    ``torch.sort`` (a 1-D sort uses every core; along the rows of a 2-D tensor it was slower
    per row). The whole method is 1.8× faster at 2.7M points than with numpy's sort of the
    same keys (``benchmarks/knn_sort.py``), which was itself several times faster than an
    argsort of the floats (half-precision rows are widened to float32 exactly). CPU, float64: numpy's
    stable argsort of the values as they are, because rounding them to float32 would order
    near-ties (differences below ~1e-7 relative) by index instead of by distance.
    """
    if dist.device.type != "cpu" or dist.shape[1] >= 2**32:
        return dist.argsort(dim=1, stable=True)
    if dist.dtype == torch.float64:
        return torch.from_numpy(np.argsort(dist.numpy(), axis=1, kind="stable"))
    bits = dist.float().clamp(min=0.0).add_(0.0).view(torch.int32)  # +0.0 turns -0.0 into 0.0
    keys = bits.to(torch.int64).bitwise_left_shift_(32).bitwise_or_(torch.arange(dist.shape[1]))
    for row in keys:
        row.copy_(torch.sort(row).values)
    return keys.bitwise_and_(0xFFFFFFFF)


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
    distances = Distances(train_x)
    block = max(rows, _DISTANCE_BLOCK_ELEMENTS // n)  # validation points per pass over the training points
    for first in range(0, m, block):
        dist = distances.to(val_x[first : first + block])  # [block, N]
        for begin in range(0, dist.shape[0], rows):
            _add_values(acc, dist[begin : begin + rows], train_y, val_y[first + begin : first + begin + rows], k, coef)
        del dist
    return acc / m


#: distance-matrix entries computed per block (float32: 256 MiB): several validation points share
#: one pass over the N training points, which at millions of points is what a distance costs
_DISTANCE_BLOCK_ELEMENTS = 1 << 26


class Distances:
    """Euclidean distances from validation points to the fixed training points ``train_x``.

    float64 points: from differences (``torch.cdist`` without matrix products), whose
    rounding cannot reorder the near-ties the caller asked float64 to resolve. Otherwise
    ``sqrt(‖t‖² + ‖v‖² − 2⟨v, t⟩)`` with the training norms computed once, one matrix product
    per block of validation points: about 50× faster on CPU than ``cdist`` one point at a
    time (its per-pair kernel), at float32 rounding of the squared norms (points whose
    distances differ by less than that may swap ranks; an exact tie is still broken by index).
    """

    def __init__(self, train_x: torch.Tensor):
        self.train_x = train_x
        self.exact = train_x.dtype == torch.float64
        self.train_sq = None if self.exact else train_x.pow(2).sum(1)

    def to(self, val_x: torch.Tensor) -> torch.Tensor:
        if self.exact:
            return torch.cdist(val_x, self.train_x, compute_mode="donot_use_mm_for_euclid_dist")
        sq = torch.addmm(self.train_sq[None, :], val_x, self.train_x.T, alpha=-2.0)  # ‖t‖² − 2⟨v, t⟩
        return sq.add_(val_x.pow(2).sum(1, keepdim=True)).clamp_(min=0.0).sqrt_()


def _add_values(acc: torch.Tensor, dist: torch.Tensor, train_y, vy, k: int, coef: torch.Tensor) -> None:
    """Adds to ``acc`` every training point's Shapley values for the validation points of the ``dist`` rows."""
    n = dist.shape[1]
    order = nearest_first(dist)  # [b, N]
    match = (train_y[order] == vy[:, None]).to(torch.float64)
    last = match[:, -1:] * (min(k, n) / (n * k))  # s_{α_N}
    diff = (match[:, :-1] - match[:, 1:]).mul_(coef)  # [b, N-1]
    # s_{α_i} = s_{α_N} + Σ_{j=i}^{N-1} diff_j  (suffix sum = total − exclusive prefix)
    prefix = diff.cumsum(1)
    suffix = prefix[:, -1:] - prefix + diff
    values = torch.cat([suffix + last, last], 1)
    acc.index_add_(0, order.reshape(-1), values.reshape(-1))


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
