#!/usr/bin/env bash
# The shipped student (hf_iis/checkpoints/student) from its teacher, and every number of its model card and of
# docs/results_student.md section 8. About 3.5 h on 2 CPU cores: the teacher-target cache ~80 min on one thread, the
# distillation ~75 min, the evaluations ~30 min. Each stage resumes or is skipped when its output exists.
# Run from the repository root after `make install`, with the four extra datasets extracted
# (scripts/extract_extra_data.py) and HF_IIS_EXTRA_ROOT pointing at them.
set -euo pipefail
PY=.venv/bin/python
TEACHER=hf_iis/checkpoints/default  # the shipped student was distilled from, and measured beside, the stage-2 default (git 89b3903)
STUDENT=hf_iis/checkpoints/student
RUN=runs/student_v2
: "${HF_IIS_EXTRA_ROOT:?set HF_IIS_EXTRA_ROOT to the folder written by scripts/extract_extra_data.py}"

# images: the corpus's train split (its validation split is never read) and CCP's unannotated photos
[ -f data_cache/corpus_v2/dataset_info.json ] || $PY scripts/build_datasets.py --data-root ../shared/data \
    --extra-root "$HF_IIS_EXTRA_ROOT" --out data_cache/corpus_v2
# the teacher's tta=4 maps for 16 signed clicks and 4 click sequences per image (resumable: reruns skip done shards)
$PY scripts/distill.py cache --teacher $TEACHER --corpus data_cache/corpus_v2 \
    --image-dir "$HF_IIS_EXTRA_ROOT/CCP/photos" --out data_cache/distill_v2 --images 2400 --clicks 16 --sequences 4 \
    --tta 4 --threads 1
# distillation (configs/distill_student.yaml: 3,000 steps, checkpoints every 5 min; --resume continues a killed run)
if [ ! -f $RUN/final/model.safetensors ]; then
    RESUME=""
    [ -d $RUN/checkpoints ] && RESUME="--resume"
    $PY scripts/distill.py train --config configs/distill_student.yaml --output-dir $RUN --set num_threads=1 $RESUME
fi
[ -f $STUDENT/model.safetensors ] || { mkdir -p $STUDENT && cp $RUN/final/{config.json,model.safetensors,preprocessor_config.json} $STUDENT/; }
mkdir -p model_cards/student_v2_run
cp $RUN/config.yaml $RUN/log.jsonl model_cards/student_v2_run/
cp data_cache/distill_v2/cache_info.json model_cards/student_v2_run/

# the student against its teacher on the corpus's validation split (paired intervals)
$PY scripts/compare_checkpoints.py --baseline $TEACHER --candidate student=$STUDENT --corpus data_cache/corpus_v2 \
    --metrics "center,center tta=4,random,center triangulation" --threads 2 --no-progress \
    --out outputs/compare/student_v2
# the click benchmarks, student and teacher in one run (plain and tta=4)
$PY scripts/evaluate.py --model $STUDENT --model $TEACHER --datasets GrabCut,Berkeley --protocols noc,miou1,random \
    --tta 1,4 --peers none --overlays 2 --threads 2 --no-progress --out outputs/eval/student_v2
# feature-space triangulation (exact over all auxiliary pixels) against the student's direct estimate
$PY scripts/evaluate.py --model $STUDENT --datasets GrabCut,Berkeley --protocols miou1,random --tta 1,4 \
    --triangulation 0,1 --sampling uniform,foreground --peers none --overlays 0 --threads 2 --no-progress \
    --out outputs/eval/student_v2_triangulation
# latency, each model alone on the cores
mkdir -p outputs/bench
$PY scripts/bench_latency.py --model $STUDENT --threads 2 --out outputs/bench/latency_student_v2.json
$PY scripts/bench_latency.py --model $TEACHER --threads 2 --out outputs/bench/latency_default.json
# zero-shot proposals on validation images: the student's feature partition beside both click-sampling protocols
$PY scripts/evaluate_student.py --student $STUDENT --teacher $TEACHER --corpus data_cache/corpus_v2 --limit 20 \
    --no-progress --out outputs/eval/student_v2_proposals
# the model card, from the files above
$PY scripts/make_student_card.py --model $STUDENT --run model_cards/student_v2_run \
    --eval outputs/eval/student_v2/results.json --compare outputs/compare/student_v2/compare.md \
    --latency outputs/bench/latency_student_v2.json --latency outputs/bench/latency_default.json \
    --proposals outputs/eval/student_v2_proposals/table.md --out model_cards/student.md --copy-to $STUDENT/README.md
