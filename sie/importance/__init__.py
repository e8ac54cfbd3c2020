"""Importance estimators, one module each, behind the protocol in ``base``.

Importing this package registers every method in :data:`REGISTRY`
(see docs/IMPORTANCE.md for formulas, sign conventions, costs and references).
"""

from sie.importance import (  # noqa: F401  (registration side effects)
    data_oob,
    denoise,
    dynamics,
    ensemble,
    grad_norm,
    group,
    input_grad,
    knn_shapley,
    loss,
    random,
    tracin,
    trak,
)
from sie.importance.base import REGISTRY, Estimator, ScoringContext, get_estimator, register

group.register_group_variants()  # `<m>@client` / `<m>@session` for every method imported above

__all__ = ["REGISTRY", "Estimator", "ScoringContext", "get_estimator", "register"]
