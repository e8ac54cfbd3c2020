"""Can a cheap model pick the data for an expensive one? Proxy selection for the cross-encoder.

For each dataset, two benchmark runs on the same world (sie.bench, the same holdout):

* **proxy**: the default MLP ranker is trained and scores the window; every cell retrains the
  MiniLM-L6 cross-encoder (``bench.retrain_model=minilm_cross``) on the data those scores
  keep, plus the ``random`` and ``full`` baselines (cross-encoder too);
* **own**: the cross-encoder itself is trained on the whole window and scores it; the cells
  retrain it on its own top-k.

The table gives NDCG@10 on the judged holdout (mean and CI over cell seeds) and the total
cost: training the scoring model + scoring + retraining the cross-encoder on the selection.

    .venv/bin/python benchmarks/proxy_selection.py                      # both datasets
    .venv/bin/python benchmarks/proxy_selection.py --datasets esci --requests 300

Finished steps and cells are kept under <warehouse>/bench/<run_id>/ (a rerun resumes).
Results: benchmarks/results/proxy_selection.json (and the markdown table on stdout).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sie.bench.metrics import mean_ci  # noqa: E402
from sie.bench.report import load_results  # noqa: E402
from sie.bench.run import resolve  # noqa: E402
from sie.bench.runner import run_benchmark  # noqa: E402
from sie.config import load_config  # noqa: E402

# the noisy world of the published benchmark runs (benchmarks/bench_issue14.sh), fewer requests
WORLD = [
    "simulate.bot_rate=0.16",
    "simulate.accidental_click_rate=0.25",
    "simulate.clickbait_item_rate=0.12",
    "simulate.label_flip_rate=0.15",
    "bench.validate=false",
]


def configs(dataset: str, args) -> dict:
    common = [
        *WORLD,
        f"simulate.requests_per_day={args.requests}",
        f"bench.dataset={dataset}",
        "bench.days=1",
        f"bench.grid.keep_ratios={args.keep}",
        f"bench.grid.seeds={args.seeds}",
        f"bench.grid.methods={args.methods}",
        *args.set,
    ]
    proxy = load_config(
        pairs=[*common, "train.model=mlp", "bench.retrain_model=minilm_cross", "bench.grid.baselines=random,full"],
        warehouse=args.warehouse,
    )
    own = load_config(pairs=[*common, "train.model=minilm_cross", "bench.grid.baselines="], warehouse=args.warehouse)
    return {"proxy": proxy, "own": own}


def trained(cfg) -> dict:
    """The scoring model's training record (model.json of the run's model version)."""
    return json.loads(resolve(cfg).state("trained.json").read_text())


def table_rows(dataset: str, cfgs: dict) -> list[dict]:
    out = []
    for arm, cfg in cfgs.items():
        run = resolve(cfg)
        rows = load_results(cfg, run.run_id)
        ndcg = rows[(rows["metric"] == "ndcg_at_10") & rows["subset"].isna()]
        meta = trained(cfg)
        # load-independent cost: cross-encoder samples x epochs (training it to score + retraining)
        encoder_epochs = run.retrain_cfg.train.effective().epochs
        scoring_encoder = meta["n_train"] * meta["epochs"] if meta["model_id"] == "minilm_cross" else 0
        for (method, keep), cells in ndcg.groupby(["method", "keep_ratio"]):
            mean, ci, n = mean_ci(cells["value"])
            baseline = method in ("random", "full")
            select = 0.0 if baseline else float(meta["train_seconds"]) + float(cells["score_seconds"].mean())
            retrain = float(cells["train_seconds"].mean())
            n_train = int(cells["n_train"].iloc[0])
            out.append(
                {
                    "dataset": dataset,
                    "selector": method if baseline else f"{arm}: {method} ({cells['score_model_id'].iloc[0]})",
                    "keep_ratio": float(keep),
                    "ndcg_at_10": round(mean, 4),
                    "ci": round(ci, 4),
                    "n_seeds": int(n),
                    "n_train": n_train,
                    "encoder_sample_epochs": (0 if baseline else scoring_encoder) + n_train * encoder_epochs,
                    "selection_seconds": round(select, 1),
                    "retrain_seconds": round(retrain, 1),
                    "total_seconds": round(select + retrain, 1),
                    "retrained_model": cells["model_id"].iloc[0],
                    "run_id": run.run_id,
                }
            )
    return sorted(out, key=lambda r: (r["dataset"], -r["keep_ratio"], r["selector"]))


def markdown(rows: list[dict]) -> str:
    lines = [
        "| dataset | selector (scoring model) | keep | NDCG@10 | ± CI | seeds | train samples "
        "| encoder sample-epochs | selection s | retrain s | total s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['selector']} | {r['keep_ratio']:.2f} | {r['ndcg_at_10']:.4f} | {r['ci']:.4f} "
            f"| {r['n_seeds']} | {r['n_train']} | {r['encoder_sample_epochs']:,} | {r['selection_seconds']:.0f} "
            f"| {r['retrain_seconds']:.0f} "
            f"| {r['total_seconds']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="synthetic,esci")
    parser.add_argument("--requests", type=int, default=500, help="simulated requests in the one-day window")
    parser.add_argument("--methods", default="loss,aum")
    parser.add_argument("--keep", default="0.3")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--warehouse", default="bench_warehouse")
    parser.add_argument("--set", action="append", default=[], help="extra config override SECTION.FIELD=VALUE")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "proxy_selection.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    rows, seconds = [], {}
    for dataset in args.datasets.split(","):
        cfgs = configs(dataset, args)
        start = time.perf_counter()
        for cfg in cfgs.values():
            run_benchmark(cfg, report=False)
        seconds[dataset] = round(time.perf_counter() - start, 1)
        rows += table_rows(dataset, cfgs)
    result = {
        "command": "python benchmarks/proxy_selection.py " + " ".join(sys.argv[1:]),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_seconds": seconds,
        "rows": rows,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(rows))


if __name__ == "__main__":
    main()
