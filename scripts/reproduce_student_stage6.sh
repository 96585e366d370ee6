#!/usr/bin/env bash
# The student distilled from the stage-6 default (issue 24's student v2), and every number of its section in
# docs/results_student.md (section 10) and of its model card. About 2 h on 2 CPU cores: the teacher-target cache
# ~60 min with two builders side by side, the distillation ~30 min on two threads, the learned click rule ~10 min,
# the evaluations ~20 min. Each stage resumes or is skipped when its output exists.
# Run from the repository root after `make install`, with the four extra datasets extracted
# (scripts/extract_extra_data.py) and HF_IIS_EXTRA_ROOT pointing at them.
set -euo pipefail
PY=.venv/bin/python
TEACHER=hf_iis/checkpoints/default   # stage 6 (sha256 4f83cce19d9c..., git cf5e92d) when this ran
PREVIOUS=runs/student_v2_shipped     # the student it continues: hf_iis/checkpoints/student at git d69b81a
RUN=runs/student_stage6
RULE=runs/student_stage6_rule
: "${HF_IIS_EXTRA_ROOT:?set HF_IIS_EXTRA_ROOT to the folder written by scripts/extract_extra_data.py}"

[ -f data_cache/corpus_v2/dataset_info.json ] || $PY scripts/build_datasets.py --data-root ../shared/data \
    --extra-root "$HF_IIS_EXTRA_ROOT" --out data_cache/corpus_v2
if [ ! -f $PREVIOUS/model.safetensors ]; then
    mkdir -p $PREVIOUS
    for f in config.json model.safetensors preprocessor_config.json; do
        git show d69b81a:hf_iis/checkpoints/student/$f > $PREVIOUS/$f
    done
fi
# teacher targets: 2,400 images (corpus train split + CCP's unannotated photos), 8 single clicks and 4 click sequences
# each at tta=2, the sequences also zoomed; two builders share the folder (resumable: reruns skip done shards)
for part in 0/2 1/2; do
    $PY scripts/distill.py cache --teacher $TEACHER --corpus data_cache/corpus_v2 \
        --image-dir "$HF_IIS_EXTRA_ROOT/CCP/photos" --out data_cache/distill_v4 --images 2400 --clicks 8 \
        --sequences 4 --tta 2 --zoom-in auto --threads 1 --part $part --no-progress &
done
wait
# distillation (configs/distill_student_stage6.yaml: 1,000 steps from the previous student; --resume continues)
if [ ! -f $RUN/final/model.safetensors ]; then
    RESUME=""
    [ -d $RUN/checkpoints ] && RESUME="--resume"
    $PY scripts/distill.py train --config configs/distill_student_stage6.yaml --set num_threads=2 $RESUME
fi
# the learned multi-click rule on the same cache (section 9's v2 recipe: sequences extended with repeats to 20)
[ -f $RULE/final/model.safetensors ] || $PY scripts/distill.py train-rule --student $RUN/final \
    --cache data_cache/distill_v4 --out $RULE --steps 600 --batch-images 8 --repeat-prob 0.5 --threads 1 --no-progress
mkdir -p model_cards/student_stage6_run
cp $RUN/config.yaml $RUN/log.jsonl data_cache/distill_v4/cache_info.json model_cards/student_stage6_run/
cp $RULE/log.jsonl model_cards/student_stage6_run/rule_log.jsonl
# the row labels are folder names: copy the two candidates to distinct names
rm -rf runs/student_s6 runs/student_s6_rule
cp -r $RUN/final runs/student_s6 && cp -r $RULE/final runs/student_s6_rule
# validation (never a benchmark): the one-click answer against the previous student, per source, and the teacher
$PY scripts/compare_checkpoints.py --baseline $PREVIOUS --candidate student_stage6=runs/student_s6 \
    --corpus data_cache/corpus_v2 --metrics "center,random" --by-source --threads 1 --no-progress \
    --out outputs/compare/student_stage6_vs_previous
$PY scripts/compare_checkpoints.py --baseline $TEACHER --candidate student_stage6=runs/student_s6 \
    --candidate student_previous=$PREVIOUS --corpus data_cache/corpus_v2 --metrics "center,random" --threads 1 \
    --no-progress --out outputs/compare/student_stage6
# validation click loop (200 masks): naive Bayes against the learned rule, and the previous student
$PY scripts/evaluate.py --model runs/student_s6 --model runs/student_s6_rule --model $PREVIOUS \
    --datasets validation:data_cache/corpus_v2 --protocols noc --noc-limit 200 --tta 1 --peers none --overlays 0 \
    --threads 1 --no-progress --out outputs/eval/student_stage6_validation
$PY scripts/paired_rows.py outputs/eval/student_stage6_validation --baseline "student_v2_shipped [tta=1]" \
    --metric NoC@90
# the click benchmarks: the students and the teacher in one run, then the learned-rule student
$PY scripts/evaluate.py --model runs/student_s6 --model $PREVIOUS --model $TEACHER --datasets GrabCut,Berkeley \
    --protocols noc,miou1,random --tta 1 --zoom-in off --upsample bilinear --peers none --overlays 2 --threads 1 \
    --no-progress --out outputs/eval/student_stage6
$PY scripts/evaluate.py --model runs/student_s6_rule --datasets GrabCut,Berkeley --protocols noc,miou1,random \
    --tta 1 --zoom-in off --upsample bilinear --peers none --overlays 2 --threads 1 --no-progress \
    --out outputs/eval/student_stage6_rule
# leg 2: 1,000 more steps from leg 1 at half the rates (resumable), against the previous student on validation
if [ ! -f runs/student_stage6_leg2/final/model.safetensors ]; then
    RESUME=""
    [ -d runs/student_stage6_leg2/checkpoints ] && RESUME="--resume"
    $PY scripts/distill.py train --config configs/distill_student_stage6_leg2.yaml --set num_threads=1 $RESUME
fi
rm -rf runs/student_s6_leg2 && cp -r runs/student_stage6_leg2/final runs/student_s6_leg2
$PY scripts/compare_checkpoints.py --baseline $PREVIOUS --candidate student_stage6=runs/student_s6 \
    --candidate student_stage6_leg2=runs/student_s6_leg2 --corpus data_cache/corpus_v2 --metrics "center,random" \
    --by-source --threads 2 --no-progress --out outputs/compare/student_stage6_leg2
