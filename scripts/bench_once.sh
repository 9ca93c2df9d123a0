#!/usr/bin/env bash
# The `once` regime of BENCHMARKS.md: every prompt labelled once, as the README's main command
# (`aeuf POOL --num_responses 8 --num_annotations 2`), the exported pairs judged on gold.
#
#   bash scripts/bench_once.sh [A|B] [OUT]
#
# A: the 8 models of HALF_A (scripts/bench_models.sh), where defaults are tuned; B: the other
# 8, never tuned on. 805 prompts x 8 responses: 604 are labelled, 201 held out; a fresh head
# trained on each run's exported pairs is scored on the held-out prompts. Rules: the default
# (dts after an aepo round) and the others below, beside West-of-N (all 8 judged), random,
# UltraFeedback's best-of-4, AEPO and the no-call baselines (longer vs shorter; the delta pair:
# largest vs smallest model by the parameter count in its name).
# Env: SEEDS (3), RULES, HEADS, FEATURES (minilm+stats+model), ROUNDS (extra round flags,
# e.g. "--initial_batch 50 --batch_size 100"; default: the main command's rounds),
# TAG (suffix of the PNG's name), PY (python), POOL, CACHE (feature cache; MiniLM of the
# pool takes 15+ min once).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench_models.sh
HALF=${1:-A}
OUT=${2:-bench_out/once_$HALF${TAG:-}}
POOL=${POOL:-${AEUF_DEV_POOL:-bench_out/alpacaeval_dev.parquet}}
CACHE=${CACHE:-bench_out/cache}
PY=${PY:-.venv/bin/python}
MODELS=$([ "$HALF" = A ] && echo "$HALF_A" || echo "$HALF_B")
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# shellcheck disable=SC2086  # ROUNDS is a list of flags
nice -n 10 "$PY" -m aeuf bench "$POOL" --regime once --models "$MODELS" \
    --features "${FEATURES:-minilm+stats+model}" --heads "${HEADS:-ensemble,bll}" \
    --rules "${RULES:-dts,deltaucb,infomax,aepo,ultrafeedback}" --initial_rule aepo \
    --seeds "${SEEDS:-3}" --label_mode deterministic ${ROUNDS:-} --output_dir "$OUT" \
    --features_cache "$CACHE"
mkdir -p benchmarks
cp "$OUT/dataset_quality_deterministic.png" "benchmarks/once_$HALF${TAG:-}.png"
echo "summary: $OUT/summary.json, tables: $OUT/report.md, plot: benchmarks/once_$HALF${TAG:-}.png"
