"""The estimator protocol: one module per method, one small interface.

An estimator is constructed from the config, then ``score(ctx)`` returns one float per
training sample of the context, in ``ctx.train.sample_id`` order. Higher = more
valuable to keep. Estimators never see the benchmark holdout.

Estimators stream over samples in batches of ``cfg.importance.batch_size`` on
``ctx.device``: apart from the O(N) output vector (and O(N) per-sample inputs such as
the training dynamics), memory does not grow with the number of samples.

The per-sample loss is the training objective's (``cfg.train.objective``,
sie.model.objective). For the group objectives (listwise, pairwise) a sample's loss
depends on its whole query request, so the per-sample *gradient* is defined as
``λ_i ∇_θ z_i`` with ``λ_i = ∂L/∂z_i`` at the scored model: the sample's share of the
request's gradient through its own logit (these shares sum exactly to the batch
gradient). :class:`ScoringContext` attaches λ to ``train`` / ``validation``
(:class:`SamplesWithLogitGrad`); :func:`iter_batches` hands it to
:func:`per_sample_loss` as a :class:`LogitGradient`, whose surrogate ``λ_i · z_i`` is
sample-local, so ghost norms, TracIn dot products and input gradients stay exact.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from sie.config import SieConfig
from sie.model.features import SampleTensors
from sie.model.objective import Objective
from sie.model.ranker import NeuralRanker, build_ranker

if TYPE_CHECKING:  # pragma: no cover
    from sie.model.training import TrainResult

log = logging.getLogger("sie.importance")


@dataclass
class SamplesWithLogitGrad(SampleTensors):
    """Samples with ``logit_grad`` = λ_i = ∂L/∂z_i of a group objective at one model."""

    logit_grad: torch.Tensor | None = None  # [N] float

    def subset(self, index: np.ndarray | torch.Tensor) -> SamplesWithLogitGrad:
        idx = torch.as_tensor(np.asarray(index), dtype=torch.long)
        return with_logit_grad(super().subset(index), self.logit_grad[idx])


def with_logit_grad(data: SampleTensors, logit_grad: torch.Tensor) -> SamplesWithLogitGrad:
    parts = {f.name: getattr(data, f.name) for f in fields(SampleTensors)}
    return SamplesWithLogitGrad(**parts, logit_grad=logit_grad)


@torch.no_grad()
def at_model(model: NeuralRanker, data: SampleTensors, cfg: SieConfig, device: torch.device) -> SampleTensors:
    """``data`` with the objective's λ at ``model`` attached; unchanged for the pointwise objective."""
    objective = Objective.of(cfg.train, data)
    if not objective.is_group or len(data) == 0:
        return data
    model.eval()
    size = int(cfg.importance.batch_size)
    z = torch.cat([model(*data.inputs(device, sl)).float().cpu() for sl in batches(len(data), size)])
    return with_logit_grad(data, objective.logit_gradients(z))


def in_memory_scratch(name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """The default :attr:`ScoringContext.scratch`: a zeroed in-memory array (``name`` unused)."""
    return np.zeros(shape, dtype=dtype)


class LogitGradient:
    """A batch's λ (see the module doc): :func:`per_sample_loss` returns the surrogate ``λ_i · z_i``."""

    def __init__(self, value: torch.Tensor):
        self.value = value

    def to(self, device: torch.device | str, non_blocking: bool = False) -> LogitGradient:
        return LogitGradient(self.value.to(device, non_blocking=non_blocking))


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
    # where an estimator keeps a large per-sample array (e.g. `trak`'s projected gradients):
    # ``scratch(name, shape, dtype)`` returns a zeroed array; the caller may hand out
    # np.memmap files instead of memory (estimators themselves do no I/O)
    scratch: Callable[[str, tuple[int, ...], np.dtype], np.ndarray] = field(default=in_memory_scratch, repr=False)
    # other methods' scores for this same model version, given by the caller (e.g. the
    # scoring step, with scores published earlier in the run), so that derived methods
    # (``loss@client``, ``ensemble``) reuse them instead of recomputing
    given_scores: dict[str, np.ndarray] = field(default_factory=dict)
    # the given_scores a method read (its cost includes theirs), and scores computed here
    # on demand; not copied by ``dataclasses.replace``, whose new context may differ
    reused: list[str] = field(default_factory=list, init=False, repr=False)
    computed_scores: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        # a group objective's per-sample gradient needs λ at the scored model (module doc)
        self.train = at_model(self.model, self.train, self.cfg, self.device)
        self.validation = at_model(self.model, self.validation, self.cfg, self.device)

    @property
    def objective(self) -> Objective:
        """The training objective bound to the training samples."""
        return Objective.of(self.cfg.train, self.train)

    def at_model(self, model: NeuralRanker, data: SampleTensors) -> SampleTensors:
        """``data`` with the objective's λ at ``model`` (e.g. an earlier checkpoint) attached."""
        return at_model(model, data, self.cfg, self.device)

    def method_scores(self, method: str) -> np.ndarray:
        """``method``'s scores for this model: the given ones when present, else computed once here and kept."""
        if method in self.given_scores:
            if method not in self.reused:
                self.reused.append(method)
            return self.given_scores[method]
        if method not in self.computed_scores:
            self.computed_scores[method] = checked_scores(get_estimator(method, self.cfg), self)
        return self.computed_scores[method]

    @property
    def n_checkpoints(self) -> int:
        return len(self.checkpoint_states)

    def load_epoch(self, epoch: int) -> NeuralRanker:
        """The model as it was at the end of ``epoch`` (0-based)."""
        if not self.checkpoint_states:
            raise RuntimeError("this scoring context has no checkpoints")
        model = build_ranker(self.cfg.train, pretrained=False)
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

    def uses(self) -> tuple[str, ...]:
        """Other methods whose scores ``score`` reads through ``ctx.method_scores`` (derived methods)."""
        return ()


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
    """(slice, (query_tokens, item_tokens, dense), target) per batch, on ``device``.

    The target is the click, or a :class:`LogitGradient` when ``data`` carries λ.
    """
    logit_grad = getattr(data, "logit_grad", None)
    for sl in batches(len(data), size):
        target = data.click[sl] if logit_grad is None else LogitGradient(logit_grad[sl])
        yield sl, data.inputs(device, sl), target.to(device, non_blocking=True)


def per_sample_loss(logits: torch.Tensor, target: torch.Tensor | LogitGradient) -> torch.Tensor:
    """What gradient methods differentiate per sample: pointwise BCE on the click (as in
    sie.model.training), or for a group objective the surrogate ``λ_i · z_i``, whose
    gradient ``λ_i ∇z_i`` is the sample's share of the loss gradient (its value is not a loss)."""
    if isinstance(target, LogitGradient):
        return logits * target.value.to(logits.dtype)
    return F.binary_cross_entropy_with_logits(logits, target.to(logits.dtype), reduction="none")


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
