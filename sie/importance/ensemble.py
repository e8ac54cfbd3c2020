"""`ensemble`: chosen detectors combined by rank (``importance.ensemble_methods``, ``ensemble_rule``).

Each member m ranks the N samples, ``r_m(i)`` = 1 for the lowest score, ties given their
average rank (group scores such as ``aum@client`` tie whole clients, and position must
not order those). Rank percentiles make members of any scale count equally. Two rules:

* ``geometric_mean`` (default): ``s_i = (Π_m r_m(i)/N)^{1/M}``, the geometric mean of the
  rank percentiles (equivalently Fisher's combination, Σ_m log of the percentile). A
  sample ranked near the bottom by *any* member stays near the bottom, so detectors of
  different kinds of noise — of the impression (``aum``: accidental clicks, clickbait)
  and of its producer (``aum@client``: bots) — each get to flag their own kind.
* ``mean``: ``s_i = (1/M) Σ_m (r_m(i) − 1)/(N − 1)``, the plain rank average; a sample
  flagged by one member only is pulled back to the middle by the others.

Higher = keep, like every member. Members are read with ``ctx.method_scores`` (reused
when the scoring step already has them for this model, else computed once in memory);
no I/O.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from sie.config import SieConfig
from sie.importance.base import REGISTRY, Estimator, ScoringContext, register


def rank_average(columns: list[np.ndarray]) -> np.ndarray:
    """Mean over ``columns`` of each value's average-tie rank, scaled to [0, 1]."""
    n = len(columns[0])
    if n <= 1:
        return np.zeros(n)
    return np.mean([(rankdata(c, method="average") - 1.0) / (n - 1) for c in columns], axis=0)


def rank_geometric_mean(columns: list[np.ndarray]) -> np.ndarray:
    """Geometric mean over ``columns`` of each value's average-tie rank percentile r/N, in (0, 1]."""
    n = len(columns[0])
    return np.exp(np.mean([np.log(rankdata(c, method="average") / n) for c in columns], axis=0))


RULES = {"geometric_mean": rank_geometric_mean, "mean": rank_average}


@register
class Ensemble(Estimator):
    name = "ensemble"
    summary = "rank combination (importance.ensemble_rule) of the detectors in importance.ensemble_methods"
    needs = ("members",)

    def __init__(self, cfg: SieConfig):
        super().__init__(cfg)
        self.members = tuple(cfg.importance.ensemble_methods)
        self.rule = RULES[cfg.importance.ensemble_rule]
        if not self.members:
            raise ValueError("importance.ensemble_methods is empty: name the detectors the ensemble combines")
        unknown = [m for m in self.members if m not in REGISTRY]
        if unknown:
            raise KeyError(f"importance.ensemble_methods names unknown methods {unknown}; known: {sorted(REGISTRY)}")
        if any(m.split("@")[0] == self.name for m in self.members):
            raise ValueError("importance.ensemble_methods must not contain the ensemble itself")

    def uses(self) -> tuple[str, ...]:
        return self.members

    def score(self, ctx: ScoringContext) -> np.ndarray:
        return self.rule([ctx.method_scores(m) for m in self.members])
