#!/usr/bin/env bash
# Regenerates every number and plot in README.md, docs/results.md, docs/results_object_centred.md and the model card,
# with the embedded default model (docs/results_v5.md, _v4, _v3 and _v2 keep the previous defaults', with their commands). A few hours on 2 CPU cores (the peers' run on the region benchmarks is the longest).
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

# The checkpoint choices were made on validation against the previous weights, which are no longer at $MODEL: the
# stage-2 model against the first one (docs/results_v2.md, model_cards/u2netp_run) and the crop-trained decoder
# (stage 3, the default now) against stage 2 (docs/results_zoom.md § 3). To rerun them, put the previous weights in a
# folder (`git show 89b3903:hf_iis/checkpoints/default/model.safetensors`, with its config.json) and run the commands
# printed on those pages. The U²-Net-p ablation (scripts/ablation_saliency.sh) trained its own pair of stage-2 models;
# it is in docs/results_v2.md and is not rerun for the crop fine-tune.

# latency (2 threads, alone on the machine), the default beside the first model
mkdir -p outputs/bench
$PY scripts/bench_latency.py --model $MODEL --threads 2 --out outputs/bench/latency_default.json | tee outputs/bench/latency_default.log
$PY scripts/bench_latency.py --model $LITE --threads 2 --out outputs/bench/latency_lite0.json | tee outputs/bench/latency_lite0.log

# peers alone on all five benchmarks (saliency baselines, OpenCV GrabCut), NoC and random clicks on fixed subsets
# (docs/results_object_centred.md; they do not depend on the model)
$PY scripts/evaluate.py --model none --datasets GrabCut,Berkeley,$REGIONS \
    --peers u2netp_zero,u2netp_component,u2net_zero,u2net_component,grabcut --protocols noc,miou1,random \
    --noc-limit 200 --random-limit 200 --threads 1 --no-progress --out outputs/eval/peers_all

# docs/results.md: the default (stage 5 + the frozen-statistics leg 5; stage 5's page is docs/results_v5.md) on the
# object benchmarks in two runs split by upsampling (each with zoom off and auto; the saliency click components and OpenCV GrabCut in the first), so that the two fit
# on the 2 cores side by side; its first-click choice among its maps on every benchmark (the region benchmarks' first
# click, bilinear). The region run with the product's defaults and its click loop (NoC on subsets of 100, 48 min) was
# last run on stage 4 (docs/results_v4.md § 3, outputs/eval/v4/regions); triangulation on stage 3 (results_v3.md § 2).
$PY scripts/evaluate.py --model $MODEL --datasets GrabCut,Berkeley --protocols noc,miou1,random --tta 1 \
    --zoom-in off,auto --upsample bilinear --peers u2netp_component,u2net_component,grabcut --overlays 2 \
    --threads 1 --no-progress --out outputs/eval/v6/benchmarks_bilinear
$PY scripts/evaluate.py --model $MODEL --datasets GrabCut,Berkeley --protocols noc,miou1,random --tta 1 \
    --zoom-in off,auto --upsample guided --peers none --overlays 2 --threads 1 --no-progress \
    --out outputs/eval/v6/benchmarks_guided
$PY scripts/evaluate_multimask.py --model $MODEL --datasets GrabCut,Berkeley,$REGIONS --threads 1 --no-progress \
    --out outputs/eval/v6/multimask
for run in benchmarks_bilinear benchmarks_guided; do
    $PY scripts/summary_table.py outputs/eval/v6/$run/results.json > outputs/eval/v6/$run/summary.md
done
$PY scripts/paired_rows.py outputs/eval/v6/benchmarks_bilinear outputs/eval/v6/benchmarks_guided \
    --baseline "default [tta=1]" --metric NoC@90 > outputs/eval/v6/paired_noc90.md
$PY scripts/zoom_figure.py --results outputs/eval/v6/benchmarks_bilinear/instances.json --dataset Berkeley --clicks 5 \
    --out docs/figures/thin_object.jpg
for d in GrabCut Berkeley; do
    cp outputs/eval/v6/benchmarks_bilinear/plots/miou_vs_clicks_$d.png docs/figures/miou_vs_clicks_$d.png  # with the baselines
done
$PY -c "from PIL import Image; im = Image.open('outputs/eval/v6/benchmarks_bilinear/plots/overlays_GrabCut.png').convert('RGB'); im.resize((im.width // 2, im.height // 2), Image.LANCZOS).save('docs/figures/overlays_GrabCut.jpg', quality=82)"

# docs/results_zoom.md § 1: the corrective-click settings chosen on validation (with the stage-2 decoder, before the
# crop fine-tune: run them with that model's weights, see the page)
$PY scripts/evaluate.py --model $MODEL --datasets validation:data_cache/corpus_v2 --protocols noc --zoom-in off,on,auto \
    --noc-limit 200 --tta 1 --peers none --overlays 0 --threads 1 --no-progress --out outputs/eval/zoom_validation
$PY scripts/evaluate.py --model $MODEL --datasets validation:data_cache/corpus_v2 --protocols miou1 \
    --upsample bilinear,guided --tta 1 --peers none --overlays 0 --threads 1 --no-progress \
    --out outputs/eval/upsample_validation

# docs/results_v4.md § 6 (run on stage 4): corrective clicks keep the first click's map against re-ranking every click set
for RULE in first_click click_set; do
  $PY scripts/evaluate.py --model $MODEL --datasets validation:data_cache/corpus_v2 --protocols noc --noc-limit 200 \
      --tta 1 --zoom-in auto --upsample guided --map-choice $RULE --peers none --overlays 0 --threads 1 --no-progress \
      --out outputs/eval/mapchoice/$RULE
done
$PY scripts/paired_rows.py outputs/eval/mapchoice/click_set outputs/eval/mapchoice/first_click \
    --baseline "default [tta=1, zoom=auto, upsample=guided, maps=click_set]" --metric NoC@90
$PY scripts/evaluate.py --model $MODEL --datasets GrabCut,Berkeley --protocols noc --tta 1 --zoom-in auto \
    --upsample guided --peers none --overlays 0 --threads 1 --no-progress --out outputs/eval/v4/mapchoice_bench/defaults  # stage 4
$PY scripts/evaluate.py --model $MODEL --datasets GrabCut,Berkeley --protocols noc --tta 1 --zoom-in off \
    --upsample bilinear --peers none --overlays 0 --threads 1 --no-progress --out outputs/eval/v4/mapchoice_bench/plain

# the Space: load test and a walk through it in chromium with screenshots
$PY scripts/load_space.py --model $MODEL --clients 8 --requests 10
$PY scripts/space_walkthrough.py --model $MODEL --out docs/space

$PY scripts/make_model_card.py --eval outputs/eval/v6/benchmarks_guided/results.json \
    --eval outputs/eval/v6/benchmarks_bilinear/results.json \
    --run "model_cards/u2netp_run/stage1=2 CPU cores (x86_64)" \
    --run "model_cards/u2netp_run/stage2=2 CPU cores (x86_64)" --run "model_cards/crops_run=2 CPU cores (x86_64)" \
    --run "model_cards/sframe_run=2 CPU cores (x86_64)" --run "model_cards/e2e_run=2 CPU cores (x86_64)" \
    --run "model_cards/e2e_run5=2 CPU cores (x86_64)" \
    --out model_cards/default.md --copy-to $MODEL/README.md
