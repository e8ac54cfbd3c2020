"""The training objectives: per-sample losses over a batch of logits (no I/O, no model).

* ``pointwise``: binary cross-entropy of each logit against its click (the default).
* ``listwise``: ListNet (Cao et al. 2007) top-one cross-entropy within each query request,
  weighted by the request's total relevance as in TF-Ranking's ``SoftmaxLoss``: the
  target distribution is the request's graded relevance normalised to sum to 1,
  ``t_i = r_i / R_g`` with ``R_g = Σ_g r``, the prediction the softmax of the request's
  logits ``p_i``, and the request's loss ``R_g · CE(t, p) = −Σ_i r_i log p_i``. The
  per-sample term is ``ℓ_i = −r_i log p_i``, so a request's terms sum to its loss;
  requests without any relevant impression carry no signal and contribute 0. (Without
  the weight, a request with k clicks would give each click 1/k of a single click's
  loss: a bot that clicks everything would look clean.)
* ``pairwise``: RankNet (Burges et al. 2005) over the ordered pairs of a request with
  different grades, weighted by the grade difference:
  ``L_ij = (r_i − r_j) · log(1 + exp(−(z_i − z_j)))`` for ``r_i > r_j``; each pair's loss
  is split equally between its two samples, so the per-sample terms sum to the total.

Graded relevance ``r`` comes from the sample's ``label`` (0 none, 1 click, 2 add to cart,
3 purchase: its strongest signal, sie.ingest.samples) through ``train.grades``.

The group objectives couple the samples of a request, so :func:`logit_gradients` gives
``λ_i = ∂(Σ_j ℓ_j)/∂z_i``, each sample's share of its request's gradient through its own
logit (LambdaRank's λ): ``∇_θ Σ_j ℓ_j = Σ_i λ_i ∇_θ z_i`` exactly. The importance
estimators use ``λ_i ∇_θ z_i`` as the per-sample gradient (sie.importance.base).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sie.config import GradesConfig, TrainConfig

OBJECTIVES = ("pointwise", "listwise", "pairwise")
GROUP_OBJECTIVES = ("listwise", "pairwise")


def graded_relevance(label: torch.Tensor, grades: GradesConfig) -> torch.Tensor:
    """[N] float32 relevance of each sample's strongest signal (label 0..3) under ``grades``."""
    table = torch.tensor([0.0, grades.click, grades.add_to_cart, grades.purchase], dtype=torch.float32)
    return table[label.long().clamp(0, 3)]


def _dense_groups(group: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(group ids renumbered 0..G-1, G)."""
    uniq, inverse = torch.unique(group, return_inverse=True)
    return inverse, int(uniq.numel())


def listwise_losses(logits: torch.Tensor, relevance: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
    """[B] weighted ListNet per-sample terms ``−r_i log softmax_g(z)_i`` (every request whole in the batch)."""
    g, n_groups = _dense_groups(group.to(logits.device))
    r = relevance.to(logits.device, logits.dtype)
    top = torch.full((n_groups,), -torch.inf, dtype=logits.dtype, device=logits.device)
    top = top.scatter_reduce(0, g, logits.detach(), reduce="amax", include_self=True)
    shifted = logits - top[g]
    sum_exp = torch.zeros(n_groups, dtype=logits.dtype, device=logits.device).index_add(0, g, shifted.exp())
    log_p = shifted - sum_exp.log()[g]
    return -r * log_p


def request_pairs(group: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(i, j): every ordered pair of distinct samples of the same request (Σ_g n_g(n_g − 1) pairs)."""
    order = torch.argsort(group, stable=True)
    _, counts = torch.unique_consecutive(group[order], return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    per_sample = counts.repeat_interleave(counts)  # [N] size of the sample's request (sorted order)
    first = starts.repeat_interleave(counts)  # [N] where its request starts
    left = torch.arange(len(order), device=group.device).repeat_interleave(per_sample)
    offset = torch.arange(len(left), device=group.device) - (
        torch.cumsum(per_sample, 0) - per_sample
    ).repeat_interleave(per_sample)
    right = first.repeat_interleave(per_sample) + offset
    distinct = left != right
    return order[left[distinct]], order[right[distinct]]


def pairwise_losses(logits: torch.Tensor, relevance: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
    """[B] RankNet per-sample terms: half of every pair loss the sample is part of."""
    r = relevance.to(logits.device, logits.dtype)
    i, j = request_pairs(group.to(logits.device))
    better = r[i] > r[j]
    i, j = i[better], j[better]
    pair = (r[i] - r[j]) * F.softplus(-(logits[i] - logits[j]))
    out = torch.zeros_like(logits)
    return out.index_add(0, i, 0.5 * pair).index_add(0, j, 0.5 * pair)


def sample_losses(
    objective: str, logits: torch.Tensor, click: torch.Tensor, relevance: torch.Tensor, group: torch.Tensor
) -> torch.Tensor:
    """[B] the objective's per-sample loss terms; they sum to the batch's total loss."""
    if objective == "pointwise":
        return F.binary_cross_entropy_with_logits(logits, click.to(logits.device, logits.dtype), reduction="none")
    if objective == "listwise":
        return listwise_losses(logits, relevance, group)
    if objective == "pairwise":
        return pairwise_losses(logits, relevance, group)
    raise ValueError(f"train.objective must be one of {OBJECTIVES}, got {objective!r}")


def logit_gradients(
    objective: str, logits: torch.Tensor, click: torch.Tensor, relevance: torch.Tensor, group: torch.Tensor
) -> torch.Tensor:
    """[N] ``λ_i = ∂(Σ_j ℓ_j)/∂z_i`` at the given logits (pointwise: ``σ(z_i) − y_i``)."""
    z = logits.detach().to(torch.float64).requires_grad_(True)
    with torch.enable_grad():
        total = sample_losses(objective, z, click, relevance, group).sum()
        (grad,) = torch.autograd.grad(total, z)
    return grad.to(logits.dtype)


class Objective:
    """``train.objective`` bound to one sample set's clicks, graded relevance and request ids."""

    def __init__(self, cfg: TrainConfig, click: torch.Tensor, label: torch.Tensor, group: torch.Tensor):
        if cfg.objective not in OBJECTIVES:
            raise ValueError(f"train.objective must be one of {OBJECTIVES}, got {cfg.objective!r}")
        self.name = cfg.objective
        self.click = click
        self.relevance = graded_relevance(label, cfg.grades)
        self.group = group

    @classmethod
    def of(cls, cfg: TrainConfig, data) -> Objective:
        """For a :class:`sie.model.features.SampleTensors`."""
        return cls(cfg, data.click, data.label, data.group)

    @property
    def is_group(self) -> bool:
        return self.name in GROUP_OBJECTIVES

    def positive(self) -> torch.Tensor:
        """[N] bool: the samples the objective treats as positive (clicked; graded: relevance > 0)."""
        return self.relevance > 0 if self.is_group else self.click > 0.5

    def losses(self, logits: torch.Tensor, index: torch.Tensor | slice | None = None) -> torch.Tensor:
        """Per-sample terms of the samples ``index`` (a group objective needs whole requests there)."""
        sel = slice(None) if index is None else index
        return sample_losses(self.name, logits, self.click[sel], self.relevance[sel], self.group[sel])

    def logit_gradients(self, logits: torch.Tensor) -> torch.Tensor:
        """[N] λ of every sample, from all N logits."""
        return logit_gradients(self.name, logits, self.click, self.relevance, self.group)
