"""Group-aware importance: `<method>@client` and `<method>@session` for every registered method.

Some noise is a property of who produced the sample, not of the impression: a bot client
clicks at random for a whole session, and most of its impressions (the ones it did not
click) look perfectly ordinary one at a time. Aggregating a method's scores over the
samples of one client (or one session) and giving every sample its group's aggregate
scores the *producer*:

    s_i^{@g} = mean_{j : g(j) = g(i)} s_j        (g = client, or (client, session))

The aggregate is the plain mean because the signal is the *rate* of unexplainable
labels in the group: a bot clicks 35 % of what it sees, regardless of relevance, so its
mean loss is high while its median sample is an ordinary non-click; the median or a
trimmed mean would discard exactly the minority of samples that gives it away. A
sample with no client id is a group of its own (its own score).

The base scores are ``ctx.method_scores(base)``: reused when the scoring step already
has them for this model version (published earlier in the same run), computed once in
memory otherwise. No I/O here. ``sie.importance`` registers the variants of every
method once all method modules are imported; the ids come from
``ctx.train.client`` / ``ctx.train.session`` (``sie.model.features.group_index``).
"""

from __future__ import annotations

import numpy as np
import torch

from sie.importance.base import REGISTRY, Estimator, ScoringContext, register

#: group level → the SampleTensors attribute holding each sample's group index
GROUPS = {"client": "client", "session": "session"}


def group_mean(scores: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Each sample's group mean of ``scores`` (``group``: int indices ≥ 0), aligned with ``scores``."""
    group = np.asarray(group, dtype=np.int64)
    sums = np.bincount(group, weights=scores)
    counts = np.bincount(group)
    return (sums / np.maximum(counts, 1))[group]


def group_ids(ctx: ScoringContext, level: str) -> np.ndarray:
    ids: torch.Tensor | None = getattr(ctx.train, GROUPS[level])
    if ids is None:
        raise ValueError(
            f"@{level} methods need the {level} id of every training sample, but these samples have none "
            "(SampleTensors built from a frame without client_id/session_id)"
        )
    return ids.numpy()


class GroupAggregate(Estimator):
    """Base class of the generated `<base>@<level>` estimators."""

    base: str = ""
    level: str = ""

    def uses(self) -> tuple[str, ...]:
        return (self.base,)

    def score(self, ctx: ScoringContext) -> np.ndarray:
        return group_mean(ctx.method_scores(self.base), group_ids(ctx, self.level))


def group_method_name(base: str, level: str) -> str:
    return f"{base}@{level}"


def register_group_variants() -> None:
    """Register `<m>@client` and `<m>@session` for every registered method that is not itself a group variant."""
    for base_name, base_cls in sorted(REGISTRY.items()):
        if issubclass(base_cls, GroupAggregate):
            continue
        for level in GROUPS:
            name = group_method_name(base_name, level)
            if name in REGISTRY:
                continue
            attrs = {
                "name": name,
                "summary": f"mean of {base_name} over the sample's {level}, given to each of its samples",
                "needs": (*base_cls.needs, level),
                "base": base_name,
                "level": level,
            }
            register(type(f"{base_cls.__name__}At{level.title()}", (GroupAggregate,), attrs))
