#!/usr/bin/env bash
# Which U²-Net-p features the click decoder needs: three 150-step continuations of the first shipped model
# (hf_iis/checkpoints/lite0) on the extended corpus, identical but for the saliency branch, compared on the
# validation split with paired bootstrap intervals (scripts/compare_checkpoints.py):
#   no_saliency      saliency_encoder: null          (the data alone)
#   maps             saliency_features: [maps]       (U²-Net-p's side-output maps d2..d6)
#   maps_decoder     saliency_features: [maps, decoder] (+ its decoder features: the shipped setting)
# The maps_decoder run is the shipped run's own step 150 (runs/u2netp_hybrid, kept in runs/ablation_keep/ when it
# is trained; pass MAIN_STEP150=<folder> to point elsewhere). Every run keeps the shipped run's schedule
# (optim.max_steps=1200: warm-up 50, cosine) and stops at step 150. About 40 minutes on 2 CPU cores.
set -euo pipefail
PY=.venv/bin/python
CONFIG=configs/u2netp_hybrid.yaml
MAIN_STEP150=${MAIN_STEP150:-runs/ablation_keep/step_00000150}
OUT=${OUT:-outputs/ablation_saliency}
mkdir -p "$OUT"

run_150() {  # name, extra --set overrides...
  local name=$1; shift
  local dir=runs/ablation_$name
  [ -f "$dir/checkpoints/step_00000150/trainer_state.json" ] || \
    $PY scripts/train.py --config $CONFIG --output-dir "$dir" --max-steps 1200 --set save_every=150 \
      --set eval_every=150 --set stop_at_step=150 "$@" --no-progress > "$OUT/train_$name.log" 2>&1
  cp "$dir/log.jsonl" "$OUT/log_$name.jsonl"
}
run_150 no_saliency --set model.saliency_encoder=null
run_150 maps --set "model.saliency_features=[maps]"

$PY scripts/export_checkpoint.py "$MAIN_STEP150" --like runs/u2netp_hybrid/final --out runs/ablation_maps_decoder/step150
$PY scripts/compare_checkpoints.py --baseline hf_iis/checkpoints/lite0 --corpus data_cache/corpus_v2 \
    --candidate no_saliency=runs/ablation_no_saliency/final --candidate maps=runs/ablation_maps/final \
    --candidate maps_decoder=runs/ablation_maps_decoder/step150 --metrics center,random --threads 2 --no-progress \
    --out "$OUT"

# The equal-length control: the no-saliency run continued on the same schedule to step 1200 (the shipped model's
# 800 + 400 steps), against the shipped model itself (~25 min of training at 1.4 s/step + ~12 min of comparison).
$PY scripts/train.py --config $CONFIG --output-dir runs/ablation_no_saliency --max-steps 1200 --resume \
    --set stop_at_step=1200 --set model.saliency_encoder=null --set save_every=150 --set eval_every=300 \
    --no-progress > "$OUT/train_no_saliency_leg2.log" 2>&1
$PY scripts/compare_checkpoints.py --baseline hf_iis/checkpoints/default \
    --candidate no_saliency_1200=runs/ablation_no_saliency/final --corpus data_cache/corpus_v2 \
    --metrics center,random --threads 2 --no-progress --out "$OUT/no_saliency_1200"
