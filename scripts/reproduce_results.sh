#!/usr/bin/env bash
# Regenerates every number and plot in README.md and the model card, in order, with the embedded default model.
# About 40 minutes on 2 CPU cores. Run from the repository root after `make install`.
set -euo pipefail
PY=.venv/bin/python
MODEL=hf_iis/checkpoints/default

# core latency (issue: first click, batched decodes, tta x triangulation grid)
$PY scripts/bench_latency.py --model $MODEL --repeats 5 --out outputs/bench/latency.json | tee outputs/bench_latency.txt

# why scaling helps or not, on the validation split (equivariance, calibration, triangulation blend)
$PY scripts/analyze_scaling.py --model $MODEL --triangulation 4,16 --out outputs/analysis/default

# benchmarks: NoC / mIoU@k / random clicks, with the classical peers on the same clicks
$PY scripts/evaluate.py --model $MODEL --datasets GrabCut,Berkeley --protocols noc,miou1,random \
    --tta 1 --triangulation 0 --peers grabcut,random_walker --threads 1 --no-progress --out outputs/eval/main &
# the same model with inference-time scaling (mIoU@1 center and random)
$PY scripts/evaluate.py --model $MODEL --datasets GrabCut,Berkeley --protocols miou1,random \
    --tta 1,2,4,8 --triangulation 0 --peers none --overlays 0 --threads 1 --no-progress \
    --out outputs/eval/scaled
# the scaling study (grid and compute) and the seed's averaged single clicks vs multi-click, on subsets
$PY scripts/evaluate.py --model $MODEL --datasets GrabCut,Berkeley --protocols scaling --scaling-limit 8 --scaling-combos 2x4,4x16,8x16,4x16:foreground \
    --peers none --overlays 0 --threads 1 --no-progress --out outputs/eval/scaling
wait

$PY scripts/make_model_card.py --eval outputs/eval/main/results.json --eval outputs/eval/scaled/results.json \
    --analysis outputs/analysis/default/analysis.md --run "model_cards/default_run/stage1=2 CPU cores (x86_64)" \
    --run "model_cards/default_run/stage2=1 NVIDIA H200 (16 CPU cores for data loading)" --out model_cards/default.md --copy-to $MODEL/README.md
