"""KNN-Shapley's sort step: composite int64 keys sorted by ``torch.sort`` one row at a time
(``knn_shapley.nearest_first`` now) against numpy's in-place sort of the [b, N] keys (before).

    python benchmarks/knn_sort.py --n 2700000 --m 24

The random points of ``benchmarks/knn_distance.py`` (float32, ``--dim`` 64, binary labels)
with a thousand exact duplicates (tied distances); the whole ``knn_shapley_values`` is
timed with each sort, alternately, best of ``--repeats``. Both sorts order the same unique
keys, so the values must be bit-identical (checked). Results: ``benchmarks/results/knn_sort.json``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from knn_distance import parse_args, random_points, record

from sie.importance import knn_shapley as knn

RESULTS = Path(__file__).resolve().parent / "results" / "knn_sort.json"


def numpy_nearest_first(dist: torch.Tensor) -> torch.Tensor:
    """The float32 CPU path before: the same keys, sorted by numpy along the rows."""
    d = dist.float().clamp(min=0.0).add(0.0).contiguous()
    keys = d.view(torch.int32).numpy().astype(np.int64) << 32
    keys |= np.arange(d.shape[1], dtype=np.int64)
    keys.sort(axis=1)
    keys &= 0xFFFFFFFF
    return torch.from_numpy(keys)


def main() -> None:
    args = parse_args(__doc__.split("\n", 1)[0], 2_700_000)
    train_x, train_y, val_x, val_y = random_points(args)
    train_x[args.n // 2 : args.n // 2 + 1000] = train_x[:1000]  # exact ties, broken by index
    sorts = {"numpy_rows": numpy_nearest_first, "torch_per_row": knn.nearest_first}
    best, values = dict.fromkeys(sorts, float("inf")), {}
    for _ in range(args.repeats):
        for name, sort in sorts.items():
            knn.nearest_first = sort
            start = time.perf_counter()
            values[name] = knn.knn_shapley_values(train_x, train_y, val_x, val_y, k=10)
            best[name] = min(best[name], time.perf_counter() - start)
    knn.nearest_first = sorts["torch_per_row"]
    record(
        RESULTS,
        args,
        {
            "seconds_per_validation_point": {name: s / args.m for name, s in best.items()},
            "speedup": best["numpy_rows"] / best["torch_per_row"],
            "identical_values": bool(torch.equal(values["numpy_rows"], values["torch_per_row"])),
        },
    )


if __name__ == "__main__":
    main()
