"""Train the ranker for one day (a scheduler / `torchrun` entry point).

python jobs/train.py --ds 2026-11-20 --warehouse /data/sie
"""

from _args import config, parser

from sie.steps import daily

if __name__ == "__main__":
    args = parser(__doc__).parse_args()
    daily.train(config(args), args.ds)
