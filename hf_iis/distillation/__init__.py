"""Distillation of the signed-click teacher into the feature-space student.

    teacher_targets.py  teacher maps for random signed clicks (and short click sequences) at its best scaling
    sources.py          unlabelled images: a corpus's train split (masks ignored) and image folders
    cache.py            the (image, clicks, teacher maps) corpus: `datasets` parquet shards, uint8 maps at stride s
    batches.py          cache rows -> student batches, with exact D4 views of image, clicks and maps together
    loss.py             the distillation loss between student logits and teacher probabilities on the stride grid
    trainer.py          the accelerate loop: resumable checkpoints, a loadable `final/` folder
    rule_training.py    the student's learned multi-click rule alone, on the cache, the rest of the student frozen

`scripts/distill.py cache | train | train-rule ...` drive it; docs/results_student.md has the commands.
"""
