"""`loss`: the final-epoch training loss, recorded during training at no extra cost.

Score = −ℓ_i(last epoch), the per-sample BCE recorded on the sample's forward pass in the
last epoch (sie.model.training). Samples the model finds very hard to fit are, under label noise
(bots, accidental clicks, flips), the likeliest to be noise, so they rank lowest. The
"keep the hardest" direction of hard-example mining is ``−score``.
"""

from __future__ import annotations

import numpy as np

from sie.importance.base import Estimator, ScoringContext, register


@register
class FinalLoss(Estimator):
    name = "loss"
    summary = "negative per-sample training loss in the last epoch (recorded during training)"
    needs = ("dynamics",)

    def score(self, ctx: ScoringContext) -> np.ndarray:
        return -ctx.dynamics_loss[-1].astype(np.float64)
