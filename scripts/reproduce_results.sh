#!/usr/bin/env bash
# Regenerates every number and plot in README.md, docs/results.md, docs/results_object_centred.md and the model card,
# with the embedded default model. A few hours on 2 CPU cores (the peers' run on the region benchmarks is the longest).
# Run from the repository root after `make install` (and `make browser` for the Space walkthrough), with the four
# extra datasets extracted (scripts/extract_extra_data.py) and HF_IIS_EXTRA_ROOT pointing at them. The training runs
# are not rerun here: see model_cards/u2netp_run/README.md.
set -euo pipefail
PY=.venv/bin/python
MODEL=hf_iis/checkpoints/default
LITE=hf_iis/checkpoints/lite0
: "${HF_IIS_EXTRA_ROOT:?set HF_IIS_EXTRA_ROOT to the folder written by scripts/extract_extra_data.py}"
REGIONS=CCP-parts,CCP-person,CamVid-regions

# the training corpus's validation split (compare_checkpoints and analyze_scaling read it)
[ -f data_cache/corpus_v2/dataset_info.json ] || $PY scripts/build_datasets.py --data-root ../shared/data \
    --extra-root "$HF_IIS_EXTRA_ROOT" --out data_cache/corpus_v2

# checkpoint choice, on validation only: the first shipped model vs the two stages of the new one
$PY scripts/compare_checkpoints.py --baseline $LITE --corpus data_cache/corpus_v2 \
    --candidate stage1=runs/u2netp_hybrid/step800 --candidate stage2_prior=$MODEL --threads 2 --no-progress \
    --out outputs/compare/u2netp || echo "(stage 1 folder missing: it lives in the training run, not in the repo)"

# latency, new default beside the first model
mkdir -p outputs/bench
$PY scripts/bench_latency.py --model $MODEL --threads 2 --out outputs/bench/latency_default.json | tee outputs/bench/latency_default.log
$PY scripts/bench_latency.py --model $LITE --threads 2 --out outputs/bench/latency_lite0.json | tee outputs/bench/latency_lite0.log

# which U²-Net-p features matter (the ablation, ~1 h 15 min on 2 cores) and the scaling study on validation
bash scripts/ablation_saliency.sh
$PY scripts/analyze_scaling.py --model $MODEL --corpus data_cache/corpus_v2 --limit 100 --triangulation 4,16 \
    --threads 1 --out outputs/analysis/default_v2_100

# peers alone on all five benchmarks (saliency baselines, OpenCV GrabCut), NoC and random clicks on fixed subsets
$PY scripts/evaluate.py --model none --datasets GrabCut,Berkeley,$REGIONS \
    --peers u2netp_zero,u2netp_component,u2net_zero,u2net_component,grabcut --protocols noc,miou1,random \
    --noc-limit 200 --random-limit 200 --threads 1 --no-progress --out outputs/eval/peers_all
# the model on the object benchmarks, with the lighter saliency peers and the first model in the same run
$PY scripts/evaluate.py --model $MODEL --model $LITE --datasets GrabCut,Berkeley --protocols noc,miou1,random \
    --tta 1 --peers u2netp_component,grabcut --threads 1 --no-progress --out outputs/eval/main
# test-time augmentation
$PY scripts/evaluate.py --model $MODEL --datasets GrabCut,Berkeley --protocols miou1,random --tta 1,2,4 \
    --peers none --overlays 0 --threads 1 --no-progress --out outputs/eval/scaled
# the region benchmarks (NoC and random clicks on the same fixed subsets as the peers)
$PY scripts/evaluate.py --model $MODEL --model $LITE --datasets $REGIONS --protocols noc,miou1,random \
    --noc-limit 200 --random-limit 200 --tta 1 --peers none --overlays 2 --threads 1 --no-progress \
    --out outputs/eval/regions
$PY scripts/object_centred_table.py outputs/eval/peers_all/results.json outputs/eval/main/results.json \
    outputs/eval/regions/results.json > outputs/eval/object_centred.md

# corrective clicks: zoom-in views and guided upsampling, chosen on validation, then on the benchmarks
# (docs/results_zoom.md)
$PY scripts/evaluate.py --model $MODEL --datasets validation:data_cache/corpus_v2 --protocols noc --zoom-in off,on,auto \
    --noc-limit 200 --tta 1 --peers none --overlays 0 --threads 1 --no-progress --out outputs/eval/zoom_validation
$PY scripts/evaluate.py --model $MODEL --datasets validation:data_cache/corpus_v2 --protocols miou1 \
    --upsample bilinear,guided --tta 1 --peers none --overlays 0 --threads 1 --no-progress \
    --out outputs/eval/upsample_validation
$PY scripts/evaluate.py --model $MODEL --datasets GrabCut,Berkeley --protocols noc,miou1 --tta 1,2 --zoom-in off,auto \
    --upsample bilinear,guided --peers u2netp_component,grabcut --overlays 0 --threads 1 --no-progress \
    --out outputs/eval/zoom_benchmarks
$PY scripts/zoom_figure.py --results outputs/eval/zoom_benchmarks/instances.json --dataset Berkeley --clicks 5 \
    --out docs/figures/zoom_thin_object.jpg
for d in GrabCut Berkeley; do cp outputs/eval/zoom_benchmarks/plots/miou_vs_clicks_$d.png docs/figures/zoom_miou_vs_clicks_$d.png; done

# the Space: load test and a walk through it in chromium with screenshots
$PY scripts/load_space.py --model $MODEL --clients 8 --requests 10
$PY scripts/space_walkthrough.py --model $MODEL --out docs/space

cp outputs/eval/main/plots/miou_vs_clicks_{GrabCut,Berkeley}.png docs/figures/
$PY -c "from PIL import Image; Image.open('outputs/eval/main/plots/overlays_GrabCut.png').convert('RGB').save('docs/figures/overlays_GrabCut.jpg', quality=82)"
$PY scripts/make_model_card.py --eval outputs/eval/main/results.json --eval outputs/eval/scaled/results.json \
    --eval outputs/eval/regions/results.json \
    --object-centred outputs/eval/object_centred.md --precision outputs/eval/zoom_benchmarks/results.json --run "model_cards/u2netp_run/stage1=2 CPU cores (x86_64)" \
    --run "model_cards/u2netp_run/stage2=2 CPU cores (x86_64)" \
    --analysis outputs/analysis/default_v2_100/analysis.md \
    --out model_cards/default.md --copy-to $MODEL/README.md
