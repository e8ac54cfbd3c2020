"""`loss`: the final-epoch training loss, recorded during training at no extra cost.

Score = -loss: samples the trained model finds very hard to fit are, under label noise
(bots, accidental clicks), the likeliest to be noise, so they rank lowest.
"""

from __future__ import annotations

import numpy as np

from sie.importance.base import Estimator, ScoringContext, register


@register
class FinalLoss(Estimator):
    name = "loss"
    summary = "negative per-sample training loss in the last epoch"

    def score(self, ctx: ScoringContext) -> np.ndarray:
        return -ctx.dynamics_loss[-1].astype(np.float64)
