#!/usr/bin/env bash
# The `budget` regime of BENCHMARKS.md: the head's held-out accuracy and log-likelihood vs
# labels, up to twice the pool (a second pass labels a new pair of every prompt).
#
#   bash scripts/bench_budget.sh [A|B] [OUT]
#
# A / B: the model halves of scripts/bench_models.sh (tune on A, check on B). 805 prompts x 8
# responses: 604 pool prompts, 201 held out; 1,200 labels in rounds of 100 (a round of 4 ends
# the first pass); the first round is the same random batch for every rule at a seed. Labels
# saved comes with a 95% paired bootstrap band over the seeds. Env: SEEDS (5), RULES, HEADS,
# FEATURES (minilm+stats+model), BUDGET (1200), BATCH (100; issue 19's small-budget regime:
# BUDGET=400 BATCH=50), TAG (suffix of the PNG), PY (python), POOL, CACHE.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench_models.sh
HALF=${1:-A}
OUT=${2:-bench_out/budget_$HALF${TAG:-}}
POOL=${POOL:-${AEUF_DEV_POOL:-bench_out/alpacaeval_dev.parquet}}
CACHE=${CACHE:-bench_out/cache}
PY=${PY:-.venv/bin/python}
MODELS=$([ "$HALF" = A ] && echo "$HALF_A" || echo "$HALF_B")
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
nice -n 10 "$PY" -m aeuf bench "$POOL" --regime budget --models "$MODELS" \
    --features "${FEATURES:-minilm+stats+model}" --heads "${HEADS:-ensemble,bll}" \
    --rules "${RULES:-dts,deltaucb,infomax}" --seeds "${SEEDS:-5}" --budget "${BUDGET:-1200}" \
    --batch_size "${BATCH:-100}" --label_mode deterministic --ceiling_features "${FEATURES:-minilm+stats+model}" \
    --output_dir "$OUT" --features_cache "$CACHE"
mkdir -p benchmarks
cp "$OUT/learning_curves_deterministic.png" "benchmarks/budget_$HALF${TAG:-}.png"
echo "summary: $OUT/summary.json, tables: $OUT/report.md, plot: benchmarks/budget_$HALF${TAG:-}.png"
