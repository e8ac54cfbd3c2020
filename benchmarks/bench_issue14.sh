#!/usr/bin/env bash
# The issue-14 reruns summarised in docs/BENCHMARKS.md ("Issue 14 rerun"): graded / pointwise /
# pairwise training over 3 synthetic worlds and graded training on ESCI by 3-fold query
# k-fold, with the group-aware methods and the ensemble (CPU, 2 cores: 15-40 min each).
#
#   benchmarks/bench_issue14.sh [WAREHOUSE]        # default: ./bench_warehouse
#   OBJECTIVES=listwise DATASETS=esci benchmarks/bench_issue14.sh /data/bench
#
# Finished steps and cells are kept under <WAREHOUSE>/bench/<run_id>/ (a rerun resumes);
# the reports are copied to benchmarks/results/<run_id>/.
set -euo pipefail
cd "$(dirname "$0")/.."
WAREHOUSE="${1:-bench_warehouse}"
SIE=".venv/bin/sie"
export GX_ANALYTICS_ENABLED=False PYSPARK_PYTHON="$PWD/.venv/bin/python"
export SIE_BENCH__TORCH_THREADS="${SIE_BENCH__TORCH_THREADS:-1}"

WORLD=(
  --warehouse "$WAREHOUSE"
  --set simulate.requests_per_day=1500
  --set simulate.bot_rate=0.16
  --set simulate.accidental_click_rate=0.25
  --set simulate.clickbait_item_rate=0.12
  --set simulate.label_flip_rate=0.15
  --set bench.validate=false
)
GRID=(
  --days 1
  --methods loss,aum,el2n,aum@client,loss@client,ensemble
  --keep-ratios 0.1,0.3,1.0
  --seeds 0,1,2
  --baselines random,full
  --workers 1
)

for dataset in ${DATASETS:-synthetic esci}; do
  # ESCI: every judged query held out once over 3 folds; synthetic: 3 world seeds
  if [ "$dataset" = esci ]; then REPLICATION=(--folds 3); objectives="${OBJECTIVES:-listwise}"
  else REPLICATION=(--world-seeds 7,8,9); objectives="${OBJECTIVES:-listwise pointwise pairwise}"; fi
  for objective in $objectives; do
    "$SIE" "${WORLD[@]}" --set train.objective="$objective" \
      bench --dataset "$dataset" "${GRID[@]}" "${REPLICATION[@]}"
  done
done

for report in "$WAREHOUSE"/reports/bench-*/; do
  name="$(basename "$report")"
  mkdir -p "benchmarks/results/$name"
  cp "$report"/report.md "$report"/report.html "$report"/summary.json "$report"/*.png "benchmarks/results/$name/"
done
