"""`grad_norm`: the exact per-sample parameter-gradient norm ‖∂ℓ_i/∂θ‖₂ at the final model.

The first seed formula of the product brief. Computed with ghost norms
(:mod:`sie.importance.ghost`): one forward pass and one backward pass to the layer
outputs per batch, then per-layer norms from the recorded factors; no per-sample
gradient is materialised, so the cost is about one training forward+backward pass.
:func:`vmap_grad_norms` (torch.func, materialising per-sample gradients) is the
reference the tests compare against.

Sign: a sample whose gradient is larger moves the model more and is scored as more
important (score = the norm, as in the seed formula). Under label noise the largest
gradients are mostly noise, so `grad_norm_neg` (score = −norm, the same numbers) is the
variant that ranks suspected noise lowest, like the other detectors (docs/IMPORTANCE.md
says which sign to use when).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from sie.importance.base import Estimator, ScoringContext, iter_batches, per_sample_loss, register
from sie.importance.ghost import GhostCapture
from sie.model.features import SampleTensors


def vmap_per_sample_grads(model: nn.Module, query_tokens, item_tokens, dense, click) -> dict[str, torch.Tensor]:
    """Reference per-sample gradients with torch.func: ``{param name: [B, *param.shape]}``."""
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss_one(p, q, i, d, y):
        logit = functional_call(model, p, (q.unsqueeze(0), i.unsqueeze(0), d.unsqueeze(0)))
        return F.binary_cross_entropy_with_logits(logit, y.unsqueeze(0))

    return vmap(grad(loss_one), in_dims=(None, 0, 0, 0, 0))(params, query_tokens, item_tokens, dense, click)


def vmap_grad_norms(model: nn.Module, query_tokens, item_tokens, dense, click) -> torch.Tensor:
    """Reference per-sample gradient norms with torch.func (materialises per-sample grads)."""
    grads = vmap_per_sample_grads(model, query_tokens, item_tokens, dense, click)
    sq = sum(g.reshape(g.shape[0], -1).pow(2).sum(1) for g in grads.values())
    return sq.sqrt()


def ghost_sq_norms_batch(model: nn.Module, capture: GhostCapture, q, i, d, y) -> torch.Tensor:
    """[B] exact squared per-sample gradient norms of one batch (ghost norms)."""
    with torch.enable_grad():
        with capture:
            logits = model(q, i, d)
        out = capture.backward_sq_norms(per_sample_loss(logits, y).sum()).detach()
    capture.release()
    return out


def ghost_grad_norms(model: nn.Module, data: SampleTensors, device: torch.device, batch_size: int) -> np.ndarray:
    """[N] exact per-sample gradient norms over all parameters, streamed in batches."""
    model.eval()
    capture = GhostCapture(model)
    out = np.zeros(len(data), dtype=np.float64)
    for sl, (q, i, d), y in iter_batches(data, device, batch_size):
        sq = ghost_sq_norms_batch(model, capture, q, i, d, y)
        out[sl] = sq.clamp(min=0).sqrt().double().cpu().numpy()
    return out


@register
class GradNorm(Estimator):
    name = "grad_norm"
    summary = "exact per-sample parameter-gradient L2 norm at the final model (ghost norms)"
    needs = ("model",)

    def score(self, ctx: ScoringContext) -> np.ndarray:
        return ghost_grad_norms(ctx.model, ctx.train, ctx.device, ctx.batch_size)


@register
class GradNormNeg(Estimator):
    name = "grad_norm_neg"
    summary = "−grad_norm: small per-sample gradients first (large gradients = hard or noisy samples rank lowest)"
    needs = ("model",)

    def uses(self) -> tuple[str, ...]:
        return ("grad_norm",)

    def score(self, ctx: ScoringContext) -> np.ndarray:
        return -ctx.method_scores("grad_norm")  # the same numbers, reused when already computed
