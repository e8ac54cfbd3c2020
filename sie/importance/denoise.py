"""Denoising baselines from recommendation (Wang et al. 2021, "Denoising Implicit Feedback
for Recommendation", ADT): truncated and reweighted cross-entropy, read as scores.

Both are computed from the per-epoch per-sample losses recorded during training
(no model evaluation; O(epochs · N)). They target false-positive clicks: a click the
model finds hard to fit is suspected noise.

* `tce` (T-CE): at epoch e (1-based) the drop rate is
  ``ε(e) = ε_max · min(1, e / warmup)``; the ``⌊ε(e)·n_clicks⌋`` clicked samples with the
  largest loss are truncated (weight 0); non-clicks are never truncated, as in the
  paper. Score = number of epochs the sample survived + ½·(1 − rank_pct(mean loss)),
  i.e. survivors first, ties ordered by lower mean loss. The paper schedules ε per
  iteration within a batch and counts it against the batch; here it is per epoch and
  against the clicks of the whole epoch, because clicks are a small minority of
  impressions in search logs (a batch-level rate would truncate every click).
* `rce` (R-CE): the loss weight ``ω = p̂(y_i | x_i)^β`` (``σ(z)^β`` for clicks,
  ``(1 − σ(z))^β`` for non-clicks, the official implementation's form), i.e.
  ``exp(−β · ℓ_i)``, averaged over the epochs. Score = mean ω ∈ (0, 1].

Sign: higher = kept by the denoising loss = more valuable.

With a group objective (``train.objective`` listwise / pairwise) the positives T-CE may
truncate are the samples with a graded relevance > 0 (a click, add to cart or purchase),
and the losses are the objective's per-sample terms; R-CE's ``exp(−β·ℓ)`` is then a
weight of that loss, no longer a probability of the label.
"""

from __future__ import annotations

import numpy as np

from sie.importance.base import Estimator, ScoringContext, rank_pct, register


def tce_survival(losses: np.ndarray, click: np.ndarray, max_drop: float, warmup_epochs: int) -> np.ndarray:
    """[N] number of epochs each sample survives T-CE truncation."""
    epochs, n = losses.shape
    pos = np.flatnonzero(click > 0.5)
    kept = np.full(n, epochs, dtype=np.int64)
    for e in range(epochs):
        rate = max_drop * min(1.0, (e + 1) / max(int(warmup_epochs), 1))
        n_drop = int(np.floor(rate * len(pos)))
        if n_drop <= 0:
            continue
        worst = pos[np.argsort(-losses[e, pos], kind="stable")[:n_drop]]
        kept[worst] -= 1
    return kept


@register
class TruncatedCE(Estimator):
    name = "tce"
    summary = "T-CE: epochs a click survives truncated-loss dropping (non-clicks always kept), loss tie-break"
    needs = ("dynamics",)

    def score(self, ctx: ScoringContext) -> np.ndarray:
        cfg = self.cfg.importance
        losses = ctx.dynamics_loss.astype(np.float64)
        positive = ctx.objective.positive().numpy().astype(np.float64)
        kept = tce_survival(losses, positive, cfg.tce_max_drop, cfg.tce_warmup_epochs)
        return kept + 0.5 * (1.0 - rank_pct(losses.mean(0)))


@register
class ReweightedCE(Estimator):
    name = "rce"
    summary = "R-CE: mean over epochs of the reweighted-loss weight p̂(y|x)^β = exp(−β·loss)"
    needs = ("dynamics",)

    def score(self, ctx: ScoringContext) -> np.ndarray:
        beta = float(self.cfg.importance.rce_beta)
        return np.exp(-beta * ctx.dynamics_loss.astype(np.float64)).mean(0)
