"""`grad_norm`: the per-sample parameter-gradient norm ||∂ℓ_i/∂θ||₂ at the final model.

v0 uses torch.func (vmap over grad) in batches; a sample with a larger gradient moves
the model more and is scored as more important.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

from sie.importance.base import Estimator, ScoringContext, batches, register


def vmap_grad_norms(model, query_tokens, item_tokens, dense, click) -> torch.Tensor:
    """Reference per-sample gradient norms with torch.func (materialises per-sample grads)."""
    params = {k: v.detach() for k, v in model.named_parameters()}

    def loss_one(p, q, i, d, y):
        logit = functional_call(model, p, (q.unsqueeze(0), i.unsqueeze(0), d.unsqueeze(0)))
        return F.binary_cross_entropy_with_logits(logit, y.unsqueeze(0))

    grads = vmap(grad(loss_one), in_dims=(None, 0, 0, 0, 0))(params, query_tokens, item_tokens, dense, click)
    sq = sum(g.reshape(g.shape[0], -1).pow(2).sum(1) for g in grads.values())
    return sq.sqrt()


@register
class GradNorm(Estimator):
    name = "grad_norm"
    summary = "per-sample parameter-gradient L2 norm at the final model"

    def score(self, ctx: ScoringContext) -> np.ndarray:
        model = ctx.model.eval()
        out = np.zeros(len(ctx.train), dtype=np.float64)
        size = min(self.cfg.importance.batch_size, 512)
        for sl in batches(len(ctx.train), size):
            q, i, d = ctx.train.inputs(ctx.device, sl)
            y = ctx.train.click[sl].to(ctx.device)
            out[sl] = vmap_grad_norms(model, q, i, d, y).double().cpu().numpy()
        return out
