#!/usr/bin/env bash
# The benchmark runs summarised in docs/BENCHMARKS.md (CPU, 2 shared cores; about 1 h each).
#
#   benchmarks/bench_runs.sh [WAREHOUSE]          # default: ./bench_warehouse
#   REQUESTS_PER_DAY=8000 DAYS=3 benchmarks/bench_runs.sh /data/bench   # the larger run
#   DATASETS=esci WORKERS=2 benchmarks/bench_runs.sh                     # one world, 2 cell processes
#
# Both runs use the same scale and the same noise knobs (>= 20% of training samples are label
# noise); the synthetic world and the ESCI world (real ESCI queries/products/judgments from
# ../shared/data/esci) differ only in SIE_BENCH__DATASET. Every finished step and cell is kept
# under <WAREHOUSE>/bench/<run_id>/, so rerunning the script resumes where it stopped.
# Reports: <WAREHOUSE>/reports/<run_id>/report.{md,html}; copies go to benchmarks/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
WAREHOUSE="${1:-bench_warehouse}"
SIE=".venv/bin/sie"
export GX_ANALYTICS_ENABLED=False PYSPARK_PYTHON="$PWD/.venv/bin/python"
export SIE_BENCH__TORCH_THREADS="${SIE_BENCH__TORCH_THREADS:-1}"

COMMON=(
  --warehouse "$WAREHOUSE"
  --set simulate.requests_per_day="${REQUESTS_PER_DAY:-3000}"
  --set simulate.bot_rate=0.16
  --set simulate.accidental_click_rate=0.25
  --set simulate.clickbait_item_rate=0.12
  --set simulate.label_flip_rate=0.15
)
GRID=(
  --days "${DAYS:-2}"
  --methods loss,el2n,forgetting,aum,grad_norm,input_grad_share,tracin,tracin_self,knn_shapley,data_oob,tce,rce
  --keep-ratios 0.1,0.2,0.3,0.5,0.7,1.0
  --seeds 0,1,2,3,4
  --baselines random,stratified,full
)

for dataset in ${DATASETS:-synthetic esci}; do
  "$SIE" "${COMMON[@]}" bench --dataset "$dataset" "${GRID[@]}" --workers "${WORKERS:-1}"
done

# copy the reports next to this script (run ids are printed above and listed by `sie sql`)
for report in "$WAREHOUSE"/reports/bench-*/; do
  name="$(basename "$report")"
  mkdir -p "benchmarks/results/$name"
  cp "$report"/report.md "$report"/report.html "$report"/summary.json "$report"/*.png "benchmarks/results/$name/"
done
