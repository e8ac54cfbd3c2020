"""Score one day's training samples with one or more importance methods, then run the
importance_scores suite over all of that day's methods.

    python jobs/score.py --ds 2026-11-20 --methods grad_norm,tracin --warehouse /data/sie
"""

import argparse

from sie.config import SieConfig
from sie.pipeline import score, validate

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ds", required=True)
    parser.add_argument("--methods", help="comma-separated; default: the config's methods")
    parser.add_argument("--warehouse")
    args = parser.parse_args()
    overrides = {"warehouse": args.warehouse} if args.warehouse else {}
    if args.methods:
        overrides["importance"] = {"methods": args.methods.split(",")}
    cfg = SieConfig.load(overrides)
    for method in cfg.importance.methods:
        score(cfg, args.ds, method)
    validate(cfg, args.ds, "importance_scores")
