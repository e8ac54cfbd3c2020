"""Training-dynamics estimators: `el2n`, `forgetting`, `aum`.

All three read only what ``sie.model.training.train_ranker`` records during training at no
extra forward cost: the per-sample logit ``z_{e,i}`` and loss of every epoch ``e``,
taken on the sample's own forward pass in that epoch (before the optimiser step of its
batch: the "presentation-time" statistics of Toneva et al.). Cost: O(epochs · N)
arithmetic on the recorded arrays, no model evaluation.

Sign convention (higher = keep): these are hardness/noise indicators, so the score is
oriented so that suspected noise — samples the model cannot fit, keeps forgetting, or
fits with a negative margin — ranks lowest. The "keep the hard examples" direction of
the data-pruning papers (EL2N, forgetting) is ``−score``.

Group objectives (``train.objective`` listwise / pairwise; logits are then only
comparable within a query request): EL2N is ``|λ_i|``, the magnitude of the loss's
derivative w.r.t. the sample's own logit (for BCE that is ``|σ(z) − y|``); AUM and
forgetting use the graded in-request margin (:func:`graded_margins`) instead of the
pointwise one.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from sie.importance.base import Estimator, ScoringContext, rank_pct, register


def _click(ctx: ScoringContext) -> np.ndarray:
    return ctx.train.click.numpy().astype(np.float64)


def _graded_margins(ctx: ScoringContext, logits: np.ndarray) -> np.ndarray:
    return graded_margins(logits, ctx.objective.relevance.numpy(), ctx.train.group.numpy())


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


@register
class EL2N(Estimator):
    """EL2N (Paul et al. 2021): ‖p(x_i) − onehot(y_i)‖₂ early in training.

    For the ranker's single click logit the two-class probability vector is
    ``(1 − σ(z), σ(z))``, so EL2N = √2 · |σ(z_{e,i}) − y_i| at epoch
    ``cfg.importance.el2n_epoch`` (1-based, clipped to the trained epochs). Score = −EL2N.
    """

    name = "el2n"
    summary = "negative EL2N error norm √2·|σ(z)−y| at a configurable (early) epoch"
    needs = ("dynamics",)

    def score(self, ctx: ScoringContext) -> np.ndarray:
        epochs = ctx.dynamics_logit.shape[0]
        epoch = min(max(int(self.cfg.importance.el2n_epoch), 1), epochs) - 1
        objective = ctx.objective
        if objective.is_group:
            logits = torch.from_numpy(ctx.dynamics_logit[epoch].astype(np.float64))
            return -objective.logit_gradients(logits).abs().numpy()
        p = _sigmoid(ctx.dynamics_logit[epoch].astype(np.float64))
        return -math.sqrt(2.0) * np.abs(p - _click(ctx))


def forgetting_events(logits: np.ndarray, click: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(events [N], ever_learned [N]): transitions correct → incorrect across epochs.

    A presentation is correct when the thresholded prediction ``z > 0`` equals the click.
    """
    correct = (logits > 0) == (click[None, :] > 0.5)
    events = (correct[:-1] & ~correct[1:]).sum(0)
    return events.astype(np.int64), correct.any(0)


@register
class Forgetting(Estimator):
    """Forgetting events (Toneva et al. 2019) across the recorded epochs.

    ``count_i`` = number of epochs where sample i went from correctly to incorrectly
    classified; a sample never classified correctly counts as forgotten ``epochs`` times
    (more than any learnt sample can reach, as in the paper's "never learnt = ∞").
    Score = −count_i + ½·(1 − rank_pct(mean loss_i)): the integer part orders by
    forgetting, the tie-break in [0, ½] orders samples with equal counts by their mean
    training loss (lower loss → higher), so the ranking is total.
    """

    name = "forgetting"
    summary = "negative number of forgetting events across epochs (never learnt = most), loss tie-break"
    needs = ("dynamics",)

    def score(self, ctx: ScoringContext) -> np.ndarray:
        logits = ctx.dynamics_logit.astype(np.float64)
        if ctx.objective.is_group:
            events, learned = margin_forgetting_events(_graded_margins(ctx, logits))
        else:
            events, learned = forgetting_events(logits, _click(ctx))
        count = np.where(learned, events, logits.shape[0]).astype(np.float64)
        tie = 0.5 * (1.0 - rank_pct(ctx.dynamics_loss.astype(np.float64).mean(0)))
        return -count + tie


