"""`input_grad_share`: the normalised input-gradient share (the second seed formula).

    I_i = Σ_j |∂J/∂X_ij| / Σ_i' Σ_j |∂J/∂X_i'j|

with ``J = Σ_i ℓ_i`` the training loss (pointwise BCE on clicks) at the final model and
``X_i`` the sample's model input: its dense features and the outputs of the query and
item token embeddings (every token position × embedding dimension; padding positions
have zero gradient because pooling masks them). Because samples do not interact in the
forward pass, ``∂J/∂X_ij = ∂ℓ_i/∂X_ij``; whether ``J`` is the sum or the mean of the
per-sample losses cancels in the normalisation. Scores are ≥ 0 and sum to 1.

Sign: a sample whose loss is more sensitive to its inputs is scored as more important;
`input_grad_share_neg` (score = −share) ranks those samples lowest instead, the sign
under which it detects label noise (docs/IMPORTANCE.md says which sign to use when).
Cost: one forward and one backward pass (to the embedding outputs and dense inputs only).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from sie.importance.base import Estimator, ScoringContext, iter_batches, per_sample_loss, register
from sie.importance.ghost import GhostCapture


def input_grad_l1(model: nn.Module, capture: GhostCapture, q, i, d, y) -> torch.Tensor:
    """[B] Σ_j |∂ℓ_i/∂X_ij| over dense inputs and embedding outputs."""
    with torch.enable_grad():
        dense = d.detach().clone().requires_grad_(True)
        with capture:
            logits = model(q, i, dense)
        (g_dense,) = capture.backward(per_sample_loss(logits, y).sum(), [dense])
        total = g_dense.abs().flatten(1).sum(1)
        for layer in capture.layers:
            for g in layer.grads:
                total = total + g.abs().flatten(1).sum(1)
    capture.release()
    return total.detach()


@register
class InputGradShare(Estimator):
    name = "input_grad_share"
    summary = "normalised input-gradient share Σ_j|∂J/∂X_ij| / Σ_i Σ_j|∂J/∂X_ij| (dense inputs + embedding outputs)"
    needs = ("model",)

    def score(self, ctx: ScoringContext) -> np.ndarray:
        model = ctx.model.eval()
        capture = GhostCapture(model, types=(nn.Embedding,))
        out = np.zeros(len(ctx.train), dtype=np.float64)
        for sl, (q, i, d), y in iter_batches(ctx.train, ctx.device, ctx.batch_size):
            out[sl] = input_grad_l1(model, capture, q, i, d, y).double().cpu().numpy()
        total = out.sum()
        if total > 0:
            return out / total
        return np.full(len(out), 1.0 / max(len(out), 1))


@register
class InputGradShareNeg(Estimator):
    name = "input_grad_share_neg"
    summary = "−input_grad_share: least input-sensitive samples first (hard or noisy samples rank lowest)"
    needs = ("model",)

    def uses(self) -> tuple[str, ...]:
        return ("input_grad_share",)

    def score(self, ctx: ScoringContext) -> np.ndarray:
        return -ctx.method_scores("input_grad_share")  # the same numbers, reused when already computed
