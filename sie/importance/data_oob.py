"""`data_oob`: Data-OOB (Kwon & Zou 2023) — out-of-bag scores of a bagged ensemble.

B weak learners are trained on bootstrap resamples; each sample's score is the mean,
over the learners for which it was out of bag, of how well that learner predicts its
label:

    ψ_i = Σ_b 1[w_bi = 0] · T(y_i, f_b(x_i)) / Σ_b 1[w_bi = 0]

Here ``T(y, f(x)) = p̂_b(y | x)`` — the probability the learner gives the observed
click label — rather than the paper's 0/1 accuracy, because clicks are a small minority
and thresholded accuracy would give every click the same score 0.

Streaming, GPU-ready version:

* bootstrap by Poisson(1) weights ``w_bi`` (the standard online-bagging approximation of
  sampling N with replacement), derived from a counter-based hash of (seed, sample
  position, learner), so every pass sees the same weights without storing an N×B matrix;
* learners: ``oob_estimators`` logistic regressions trained jointly (one [B, F] weight
  matrix, Adam, ``oob_epochs`` passes in batches) on a fixed feature map: the ranker's
  first-layer input ``[q, i, q⊙i, dense]`` (``NeuralRanker.features``), standardised.

The bagging/out-of-bag scheme is model-agnostic; the feature map comes from the
trained ranker (it saw every sample's label, so the out-of-bag separation is only at the
learner level — documented caveat). Sign: higher = predictable by models that never saw
it = more valuable; noisy labels get low scores. With a group objective
(``train.objective`` listwise / pairwise) the learners' label is "engaged" (graded
relevance > 0: a click, add to cart or purchase) instead of the click. Cost: (oob_epochs + 2) passes of the
embedding layers + B-way logistic regressions (cheap).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from sie.importance.base import Estimator, ScoringContext, batches, register

_POISSON_CDF = np.cumsum([math.exp(-1.0) / math.factorial(k) for k in range(12)])


def poisson_weights(positions: np.ndarray, n_learners: int, seed: int) -> np.ndarray:
    """[len(positions), n_learners] Poisson(1) bootstrap weights, a pure function of (seed, position, learner)."""
    with np.errstate(over="ignore"):
        x = (
            positions.astype(np.uint64)[:, None] * np.uint64(n_learners)
            + np.arange(n_learners, dtype=np.uint64)[None, :]
        )
        x = x + np.uint64((seed * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF)
        # splitmix64 finaliser
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    u = (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    return np.searchsorted(_POISSON_CDF, u, side="right").astype(np.float32)


@torch.no_grad()
def _features(model, ctx: ScoringContext, sl: slice) -> torch.Tensor:
    return model.features(*ctx.train.inputs(ctx.device, sl)).float()


def data_oob_scores(ctx: ScoringContext) -> np.ndarray:
    icfg = ctx.cfg.importance
    n_learners, epochs, lr = int(icfg.oob_estimators), int(icfg.oob_epochs), float(icfg.oob_lr)
    model = ctx.model.eval()
    n, size, device = len(ctx.train), ctx.batch_size, ctx.device
    seed = int(ctx.seed)
    label = ctx.objective.positive().float()

    # pass 1: feature means / standard deviations (streaming, float64)
    s1 = s2 = None
    for sl in batches(n, size):
        x = _features(model, ctx, sl).double()
        s1 = x.sum(0) if s1 is None else s1 + x.sum(0)
        s2 = x.pow(2).sum(0) if s2 is None else s2 + x.pow(2).sum(0)
    mean = s1 / n
    std = (s2 / n - mean.pow(2)).clamp(min=0).sqrt().clamp(min=1e-6)
    mean, std = mean.float(), std.float()
    n_features = mean.shape[0]

    gen = torch.Generator().manual_seed(seed + 31337)
    weight = (torch.randn(n_learners, n_features, generator=gen) * 0.01).to(device).requires_grad_(True)
    bias = torch.zeros(n_learners, device=device, requires_grad=True)
    opt = torch.optim.Adam([weight, bias], lr=lr)
    order_gen = np.random.default_rng(seed + 2718)
    # passes 2..: train the B logistic regressions on their bootstrap weights
    for _ in range(epochs):
        starts = order_gen.permutation(np.arange(0, n, size))
        for begin in starts:
            sl = slice(int(begin), min(int(begin) + size, n))
            x = (_features(model, ctx, sl) - mean) / std
            y = label[sl].to(device)
            w = torch.from_numpy(poisson_weights(np.arange(sl.start, sl.stop), n_learners, seed)).to(device)
            with torch.enable_grad():
                logits = x @ weight.t() + bias  # [b, B]
                loss = F.binary_cross_entropy_with_logits(
                    logits, y[:, None].expand_as(logits), weight=w, reduction="sum"
                )
                loss = loss / w.sum(0).clamp(min=1.0).mean() + 1e-4 * weight.pow(2).sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    # last pass: out-of-bag probability of the observed label
    out = np.zeros(n, dtype=np.float64)
    with torch.no_grad():
        for sl in batches(n, size):
            x = (_features(model, ctx, sl) - mean) / std
            y = label[sl].to(device)
            p = torch.sigmoid(x @ weight.t() + bias)
            t = torch.where(y[:, None] > 0.5, p, 1.0 - p)
            oob = torch.from_numpy(poisson_weights(np.arange(sl.start, sl.stop), n_learners, seed) == 0).to(device)
            k = oob.sum(1)
            score = torch.where(k > 0, (t * oob).sum(1) / k.clamp(min=1), t.mean(1))
            out[sl] = score.double().cpu().numpy()
    return out


@register
class DataOOB(Estimator):
    name = "data_oob"
    summary = "Data-OOB: mean out-of-bag probability of the observed click over a bagged logistic ensemble"
    needs = ("model",)

    def score(self, ctx: ScoringContext) -> np.ndarray:
        return data_oob_scores(ctx)
