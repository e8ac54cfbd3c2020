"""`random`: uniform scores, the baseline every method must beat."""

from __future__ import annotations

import numpy as np

from sie.importance.base import Estimator, ScoringContext, register


@register
class RandomScores(Estimator):
    name = "random"
    summary = "uniform random scores (baseline)"
    needs = ()

    def score(self, ctx: ScoringContext) -> np.ndarray:
        return np.random.default_rng(ctx.seed).random(len(ctx.train))
