"""How much of the click signal is noise in a simulated world: shares of samples and of
clicks by oracle noise type. Explains why models retrained on importance-downsampled data
(which drops noisy samples) score *worse* on held-out click AUC / log loss: those held-out
clicks carry the same noise (docs/BENCHMARKS.md, "Click metrics").

    .venv/bin/python benchmarks/click_noise.py            # the docs/BENCHMARKS.md worlds
    .venv/bin/python benchmarks/click_noise.py --set simulate.bot_rate=0.05

Defaults are the noise knobs of the published benchmark runs (benchmarks/bench_runs.sh).
Results: benchmarks/results/click_noise.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sie.config import load_config  # noqa: E402
from sie.ds import Ds  # noqa: E402
from sie.simulate.core import oracle_table, simulate_day_with_arrays  # noqa: E402

BENCH_KNOBS = [
    "simulate.requests_per_day=3000",
    "simulate.bot_rate=0.16",
    "simulate.accidental_click_rate=0.25",
    "simulate.clickbait_item_rate=0.12",
    "simulate.label_flip_rate=0.15",
]


def world_click_noise(world: str, start: str, days: int, overrides: list[str]) -> dict:
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(pairs=[f"simulate.world={world}", *overrides], warehouse=tmp)
        frames = []
        for ds in Ds.span(start, days):
            _, w, log = simulate_day_with_arrays(cfg, ds)
            frames.append(oracle_table(w, log).to_pandas())
    t = pd.concat(frames, ignore_index=True)
    clicked = t["label"] >= 1

    def share(column: pd.Series) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in column.value_counts(normalize=True).sort_index().items()}

    return {
        "samples": len(t),
        "ctr": round(float(clicked.mean()), 4),
        "ctr_clean": round(float(clicked[~t["is_noise"]].mean()), 4),
        "ctr_label_noise": round(float(clicked[t["is_noise"]].mean()), 4),
        "label_noise_share_of_samples": round(float(t["is_noise"].mean()), 4),
        "label_noise_share_of_clicks": round(float(t.loc[clicked, "is_noise"].mean()), 4),
        "samples_by_noise_type": share(t["noise_type"]),
        "clicks_by_noise_type": share(t.loc[clicked, "noise_type"]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worlds", default="synthetic,esci")
    ap.add_argument("--start", default="2026-11-01")
    ap.add_argument("--days", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE", help="extra config overrides")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "click_noise.json"))
    args = ap.parse_args()
    overrides = BENCH_KNOBS + args.set
    result = {
        "overrides": overrides,
        "start": args.start,
        "days": args.days,
        "worlds": {w: world_click_noise(w, args.start, args.days, overrides) for w in args.worlds.split(",")},
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
