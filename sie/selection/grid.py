"""The one retrain grid: (method × keep ratio × seed) cells plus the baselines, and the one rule for ``random``.

``random`` is always the seeded uniform-random *baseline* (a mask, no scores), nightly and
in the benchmark alike: listing ``random`` among the methods adds the baseline. The
``random`` importance method (uniform scores) still fills the score table and serves as
the noise-detection reference, but a grid never retrains on it as a method. A keep ratio
of 1.0 is the ``full`` baseline.
"""

from __future__ import annotations

from dataclasses import dataclass

from sie.config import GridConfig

#: selections that need no importance scores: uniform random, uniform within each query text, all data
BASELINES = ("random", "stratified", "full")


@dataclass(frozen=True)
class Cell:
    """One retraining: keep ``keep_ratio`` of the samples by ``method`` (or a baseline), seed ``seed``."""

    method: str
    keep_ratio: float
    seed: int

    @property
    def is_baseline(self) -> bool:
        return self.method in BASELINES

    def key(self) -> str:
        return f"{self.method}-{self.keep_ratio:.4f}-{self.seed}"


@dataclass(frozen=True)
class Grid:
    methods: tuple[str, ...]  # importance methods whose top-k is retrained
    baselines: tuple[str, ...]
    keep_ratios: tuple[float, ...]  # all < 1 (1.0 is the full baseline)
    seeds: tuple[int, ...]

    @classmethod
    def from_config(cls, grid: GridConfig, default_methods: list[str]) -> Grid:
        """The grid ``grid`` describes (methods default to ``default_methods``); fails on invalid settings."""
        requested = list(dict.fromkeys(grid.methods or default_methods))
        methods = tuple(m for m in requested if m not in BASELINES)
        baselines = list(dict.fromkeys(grid.baselines))
        if any(b not in BASELINES for b in baselines):
            raise ValueError(f"grid baselines must be among {BASELINES}, got {baselines}")
        if "random" in requested and "random" not in baselines:
            baselines.insert(0, "random")
        ratios = sorted({float(r) for r in grid.keep_ratios})
        if not ratios or any(not 0.0 < r <= 1.0 for r in ratios):
            raise ValueError(f"keep ratios must be in (0, 1], got {ratios}")
        if 1.0 in ratios and "full" not in baselines:
            baselines.append("full")
        seeds = tuple(dict.fromkeys(int(s) for s in grid.seeds))
        if not seeds:
            raise ValueError("the grid has no seeds")
        return cls(methods, tuple(baselines), tuple(r for r in ratios if r < 1.0), seeds)

    def cells(self) -> list[Cell]:
        """Every cell, seed-major: ``full`` first, then per keep ratio the baselines and the methods."""
        out: list[Cell] = []
        for seed in self.seeds:
            if "full" in self.baselines:
                out.append(Cell("full", 1.0, seed))
            for ratio in self.keep_ratios:
                for name in [b for b in self.baselines if b != "full"] + list(self.methods):
                    out.append(Cell(name, ratio, seed))
        return out
