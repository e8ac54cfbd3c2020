"""The estimator protocol: one module per method, one small interface.

An estimator is constructed from the config, then ``score(ctx)`` returns one float per
training sample of the context, in ``ctx.train.sample_id`` order. Higher = more
valuable to keep. Estimators never see the benchmark holdout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np
import torch

from sie.config import SieConfig
from sie.features import SampleTensors
from sie.models import NeuralRanker


@dataclass
class ScoringContext:
    """Everything an estimator may use for one model version."""

    cfg: SieConfig
    ds: str
    model: NeuralRanker  # the final trained model (on ``device``)
    train: SampleTensors  # the samples the model was trained on (the ones to score)
    validation: SampleTensors  # held-out clicks from the same window (never trained on)
    dynamics_loss: np.ndarray  # [epochs, N] per-sample training loss per epoch
    dynamics_logit: np.ndarray  # [epochs, N] per-sample logit per epoch
    checkpoint_paths: list[Path] = field(default_factory=list)  # one per epoch, oldest first
    learning_rates: list[float] = field(default_factory=list)
    device: torch.device = torch.device("cpu")
    seed: int = 0

    def load_checkpoint(self, path: Path) -> NeuralRanker:
        model = NeuralRanker.from_config(self.cfg.train)
        model.load_state_dict(torch.load(path, map_location="cpu"))
        return model.to(self.device)


class Estimator:
    """Base class: subclasses set ``name`` and implement ``score``."""

    name: ClassVar[str] = ""
    #: one line for docs / the CLI
    summary: ClassVar[str] = ""

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


def batches(n: int, size: int) -> Callable:
    return (slice(b, min(b + size, n)) for b in range(0, n, size))
