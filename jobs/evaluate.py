"""Retrain on importance-downsampled data and evaluate on the judged holdout for one day.

python jobs/evaluate.py --ds 2026-11-20 --warehouse /data/sie
"""

from _args import config, parser

from sie.steps import daily

if __name__ == "__main__":
    args = parser(__doc__).parse_args()
    daily.evaluate(config(args), args.ds)
