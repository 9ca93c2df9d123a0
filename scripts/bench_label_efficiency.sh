#!/usr/bin/env bash
# Reproduces every number and plot of the "Label efficiency" section of benchmarks/history.md
# (measured before the round engine and the head changes of issue 11; kept for the record).
#
#   bash scripts/bench_label_efficiency.sh [POOL] [OUT]
#
# POOL defaults to $AEUF_DEV_POOL, else bench_out/alpacaeval_dev.parquet (scripts/fetch_dev_pool.py;
# 16 models x 805 AlpacaEval prompts
# with strong-judge scores). Features are cached in bench_out/cache (MiniLM of 12,880
# responses takes 15+ minutes once on a 2-core CPU; later runs embed nothing).
# Runs: random, dts, deltaucb, infomax x heads ensemble, bll x 5 seeds x deterministic and
# Bernoulli labels, 400 labels in rounds of 50; the no-learning baselines; the all-pairs
# ceiling per head for minilm, stats, model and minilm+stats+model. Then copies the PNG
# curves to benchmarks/.
set -euo pipefail
cd "$(dirname "$0")/.."
POOL=${1:-${AEUF_DEV_POOL:-bench_out/alpacaeval_dev.parquet}}
OUT=${2:-bench_out/label_efficiency}
CACHE=${CACHE:-bench_out/cache}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
.venv/bin/python -m aeuf bench "$POOL" \
    --rules random,dts,deltaucb,infomax --heads ensemble,bll \
    --features minilm+stats+model --seeds 5 --budget 400 --batch_size 50 \
    --label_mode deterministic,bernoulli --output_dir "$OUT" --features_cache "$CACHE"
mkdir -p benchmarks
for f in "$OUT"/learning_curves_*.png; do
    cp "$f" "benchmarks/label_efficiency_$(basename "$f" .png | sed 's/learning_curves_//').png"
done
echo "summary: $OUT/summary.json, tables: $OUT/report.md, plots: benchmarks/label_efficiency_*.png"
