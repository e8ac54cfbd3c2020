"""TracInCP (Pruthi et al. 2020): `tracin` (influence on validation) and `tracin_self`.

Over checkpoints ``c`` (epoch ends; ``cfg.importance.tracin_checkpoints`` of them,
evenly spaced and always including the final model) with learning rate ``η_c``:

* validation influence  ``TracIn(i, V) = Σ_c η_c ⟨∇ℓ_i(θ_c), ḡ_V(θ_c)⟩`` where
  ``ḡ_V = (1/M) Σ_{v∈V} ∇ℓ_v`` is the mean gradient over the held-out validation clicks
  (``ctx.validation``, never trained on, never the benchmark holdout). Positive = a
  proponent: a gradient step on sample i lowers the validation loss. Score = TracIn(i, V).
* self-influence ``TracIn(i, i) = Σ_c η_c ‖∇ℓ_i(θ_c)‖²``. High self-influence flags
  outliers and mislabelled samples (Pruthi et al. §4). Score = −self-influence.

Exact by default: because ``ḡ_V`` is a single parameter-shaped vector, both terms come
from the per-layer factors of :mod:`sie.importance.ghost` (squared ghost norms and
``Σ_t g_tᵀ G a_t`` / ``Σ_t g_t · G_E[id_t]`` inner products) without materialising
per-sample gradients. Cost per checkpoint: one forward+backward pass over the validation
set and one forward+backward-to-outputs pass over the training samples.

With ``tracin_projection_dim = k > 0`` every weight's per-sample gradient is replaced
by a Kronecker-structured Gaussian projection ``P_r ∇W P_cᵀ`` of about k entries
(biases stay exact), the same projection for ḡ_V; inner products are then unbiased
JL estimates. This bounds the per-sample state at O(k · layers) for models whose layers
are too large for the exact path, or to keep per-sample gradient sketches.

The optimiser is Adam, so η_c·∇ is a first-order proxy for the actual step (the usual
TracIn practice); with a constant learning rate η_c only scales the score.

With a group objective (listwise / pairwise) ``∇ℓ_i(θ_c)`` is ``λ_i ∇z_i`` with λ taken
at checkpoint c (sie.importance.base), for the training and the validation samples alike.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from sie.importance.base import (
    Estimator,
    ScoringContext,
    iter_batches,
    log,
    per_sample_loss,
    register,
    require_validation,
)
from sie.importance.ghost import GhostCapture, LayerProjection
from sie.model.features import SampleTensors


def checkpoint_epochs(n_checkpoints: int, k: int) -> list[int]:
    """``k`` epoch indices evenly spaced over ``[0, n_checkpoints)``, always including the last."""
    if n_checkpoints <= 0:
        raise RuntimeError("TracIn needs the per-epoch checkpoints saved by training; none were found")
    if k >= n_checkpoints:
        return list(range(n_checkpoints))
    picks = np.unique(np.round(np.linspace(0, n_checkpoints - 1, max(k, 1))).astype(int))
    return [int(e) for e in picks]


def mean_gradient(
    model: nn.Module, data: SampleTensors, device: torch.device, batch_size: int
) -> dict[str, torch.Tensor]:
    """``{param name: (1/M) Σ_v ∇ℓ_v}`` over ``data``, streamed in batches."""
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    m = len(data)
    with torch.enable_grad():
        for _, (q, i, d), y in iter_batches(data, device, batch_size):
            loss = per_sample_loss(model(q, i, d), y).sum() / m
            grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
            for name, g in zip(params, grads):
                if g is not None:
                    total[name] += g
    return total


def tracin_scores(
    ctx: ScoringContext,
    *,
    validation: bool = True,
    n_checkpoints: int | None = None,
    projection_dim: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(self_influence [N], validation_influence [N] or None), streamed over the training samples."""
    icfg = ctx.cfg.importance
    k = icfg.tracin_checkpoints if n_checkpoints is None else n_checkpoints
    dim = icfg.tracin_projection_dim if projection_dim is None else projection_dim
    epochs = checkpoint_epochs(ctx.n_checkpoints, k)
    if len(epochs) < 3:
        log.warning(
            "TracIn over %d checkpoint(s) only (train.epochs=%d); 3 or more are recommended",
            len(epochs),
            ctx.n_checkpoints,
        )
    if validation:
        require_validation(ctx, "tracin")
    n = len(ctx.train)
    self_inf = np.zeros(n, dtype=np.float64)
    val_inf = np.zeros(n, dtype=np.float64) if validation else None
    projections: dict[str, LayerProjection] = {}
    gen = torch.Generator().manual_seed(int(ctx.seed) + 7919)
    for epoch in epochs:
        model = ctx.load_epoch(epoch).eval()
        eta = ctx.learning_rate(epoch)
        capture = GhostCapture(model)
        train = ctx.at_model(model, ctx.train)
        g_val = (
            mean_gradient(model, ctx.at_model(model, ctx.validation), ctx.device, ctx.batch_size)
            if validation
            else None
        )
        if dim and dim > 0:
            dtype = next(model.parameters()).dtype
            for layer in capture.layers:
                if layer.name not in projections:
                    projections[layer.name] = LayerProjection(
                        tuple(layer.module.weight.shape), dim, gen, ctx.device, dtype
                    )
            g_proj = (
                torch.cat([projections[layer.name].project_grad(layer, g_val) for layer in capture.layers])
                if validation
                else None
            )
        for sl, (q, i, d), y in iter_batches(train, ctx.device, ctx.batch_size):
            with torch.enable_grad():
                with capture:
                    logits = model(q, i, d)
                capture.backward(per_sample_loss(logits, y).sum())
            with torch.no_grad():
                if dim and dim > 0:
                    sketch = torch.cat([layer.project(projections[layer.name]) for layer in capture.layers], 1)
                    s = sketch.pow(2).sum(1)
                    v = sketch @ g_proj if validation else None
                else:
                    s = capture.sq_norms()
                    v = capture.dots(g_val) if validation else None
            capture.release()
            self_inf[sl] += eta * s.double().cpu().numpy()
            if validation:
                val_inf[sl] += eta * v.double().cpu().numpy()
        del model, capture
    return self_inf, val_inf


