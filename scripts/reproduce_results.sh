#!/usr/bin/env bash
# Regenerates every number and plot in README.md and the model card, in order, with the embedded default model.
# About an hour on 2 CPU cores. Run from the repository root after `make install` (and `make browser` for the
# Space walkthrough). The two training stages are not rerun here: see model_cards/default_run/README.md.
set -euo pipefail
PY=.venv/bin/python
MODEL=hf_iis/checkpoints/default

# the training corpus's validation split (analyze_scaling reads it): built once, from ../shared/data
[ -f data_cache/corpus/dataset_info.json ] || $PY scripts/build_datasets.py --data-root ../shared/data --out data_cache/corpus

# core latency (issue: first click, batched decodes, tta x triangulation grid)
mkdir -p outputs/bench
$PY scripts/bench_latency.py --model $MODEL --repeats 9 --out outputs/bench/latency.json | tee outputs/bench_latency.txt
# the Space: load test (8 clients x 10 requests) and a walk through it in chromium with screenshots
$PY scripts/load_space.py --model $MODEL --clients 8 --requests 10
$PY scripts/space_walkthrough.py --model $MODEL --out docs/space

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

cp outputs/eval/main/plots/miou_vs_clicks_{GrabCut,Berkeley}.png outputs/eval/scaling/plots/miou_vs_seconds_{GrabCut,Berkeley}.png docs/figures/
$PY -c "from PIL import Image; Image.open('outputs/eval/main/plots/overlays_GrabCut.png').convert('RGB').save('docs/figures/overlays_GrabCut.jpg', quality=82)"
$PY scripts/make_model_card.py --eval outputs/eval/main/results.json --eval outputs/eval/scaled/results.json \
    --eval outputs/eval/scaling/results.json \
    --analysis outputs/analysis/default/analysis.md --run "model_cards/default_run/stage1=2 CPU cores (x86_64)" \
    --run "model_cards/default_run/stage2=1 NVIDIA H200 (16 CPU cores for data loading)" --out model_cards/default.md --copy-to $MODEL/README.md
