"""Simulator throughput: one day of 1M impressions per world on one CPU core.

    .venv/bin/python benchmarks/simulate.py [--impressions 1000000] [--out benchmarks/results/simulate.json]

Pins the process to one core (and every BLAS/Arrow pool to one thread), simulates one
day for the synthetic world and — when ../shared/data/esci exists — the ESCI world into
a temporary warehouse, and writes timings per stage plus the simulated world's
statistics (CTR by position, noise shares, counts) as JSON (and a Markdown rendering
next to it).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sie.config import SieConfig  # noqa: E402
from sie.simulate.core import simulate_day_with_arrays  # noqa: E402
from sie.simulate.stats import markdown_table, world_stats  # noqa: E402
from sie.simulate.world import get_world, resolve_esci_dir  # noqa: E402

DS = "2024-01-01"
WORLDS = {
    # a catalog/user base sized for 100k requests a day
    "synthetic": {"world": "synthetic", "n_items": 20000, "n_users": 50000, "n_intents": 3000},
    "esci": {"world": "esci", "n_users": 50000},
}


def _one_core() -> str:
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    if hasattr(os, "sched_setaffinity"):
        cpu = sorted(os.sched_getaffinity(0))[0]
        os.sched_setaffinity(0, {cpu})
        return f"pinned to cpu {cpu}"
    return "not pinned (no sched_setaffinity)"


def bench_world(name: str, impressions: int | None, k: int, root: Path) -> dict:
    """One day; ``impressions=None`` = the default demo configuration of that world."""
    if impressions is None:
        sim = {"world": name}
        root = root / "defaults"
    else:
        sim = {**WORLDS[name], "requests_per_day": impressions // k, "impressions_per_request": k}
    cfg = SieConfig.load({"warehouse": str(root / name), "simulate": sim})
    t0 = time.perf_counter()
    get_world(cfg.simulate)
    world_s = time.perf_counter() - t0
    timings: dict[str, float] = {}
    t0, c0 = time.perf_counter(), time.process_time()
    summary, world, log = simulate_day_with_arrays(cfg, DS, timings)
    day_s, day_cpu = time.perf_counter() - t0, time.process_time() - c0
    stats = world_stats(world, log, cfg.simulate)
    sizes = {k2: Path(p).stat().st_size for k2, p in summary["paths"].items()}
    return {
        "world": name,
        "config": cfg.to_dict()["simulate"],
        "world_build_seconds": round(world_s, 2),
        "day_seconds": round(day_s, 2),
        "day_cpu_seconds": round(day_cpu, 2),
        "impressions": summary["impressions"],
        "impressions_per_second": round(summary["impressions"] / day_s),
        "under_60s": day_s < 60.0,
        "stage_seconds": timings,
        "summary": {k2: v for k2, v in summary.items() if k2 != "paths"},
        "file_bytes": sizes,
        "stats": stats,
        "markdown": markdown_table(stats),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--impressions", type=int, default=1_000_000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "simulate.json"))
    args = ap.parse_args()
    pinned = _one_core()
    worlds = ["synthetic"]
    esci = resolve_esci_dir(SieConfig().simulate)
    if esci.is_dir():
        worlds.append("esci")
    results = []
    with tempfile.TemporaryDirectory(prefix="sie-simbench-") as tmp:
        for name, n in [(w, args.impressions) for w in worlds] + [(w, None) for w in worlds]:
            r = bench_world(name, n, args.k, Path(tmp))
            r["scale"] = "defaults" if n is None else f"{args.impressions:,} impressions"
            print(
                f"{name} ({r['scale']}): {r['impressions']:,} impressions in {r['day_seconds']} s wall, {r['day_cpu_seconds']} s CPU "
                f"({r['impressions_per_second']:,}/s; world build {r['world_build_seconds']} s) {r['stage_seconds']}",
                flush=True,
            )
            print(r["markdown"])
            results.append(r)
    out = {
        "benchmark": "simulate",
        "ds": DS,
        "target": "1M impressions/day in < 60 s on one core",
        "cpu": pinned,
        "machine": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pyarrow": pa.__version__,
            "processor": platform.processor() or platform.machine(),
            "os_cpu_count": os.cpu_count(),
        },
        "esci_included": "esci" in worlds,
        "results": results,
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    path.with_suffix(".md").write_text(
        "# Simulator benchmark\n\n"
        + "\n".join(
            f"## {r['world']} ({r['scale']}): {r['impressions']:,} impressions in {r['day_seconds']} s wall "
            f"({r['day_cpu_seconds']} s CPU) "
            f"(world build {r['world_build_seconds']} s)\n\nstages (s): {r['stage_seconds']}\n\n{r['markdown']}"
            for r in results
        )
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