def reference_tracin(ctx: ScoringContext, epochs: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Exact TracInCP from materialised per-sample gradients (torch.func); small cases only, pointwise objective."""
    from sie.importance.grad_norm import vmap_per_sample_grads

    def flat_grads(model, data):
        q, i, d = data.inputs(ctx.device)
        grads = vmap_per_sample_grads(model, q, i, d, data.click.to(ctx.device))
        return torch.cat([g.reshape(len(data), -1) for g in grads.values()], 1).double()

    self_inf = np.zeros(len(ctx.train))
    val_inf = np.zeros(len(ctx.train))
    for epoch in epochs:
        model = ctx.load_epoch(epoch).eval()
        eta = ctx.learning_rate(epoch)
        g_train = flat_grads(model, ctx.train)
        g_val = flat_grads(model, ctx.validation).mean(0)
        self_inf += eta * g_train.pow(2).sum(1).cpu().numpy()
        val_inf += eta * (g_train @ g_val).cpu().numpy()
    return self_inf, val_inf


@register
class TracIn(Estimator):
    name = "tracin"
    summary = "TracInCP influence on the held-out validation clicks, Σ_c η_c⟨∇ℓ_i, mean ∇ℓ_val⟩ (exact or projected)"
    needs = ("checkpoints", "validation")

    def score(self, ctx: ScoringContext) -> np.ndarray:
        _, val_inf = tracin_scores(ctx, validation=True)
        return val_inf


@register
class TracInSelf(Estimator):
    name = "tracin_self"
    summary = "negative TracInCP self-influence −Σ_c η_c‖∇ℓ_i‖² (high self-influence = suspected mislabel)"
    needs = ("checkpoints",)

    def score(self, ctx: ScoringContext) -> np.ndarray:
        self_inf, _ = tracin_scores(ctx, validation=False)
        return -self_inf
