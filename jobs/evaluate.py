"""Retrain on importance-downsampled data and evaluate on the judged holdout for one day.

python jobs/evaluate.py --ds 2026-11-20 --warehouse /data/sie
"""

import argparse

from sie.config import SieConfig
from sie.pipeline import evaluate

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ds", required=True)
    parser.add_argument("--warehouse")
    args = parser.parse_args()
    evaluate(SieConfig.load({"warehouse": args.warehouse} if args.warehouse else None), args.ds)
