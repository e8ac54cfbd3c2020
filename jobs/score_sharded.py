"""Score one day's training samples with row-local methods, rows sharded over the `torchrun`
processes: one Parquet part per rank and method, published together by rank 0 (sie.steps.sharded).

    torchrun --nproc_per_node=2 jobs/score_sharded.py --ds 2026-11-20 --methods loss,grad_norm,tracin
"""

from _args import config, parser

from sie.steps import sharded

if __name__ == "__main__":
    p = parser(__doc__)
    p.add_argument("--methods", required=True, help="comma-separated, of: " + ", ".join(sorted(sharded.ROW_LOCAL)))
    args = p.parse_args()
    sharded.score_sharded(config(args), args.ds, args.methods.split(","))
