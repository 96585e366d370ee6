"""Training of the signed-click segmenter on the Hugging Face stack (accelerate + datasets + kornia).

This subpackage is the only place that imports accelerate, datasets and kornia; `import hf_iis` never imports it.

    config.py    TrainingConfig dataclasses (augmentation: data.augment), loaded from YAML (old flat keys too) and
                 overridden from the command line
    sampling.py  the seed's click sampler: positives uniform in the mask, negatives uniform outside it
    augment.py   crop / rescale, D4 + scale views, photometric jitter; clicks sampled in the augmented frame
    collate.py   the lazy dataset transform and the collate that turns images into signed click sets
    data.py      corpus loading (map-style or streaming) and the per-rank, resumable batch order
    factory.py   what a config builds: model (loss weights into its config), image processor, optimizer, transform
    trainer.py   the Trainer on accelerate: resume / run_epoch / step / validate / save (JSONL logging)
    loop.py      `train(cfg)`, the public entry point (a thin wrapper around the Trainer)
"""