def margin_forgetting_events(margins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(events [N], ever_learned [N]) from [E, N] margins: correct = margin > 0.

    A sample with no comparison in its request (NaN margin) has nothing to get wrong: always correct.
    """
    correct = (margins > 0) | np.isnan(margins)
    events = (correct[:-1] & ~correct[1:]).sum(0)
    return events.astype(np.int64), correct.any(0)


def pointwise_margins(logits: np.ndarray, click: np.ndarray) -> np.ndarray:
    """[E, N] margin of the assigned class over the other one: z·(2y − 1)."""
    return logits * (2.0 * click[None, :] - 1.0)


def pairwise_margins(logits: np.ndarray, click: np.ndarray, group: np.ndarray) -> np.ndarray:
    """[E, N] margin within the query group.

    A clicked sample's margin is its logit minus the highest non-clicked logit of its
    group; a non-clicked sample's margin is the lowest clicked logit minus its own. Samples
    in groups without both classes fall back to the pointwise margin.
    """
    z = torch.from_numpy(np.ascontiguousarray(logits, dtype=np.float64))
    pos = torch.from_numpy(click > 0.5)
    g = torch.from_numpy(group.astype(np.int64))
    n_groups = int(g.max()) + 1 if len(g) else 0
    out = torch.empty_like(z)
    for e in range(z.shape[0]):
        ze = z[e]
        neg_max = torch.full((n_groups,), -math.inf, dtype=z.dtype).scatter_reduce(
            0, g[~pos], ze[~pos], reduce="amax", include_self=True
        )
        pos_min = torch.full((n_groups,), math.inf, dtype=z.dtype).scatter_reduce(
            0, g[pos], ze[pos], reduce="amin", include_self=True
        )
        out[e] = torch.where(pos, ze - neg_max[g], pos_min[g] - ze)
    point = torch.from_numpy(pointwise_margins(logits.astype(np.float64), click))
    out = torch.where(torch.isfinite(out), out, point)
    return out.numpy()


def graded_margins(logits: np.ndarray, relevance: np.ndarray, group: np.ndarray) -> np.ndarray:
    """[E, N] margin within the query request for graded relevance.

    ``min(z_i − max{z_j : r_j < r_i}, min{z_j : r_j > r_i} − z_i)`` over the samples j of
    i's request: how far sample i is from being out of order with any sample of another
    grade (with two grades this is :func:`pairwise_margins`). NaN where the request holds
    no sample of another grade.
    """
    z = torch.from_numpy(np.ascontiguousarray(logits, dtype=np.float64))
    r = torch.from_numpy(np.asarray(relevance, dtype=np.float64))
    _, g = np.unique(group, return_inverse=True)
    g = torch.from_numpy(g.astype(np.int64).reshape(-1))
    n_groups = int(g.max()) + 1 if len(g) else 0
    out = torch.full_like(z, math.nan)
    for grade in torch.unique(r):
        at, lower, higher = r == grade, r < grade, r > grade
        below = torch.full((z.shape[0], n_groups), -math.inf, dtype=z.dtype).scatter_reduce(
            1, g[lower].expand(z.shape[0], -1), z[:, lower], reduce="amax", include_self=True
        )
        above = torch.full((z.shape[0], n_groups), math.inf, dtype=z.dtype).scatter_reduce(
            1, g[higher].expand(z.shape[0], -1), z[:, higher], reduce="amin", include_self=True
        )
        za = z[:, at]
        out[:, at] = torch.minimum(za - below[:, g[at]], above[:, g[at]] - za)
    out[~torch.isfinite(out)] = math.nan
    return out.numpy()


@register
class AUM(Estimator):
    """Area under the margin (Pleiss et al. 2020), averaged over the recorded epochs.

    Pleiss's margin is the assigned-class logit minus the largest other logit. With the
    ranker's single logit (two-class logits ``(0, z)``) that is ``z·(2y − 1)``
    (``aum_mode = "pointwise"``, matching the pointwise BCE the ranker is trained with).
    ``aum_mode = "pairwise"`` uses the margin within the query group instead (see
    :func:`pairwise_margins`). Score = AUM: mislabelled samples have low/negative margins.
    With a group objective the margin is always the graded in-request one
    (:func:`graded_margins`), a sample without another grade in its request scoring 0
    (no evidence either way); ``aum_mode`` applies to the pointwise objective.
    """

    name = "aum"
    summary = "area under the margin: mean over epochs of z·(2y−1) (or the in-group pairwise margin)"
    needs = ("dynamics",)

    def score(self, ctx: ScoringContext) -> np.ndarray:
        logits = ctx.dynamics_logit.astype(np.float64)
        mode = self.cfg.importance.aum_mode
        if ctx.objective.is_group:
            margins = np.nan_to_num(_graded_margins(ctx, logits), nan=0.0)
        elif mode == "pointwise":
            margins = pointwise_margins(logits, _click(ctx))
        elif mode == "pairwise":
            margins = pairwise_margins(logits, _click(ctx), ctx.train.group.numpy())
        else:
            raise ValueError(f"importance.aum_mode must be pointwise or pairwise, got {mode!r}")
        return margins.mean(0)
