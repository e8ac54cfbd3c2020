"""KNN-Shapley's distance step: one matrix product per block of validation points against
``torch.cdist`` one point at a time (its per-pair CPU kernel, the implementation before).

    python benchmarks/knn_distance.py --n 1000000 --m 24

Random float32 embeddings (``--dim`` 64, the default ranker's hidden size), binary labels;
the whole ``knn_shapley_values`` is timed with each distance, best of ``--repeats``, and the
two results are compared (largest absolute difference of the values, Spearman correlation
of the rankings). Results: ``benchmarks/results/knn_distance.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from sie.importance import knn_shapley as knn

RESULTS = Path(__file__).resolve().parent / "results" / "knn_distance.json"


class CdistPerPoint(knn.Distances):
    """The distance of the earlier implementation: ``torch.cdist`` (matrix products only when
    it judges them necessary: not for one validation row at a time)."""

    def to(self, val_x: torch.Tensor) -> torch.Tensor:
        return torch.cdist(val_x, self.train_x, compute_mode="use_mm_for_euclid_dist_if_necessary")


def timed(distance_class, args, data) -> tuple[float, np.ndarray]:
    knn.Distances, original = distance_class, knn.Distances
    try:
        best, values = float("inf"), None
        for _ in range(args.repeats):
            start = time.perf_counter()
            values = knn.knn_shapley_values(*data, k=10).numpy()
            best = min(best, time.perf_counter() - start)
        return best, values
    finally:
        knn.Distances = original


def parse_args(description: str, n: int) -> argparse.Namespace:
    """The size arguments both KNN benchmarks take (``n`` training points by default)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--n", type=int, default=n)
    p.add_argument("--m", type=int, default=24)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--repeats", type=int, default=2)
    return p.parse_args()


def random_points(args: argparse.Namespace) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(train_x, train_y, val_x, val_y): seeded normal embeddings, click labels at a rate of 0.2."""
    gen = torch.Generator().manual_seed(0)
    train_x, val_x = torch.randn(args.n, args.dim, generator=gen), torch.randn(args.m, args.dim, generator=gen)
    train_y = (torch.rand(args.n, generator=gen) < 0.2).float()
    return train_x, train_y, val_x, (torch.rand(args.m, generator=gen) < 0.2).float()


def main() -> None:
    args = parse_args(__doc__.split("\n", 1)[0], 1_000_000)
    data = random_points(args)
    before, old = timed(CdistPerPoint, args, data)
    after, new = timed(knn.Distances, args, data)
    from scipy.stats import spearmanr

    record(
        RESULTS,
        args,
        {
            "seconds_per_validation_point": {"cdist_per_point": before / args.m, "block_matmul": after / args.m},
            "speedup": before / after,
            "max_abs_value_difference": float(np.abs(old - new).max()),
            "max_abs_value": float(np.abs(old).max()),
            "spearman": float(spearmanr(old, new).statistic),
        },
    )


def record(results: Path, args: argparse.Namespace, measured: dict) -> None:
    """Prints the sizes, the machine's state and ``measured``; keeps them in ``results`` under n-m."""
    entry = {
        "n": args.n,
        "m": args.m,
        "dim": args.dim,
        "threads": torch.get_num_threads(),
        "load_1m": os.getloadavg()[0],
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
    } | measured
    print(json.dumps(entry, indent=1))
    results.parent.mkdir(parents=True, exist_ok=True)
    kept = json.loads(results.read_text()) if results.exists() else {}
    kept[f"n{args.n}-m{args.m}"] = entry
    results.write_text(json.dumps(kept, indent=1) + "\n")


if __name__ == "__main__":
    main()
