"""The estimator protocol: one module per method, one small interface.

An estimator is constructed from the config, then ``score(ctx)`` returns one float per
training sample of the context, in ``ctx.train.sample_id`` order. Higher = more
valuable to keep. Estimators never see the benchmark holdout.

Estimators stream over samples in batches of ``cfg.importance.batch_size`` on
``ctx.device``: apart from the O(N) output vector (and O(N) per-sample inputs such as
the training dynamics), memory does not grow with the number of samples.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from sie.config import SieConfig
from sie.model.features import SampleTensors
from sie.model.ranker import NeuralRanker

if TYPE_CHECKING:  # pragma: no cover
    from sie.model.training import TrainResult

log = logging.getLogger("sie.importance")


@dataclass
class ScoringContext:
    """Everything an estimator may use for one model version, all in memory (estimators do no I/O)."""

    cfg: SieConfig
    ds: str
    model: NeuralRanker  # the final trained model (on ``device``)
    train: SampleTensors  # the samples the model was trained on (the ones to score)
    validation: SampleTensors  # held-out clicks from the same window (never trained on)
    dynamics_loss: np.ndarray  # [epochs, N] per-sample training loss per epoch
    dynamics_logit: np.ndarray  # [epochs, N] per-sample logit per epoch
    checkpoint_states: list[dict] = field(default_factory=list)  # state_dict per epoch, oldest first
    learning_rates: list[float] = field(default_factory=list)
    device: torch.device = torch.device("cpu")
    seed: int = 0

    @property
    def n_checkpoints(self) -> int:
        return len(self.checkpoint_states)

    def load_epoch(self, epoch: int) -> NeuralRanker:
        """The model as it was at the end of ``epoch`` (0-based)."""
        if not self.checkpoint_states:
            raise RuntimeError("this scoring context has no checkpoints")
        model = NeuralRanker.from_config(self.cfg.train)
        model.load_state_dict(self.checkpoint_states[epoch])
        return model.to(self.device)

    def learning_rate(self, epoch: int) -> float:
        if epoch < len(self.learning_rates):
            return float(self.learning_rates[epoch])
        return float(self.cfg.train.lr)

    @property
    def batch_size(self) -> int:
        return int(self.cfg.importance.batch_size)

    @classmethod
    def from_training(
        cls,
        cfg: SieConfig,
        result: TrainResult,
        train: SampleTensors,
        validation: SampleTensors,
        *,
        ds: str = "adhoc",
        seed: int | None = None,
    ) -> ScoringContext:
        """A context straight from :func:`sie.model.training.train_ranker`."""
        device = next(result.model.parameters()).device
        return cls(
            cfg=cfg,
            ds=ds,
            model=result.model,
            train=train,
            validation=validation,
            dynamics_loss=result.dynamics_loss,
            dynamics_logit=result.dynamics_logit,
            checkpoint_states=list(result.checkpoints),
            learning_rates=list(result.learning_rates),
            device=device,
            seed=cfg.train.seed if seed is None else seed,
        )


class Estimator:
    """Base class: subclasses set ``name`` and implement ``score``."""

    name: ClassVar[str] = ""
    #: one line for docs / the CLI
    summary: ClassVar[str] = ""
    #: what the method needs: "dynamics" (recorded during training), "model",
    #: "checkpoints", "validation", "none"
    needs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, cfg: SieConfig):
        self.cfg = cfg

    def score(self, ctx: ScoringContext) -> np.ndarray:  # pragma: no cover - protocol
        raise NotImplementedError


REGISTRY: dict[str, type[Estimator]] = {}


def register(cls: type[Estimator]) -> type[Estimator]:
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise ValueError(f"importance method {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls


def get_estimator(name: str, cfg: SieConfig) -> Estimator:
    if name not in REGISTRY:
        raise KeyError(f"unknown importance method {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name](cfg)


def batches(n: int, size: int) -> Iterator[slice]:
    return (slice(b, min(b + size, n)) for b in range(0, n, size))


def iter_batches(data: SampleTensors, device: torch.device, size: int) -> Iterator[tuple[slice, tuple, torch.Tensor]]:
    """(slice, (query_tokens, item_tokens, dense), click) per batch, on ``device``."""
    for sl in batches(len(data), size):
        yield sl, data.inputs(device, sl), data.click[sl].to(device, non_blocking=True)


def per_sample_loss(logits: torch.Tensor, click: torch.Tensor) -> torch.Tensor:
    """The training loss of each sample (unreduced pointwise BCE on clicks, as in sie.model.training)."""
    return F.binary_cross_entropy_with_logits(logits, click.to(logits.dtype), reduction="none")


def rank_pct(values: np.ndarray) -> np.ndarray:
    """Rank of each value scaled to [0, 1] (ties broken by position), for tie-breaking."""
    n = len(values)
    if n <= 1:
        return np.zeros(n)
    ranks = np.empty(n, dtype=np.float64)
    ranks[np.argsort(values, kind="stable")] = np.arange(n, dtype=np.float64)
    return ranks / (n - 1)


def require_validation(ctx: ScoringContext, method: str) -> None:
    if len(ctx.validation) == 0:
        raise ValueError(
            f"{method} needs held-out validation clicks, but the context has none "
            "(the window's validation split is empty)"
        )


def checked_scores(estimator: Estimator, ctx: ScoringContext) -> np.ndarray:
    """``estimator.score(ctx)`` as float64, checked for shape and finiteness."""
    scores = np.asarray(estimator.score(ctx), dtype=np.float64)
    if scores.shape != (len(ctx.train),):
        raise RuntimeError(f"{estimator.name} returned {scores.shape} scores for {len(ctx.train)} samples")
    if not np.all(np.isfinite(scores)):
        raise RuntimeError(f"{estimator.name} returned {int((~np.isfinite(scores)).sum())} non-finite scores")
    return scores
