#!/usr/bin/env bash
# Stage 2 of the default model on one GPU inside a wall-clock budget (configs/gpu_finetune.yaml).
#
# A short probe (PROBE_STEPS, default 60) measures seconds per step on this machine (data loading included); the real run then gets
# max_steps = BUDGET_S / (s/step), so the cosine schedule completes instead of being cut off by a timer.
#
#   DATA=data_cache/corpus BUDGET_S=360 OUT_DIR=runs/gpu_finetune scripts/gpu_finetune.sh
#
# Needs stage 1's output at runs/default/final (python scripts/train.py --config configs/default.yaml), or
# INIT=<a save_pretrained folder>, e.g. INIT=hf_iis/checkpoints/default to continue from the shipped stage-1 model.
# EXTRA_ARGS adds train.py flags (a CPU smoke test: EXTRA_ARGS="--set data.batch_size=2 --set optim.mixed_precision=no").
set -euo pipefail
DATA=${DATA:-data_cache/corpus}
BUDGET_S=${BUDGET_S:-360}
OUT_DIR=${OUT_DIR:-runs/gpu_finetune}
INIT=${INIT:-runs/default/final}
PY=${PYTHON:-python}
PROBE_STEPS=${PROBE_STEPS:-60}
PROBE_DIR=$(mktemp -d)

common=(scripts/train.py --config configs/gpu_finetune.yaml --data "$DATA" --set "model.init_from=$INIT" --no-progress ${EXTRA_ARGS:-})
echo "[gpu_finetune] probe: $PROBE_STEPS steps"
"$PY" "${common[@]}" --output-dir "$PROBE_DIR" --max-steps "$PROBE_STEPS" --set eval_every=0 --set val_images=0 \
  --set optim.warmup_steps=10
steps=$("$PY" - "$PROBE_DIR/log.jsonl" "$BUDGET_S" "$PROBE_STEPS" <<'PYEOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
t = {r["step"]: r["time"] for r in rows if "sec_per_step" in r}
n = int(sys.argv[3])
rate = (t[n] - t[n // 2]) / (n - n // 2)  # steady state: the first steps pay for worker start-up and kernel selection
print(max(100, int(float(sys.argv[2]) / rate)))
print(f"[gpu_finetune] {rate:.3f} s/step", file=sys.stderr)
PYEOF
)
echo "[gpu_finetune] training $steps steps into $OUT_DIR"
"$PY" "${common[@]}" --output-dir "$OUT_DIR" --max-steps "$steps" --set "eval_every=$(( steps / 4 ))"
rm -rf "$PROBE_DIR"
