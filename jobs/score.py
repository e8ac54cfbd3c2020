"""Score one day's training samples with one or more importance methods, then run the
importance_scores suite over all of that day's methods.

    python jobs/score.py --ds 2026-11-20 --methods grad_norm,tracin --warehouse /data/sie
"""

from _args import config, parser

from sie.steps import daily

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--methods", help="comma-separated; default: the config's methods")
    args = p.parse_args()
    cfg = config(args, methods=args.methods)
    daily.score_all(cfg, args.ds, cfg.importance.methods)
    daily.validate(cfg, args.ds, "importance_scores")
