"""What the evaluate budget (``evaluate.max_train_samples``) trades away, on the benchmark world.

    python benchmarks/evaluate_budget.py --fractions 1,0.5,0.25,0.1 [--dataset synthetic]

Prepares one benchmark run (``sie bench``'s simulate → ingest → train → score, default
grid), then retrains the run's whole grid once per budget: every cell selects within one
seeded uniform subsample of ``fraction`` of the training window
(:func:`sie.selection.retrain.within_budget`, what the nightly evaluate does with
``max_train_samples``). Per budget: NDCG@10 of every (method, keep ratio) averaged over the
grid's seeds, each method's difference from the random baseline at the same keep ratio, and
the summed retraining seconds. Results: ``benchmarks/results/evaluate_budget.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "evaluate_budget.json"


def grid_at_budget(run, inputs, max_samples: int) -> tuple[list[dict], float]:
    """Every cell of the run's grid retrained within one subsample of ``max_samples`` (0 = all)."""
    from sie.selection.retrain import CellData, within_budget
    from sie.selection.retrain import run_cell as retrain_cell

    w = inputs.window
    scores = {m: inputs.scores_for(m)[m] for m in run.grid.methods}
    data = within_budget(CellData(w.train, w.train_frame["query_text"], scores), max_samples)
    rows, t0 = [], time.perf_counter()
    for cell in run.cells():
        m = retrain_cell(cell, data.train, data.strata, inputs.evalset, run.retrain_cfg.train, data.scores)
        rows.append(
            {"method": cell.method, "keep": cell.keep_ratio, "seed": cell.seed, "ndcg_at_10": m["ndcg_at_10"]}
            | {"n_train": int(m["n_train"]), "train_seconds": m["train_seconds"]}
        )
    return rows, time.perf_counter() - t0


def summarise(rows: list[dict]) -> dict:
    """Mean NDCG@10 per (method, keep) over seeds, and each method minus random at its keep ratio."""
    cells: dict[str, list[float]] = {}
    for r in rows:
        cells.setdefault(f"{r['method']}@{r['keep']:g}", []).append(r["ndcg_at_10"])
    mean = {k: round(float(np.mean(v)), 4) for k, v in cells.items()}
    vs_random = {
        k: round(v - mean[f"random@{k.split('@')[1]}"], 4)
        for k, v in mean.items()
        if not k.startswith(("random@", "full@")) and f"random@{k.split('@')[1]}" in mean
    }
    return {"ndcg_at_10": mean, "minus_random": vs_random}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fractions", default="1,0.5,0.25,0.1", help="shares of the training window kept")
    p.add_argument("--dataset", default="synthetic")
    p.add_argument("--work", default="/tmp/sie_evaluate_budget")
    args = p.parse_args()

    from sie.bench.run import resolve
    from sie.bench.runner import cell_inputs, prepare, score, train
    from sie.config import SieConfig
    from sie.log import setup

    setup()
    cfg = SieConfig.load({"warehouse": args.work, "bench": {"dataset": args.dataset}})
    run = resolve(cfg)
    t0 = time.perf_counter()
    prepare(run)
    train(run)
    for method in run.grid.methods:
        score(run, method)
    prepare_seconds = time.perf_counter() - t0
    inputs = cell_inputs(run)
    n = len(inputs.window.train)
    budgets = []
    for fraction in [float(f) for f in args.fractions.split(",")]:
        cap = 0 if fraction >= 1 else math.ceil(fraction * n)
        rows, seconds = grid_at_budget(run, inputs, cap)
        budgets.append({"fraction": fraction, "max_train_samples": cap, "retrain_seconds": round(seconds, 1)})
        budgets[-1] |= summarise(rows) | {"cells": rows}
        print(f"fraction {fraction:g} ({cap or n} samples): {seconds:.0f} s, {budgets[-1]['ndcg_at_10']}", flush=True)
    out = {
        "benchmark": "evaluate_budget",
        "run_id": run.run_id,
        "dataset": args.dataset,
        "window_train_samples": n,
        "grid": {
            "methods": list(run.grid.methods),
            "keep_ratios": list(run.grid.keep_ratios),
            "seeds": list(run.grid.seeds),
        },
        "prepare_seconds": round(prepare_seconds, 1),
        "budgets": budgets,
    }
    RESULTS.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
