"""Importance estimators, one module each, behind the protocol in ``base``.

Importing this package registers every method in :data:`REGISTRY`.
"""

from sie.importance import grad_norm, loss, random  # noqa: F401  (registration side effects)
from sie.importance.base import REGISTRY, Estimator, ScoringContext, get_estimator, register

__all__ = ["REGISTRY", "Estimator", "ScoringContext", "get_estimator", "register"]
