"""`trak`: projected-gradient attribution (TRAK, Park et al. 2023, with LoGra's projection, Choe et al. 2024).

Over TracIn's checkpoints ``c`` (:func:`sie.importance.tracin.checkpoint_epochs`) with
learning rate ``η_c``, every sample's per-sample loss gradient is projected to a few
dimensions, ``φ_i = P ∇ℓ_i(θ_c)``, and the training samples are scored against the
held-out validation clicks through a kernel ``K``:

    τ_i = Σ_c η_c · mean_v φ_iᵀ K φ_v = Σ_c η_c · φ_iᵀ K φ̄_V

* ``P`` is LoGra's per-layer Kronecker projection (:class:`~sie.importance.ghost.LayerProjection`,
  ≈ ``trak_projection_dim`` entries per weight matrix, computed from the ghost factors
  ``Σ_t (P_r u_t)(P_c v_t)ᵀ``: no per-sample gradient is materialised). Biases, LayerNorm
  parameters and weights of at most k entries are kept exact (not projected), so for a
  model whose every weight has at most k entries φ is the exact gradient.
* ``K`` (``trak_kernel``): ``identity`` gives projected TracIn; ``trak`` gives TRAK's
  ``(ΦᵀΦ + λI)⁻¹`` over the training samples' projected gradients Φ, block-diagonal by
  layer (LoGra's approximation: one ``d_l × d_l`` system per layer, d_l its projected
  width) with ``λ_l = trak_damping · mean diag(Φ_lᵀΦ_l)``.

TRAK's own φ is the gradient of the model output with a loss-curvature weighting; here φ
is the per-sample *loss* gradient (as in TracIn), so the same objectives (pointwise and
the group objectives' ``λ_i ∇z_i``, sie.importance.base) apply unchanged.

Per checkpoint: one forward+backward-to-outputs pass over the validation clicks (for
``φ̄_V``; the mean is linear, so validation × training blocks collapse to one vector) and
one over the training samples, whose projections Φ [N, d] are stored in
``ctx.scratch`` (in memory by default; the caller may supply memory-mapped files); then
``τ`` is accumulated over blocks of ``importance.batch_size`` stored rows. Memory: the
block and, for the ``trak`` kernel, ``Σ_l d_l²`` float64 Gram entries.

Sign: higher = a gradient step on the sample lowers the validation loss (as ``tracin``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from sie.importance.base import (
    Estimator,
    ScoringContext,
    batches,
    iter_batches,
    per_sample_loss,
    register,
    require_validation,
)
from sie.importance.ghost import GhostCapture, LayerProjection
from sie.importance.tracin import checkpoint_epochs
from sie.model.features import SampleTensors

KERNELS = ("trak", "identity")


def layer_projections(
    capture: GhostCapture, dim: int, seed: int, device: torch.device, dtype: torch.dtype
) -> dict[str, LayerProjection]:
    """One projection per captured layer, the same for every checkpoint (a fixed seed)."""
    gen = torch.Generator().manual_seed(int(seed) + 7927)
    return {
        layer.name: LayerProjection(tuple(layer.module.weight.shape), dim, gen, device, dtype, exact_if_small=True)
        for layer in capture.layers
    }


def project_batches(
    model: nn.Module,
    capture: GhostCapture,
    projections: dict[str, LayerProjection],
    data: SampleTensors,
    device: torch.device,
    batch_size: int,
):
    """Yield (slice, [B, d] projected per-sample gradients) over ``data``, layers in capture order."""
    for sl, (q, i, d), y in iter_batches(data, device, batch_size):
        with torch.enable_grad():
            with capture:
                logits = model(q, i, d)
            capture.backward(per_sample_loss(logits, y).sum())
        with torch.no_grad():
            phi = torch.cat([layer.project(projections[layer.name]) for layer in capture.layers], 1)
        capture.release()
        yield sl, phi


def damped_solve(gram: torch.Tensor, rhs: torch.Tensor, damping: float) -> torch.Tensor:
    """``(G + λI)⁻¹ rhs`` with ``λ = damping · mean diag(G)`` (a relative ridge keeps G invertible)."""
    scale = gram.diagonal().mean().clamp(min=torch.finfo(gram.dtype).tiny)
    eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
    return torch.linalg.solve(gram + damping * scale * eye, rhs)


def trak_scores(
    ctx: ScoringContext,
    *,
    projection_dim: int | None = None,
    kernel: str | None = None,
    damping: float | None = None,
) -> np.ndarray:
    """[N] τ_i (module doc), streamed over the training samples and their stored projections."""
    icfg = ctx.cfg.importance
    dim = icfg.trak_projection_dim if projection_dim is None else projection_dim
    kernel = icfg.trak_kernel if kernel is None else kernel
    damping = icfg.trak_damping if damping is None else damping
    if kernel not in KERNELS:
        raise ValueError(f"unknown trak kernel {kernel!r}; known: {', '.join(KERNELS)}")
    require_validation(ctx, "trak")
    n = len(ctx.train)
    scores = np.zeros(n, dtype=np.float64)
    projections: dict[str, LayerProjection] | None = None
    for epoch in checkpoint_epochs(ctx.n_checkpoints, icfg.tracin_checkpoints):
        model = ctx.load_epoch(epoch).eval()
        capture = GhostCapture(model)
        if projections is None:
            dtype = next(model.parameters()).dtype
            projections = layer_projections(capture, dim, ctx.seed, ctx.device, dtype)
        widths = [projections[layer.name].width(layer) for layer in capture.layers]
        validation = ctx.at_model(model, ctx.validation)
        phi_val = torch.zeros(sum(widths), dtype=torch.float64, device=ctx.device)
        for _, phi in project_batches(model, capture, projections, validation, ctx.device, ctx.batch_size):
            phi_val += phi.double().sum(0)
        phi_val /= len(validation)
        stored = ctx.scratch(f"trak_phi_epoch{epoch}", (n, sum(widths)), np.float32)
        grams = [torch.zeros(w, w, dtype=torch.float64, device=ctx.device) for w in widths] if kernel == "trak" else []
        train = ctx.at_model(model, ctx.train)
        for sl, phi in project_batches(model, capture, projections, train, ctx.device, ctx.batch_size):
            stored[sl] = phi.float().cpu().numpy()
            for gram, block in zip(grams, phi.double().split(widths, 1)):
                gram.addmm_(block.t(), block)
        del model, capture
        if kernel == "trak":
            k_val = torch.cat([damped_solve(g, v, damping) for g, v in zip(grams, phi_val.split(widths))])
            del grams
        else:
            k_val = phi_val
        eta = ctx.learning_rate(epoch)
        for sl in batches(n, ctx.batch_size):
            block = torch.from_numpy(np.asarray(stored[sl])).to(ctx.device, torch.float64)
            scores[sl] += eta * (block @ k_val).cpu().numpy()
        del stored
    return scores


@register
class Trak(Estimator):
    name = "trak"
    summary = "TRAK / LoGra projected-gradient attribution to the validation clicks, Σ_c η_c φ_iᵀ K φ̄_V"
    needs = ("checkpoints", "validation")

    def score(self, ctx: ScoringContext) -> np.ndarray:
        return trak_scores(ctx)
