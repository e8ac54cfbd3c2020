"""Holdout metric speed: `ranking_metrics` (sklearn ndcg_score per group size) vs the
per-query loop it replaces (`ranking_metrics_per_query`, one ndcg_score call per query).

    .venv/bin/python benchmarks/metrics.py [--repeats 5] [--out benchmarks/results/metrics.json]

Shapes: the synthetic world's holdout (120 queries x 50 judged items), the ESCI holdout
(45 queries, 40-78 judged items each) and a larger 2,000-query holdout with mixed sizes.
Each timing is the best of ``--repeats``; both results are checked equal before timing.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sie.selection.metrics import ranking_metrics, ranking_metrics_per_query  # noqa: E402


def holdout(sizes: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(len(sizes)), sizes)
    grades = rng.integers(0, 4, len(groups))
    scores = rng.normal(size=len(groups))
    return groups, grades, scores


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "metrics.json"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    shapes = {
        "synthetic_120x50": np.full(120, 50),
        "esci_45x40-78": rng.integers(40, 79, 45),
        "mixed_2000x5-80": rng.integers(5, 81, 2000),
    }
    results = {}
    for name, sizes in shapes.items():
        groups, grades, scores = holdout(sizes, seed=1)
        fast, slow = ranking_metrics(groups, grades, scores), ranking_metrics_per_query(groups, grades, scores)
        assert all(abs(fast[k] - slow[k]) < 1e-12 for k in fast), (fast, slow)  # equal up to summation order
        t_fast = best_of(lambda: ranking_metrics(groups, grades, scores), args.repeats)
        t_slow = best_of(lambda: ranking_metrics_per_query(groups, grades, scores), args.repeats)
        results[name] = {
            "queries": int(len(sizes)),
            "judged_items": int(sizes.sum()),
            "ranking_metrics_s": round(t_fast, 5),
            "per_query_s": round(t_slow, 5),
            "speedup": round(t_slow / t_fast, 1),
        }
        print(f"{name}: {t_fast * 1e3:.1f} ms vs {t_slow * 1e3:.1f} ms per query -> {t_slow / t_fast:.1f}x", flush=True)
    out = {
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "repeats": args.repeats,
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
