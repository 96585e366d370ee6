r"""Where the output prior's click component loses to the U²-Net-p click-component baseline: U²-Net-p forwards only.

    python scripts/analyze_prior_gap.py --datasets GrabCut,Berkeley --threads 1 --out outputs/eval/prior_gap

Center click, first click only. Each row cuts the component (`saliency_click_prior.click_prior`, 8-connected, the
whole salient mask on a miss) from one way of computing U²-Net-p's saliency map, one factor at a time:

- frame: `padded` (the model input: photo resized to 320 on its long side, top-left in a 320 square, grey padding,
  as the saliency branch sees it) or `stretched` (the photo alone resized to the square, PIL Lanczos, as the
  baseline and `prior_source="stretched"` see it);
- size: the net's input side, 256 (the branch's `saliency_input_size`) or 320 (the size the weights were trained at);
- map: `d0` (the fused full-resolution output) or `d2` (the stride-2 side output the branch keeps), min-max
  normalised, >= 0.5;
- cut: `frame` (at the map's own resolution in its frame, then through the model's output path: the binary
  component bilinearly into the 320 model frame, ±4 logits, back to the photo bilinearly, >= 0.5) or `image` (the map
  resized to the photo first, the component cut there: the baseline's rule).

`padded 256 d2 cut frame` is the shipped branch's path (map 1 of `runs/grown_init`); `stretched 320 d0 cut image`
is the baseline's. Writes prior_gap.json (per-instance IoU) and prior_gap.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def _variants():
    for frame in ("padded", "stretched"):
        for size in (256, 320):
            for name in ("d2", "d0"):
                for cut in ("frame", "image"):
                    yield frame, size, name, cut


def score_instance(inst, net, proc) -> dict[str, float]:
    """IoU (percent) of every variant's component, and of the baseline peer, for one instance's center click."""
    import torch
    import torch.nn.functional as F

    from hf_iis.backbones.stretched_saliency import stretched_input
    from hf_iis.backbones.u2net import U2NET_MEAN, U2NET_STD
    from hf_iis.evaluation import saliency_peers as peers
    from hf_iis.metrics.mask_iou import iou
    from hf_iis.models.signed_click.saliency_click_prior import click_prior
    from hf_iis.utils.clicker import center_click

    image = np.asarray(inst.image)
    height, width = image.shape[:2]
    h, w = proc.resized_size(height, width)
    click = center_click(inst.gt, inst.ignore)
    mean, std = torch.tensor(U2NET_MEAN).view(1, 3, 1, 1), torch.tensor(U2NET_STD).view(1, 3, 1, 1)
    padded = (proc.preprocess(image)["pixel_values"] * 0.5 + 0.5 - mean) / std  # the processor's 0.5 / 0.5

    def score(mask):
        return 100.0 * iou(mask, inst.gt, inst.ignore)

    def min_max(t):
        return (t - t.amin()) / (t.amax() - t.amin()).clamp_min(1e-6)

    def maps(x):  # d0 at the input's resolution, d2 at stride 2
        enc = net.encode(x)
        dec = net.decode(enc)[::-1]
        sides = [net.side[i](f) for i, f in enumerate(dec + [enc[-1]])]
        up = [sides[0]] + [F.interpolate(s, size=sides[0].shape[-2:], mode="bilinear", align_corners=False)
                           for s in sides[1:]]
        return {"d0": torch.sigmoid(net.fuse(torch.cat(up, 1))), "d2": torch.sigmoid(sides[1])}

    def through_output_path(prior_in_frame):  # the model's output prior: ±4 logits, back to the photo
        prob = torch.sigmoid(4.0 * (2.0 * prior_in_frame - 1.0))
        return proc.map_to_original(prob, (height, width), (h, w))[0, 0].numpy() >= 0.5

    out = {"baseline (peer u2netp_component)": score(peers.component_mask(peers.saliency_mask(image), [click]))}
    label = torch.tensor([[1]])
    for frame, size in sorted({(f, s) for f, s, _, _ in _variants()}):
        if frame == "padded":
            x = padded if size == 320 else F.interpolate(padded, size=(size, size), mode="bilinear",
                                                         align_corners=False, antialias=True)
        else:
            x = torch.from_numpy(stretched_input(image, size))
        for name, m in maps(x).items():
            if frame == "padded" and name == "d2":
                m = F.interpolate(m, size=(160, 160), mode="bilinear", align_corners=False)  # as the branch does
            m = min_max(m)
            r = m.shape[-1]
            # the map's own frame: the click in its pixels, the component there
            if frame == "padded":
                point = torch.tensor([[[(click.x + 0.5) * w / width - 0.5, (click.y + 0.5) * h / height - 0.5]]])
                prior = F.interpolate(click_prior(m, point, label, 320), size=(320, 320), mode="bilinear",
                                      align_corners=False)
                photo_map = F.interpolate(m[..., :round(h * r / 320), :round(w * r / 320)], size=(height, width),
                                          mode="bilinear", align_corners=False)
            else:
                point = torch.tensor([[[(click.x + 0.5) * r / width - 0.5, (click.y + 0.5) * r / height - 0.5]]])
                prior = proc.map_to_input(click_prior(m, point, label, r), (h, w))
                photo_map = F.interpolate(m, size=(height, width), mode="bilinear", align_corners=False)
            out[f"{frame} {size} {name} cut frame"] = score(through_output_path(prior))
            out[f"{frame} {size} {name} cut image"] = score(peers.component_mask(photo_map[0, 0].numpy() >= 0.5,
                                                                                  [click]))
    return out


def main(argv: list[str] | None = None) -> int:
    from hf_iis.cli_checks import ArgumentParser

    parser = ArgumentParser(prog="analyze_prior_gap.py", description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="GrabCut,Berkeley")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--limit", type=int, default=None, help="first N instances of each dataset")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    try:
        args = parser.parse_args(argv)
        if args.threads < 1 or (args.limit is not None and args.limit < 1):
            raise ValueError("--threads and --limit must be >= 1")
        if args.out.exists() and not args.out.is_dir():
            raise ValueError(f"--out {args.out} is a file; give a folder")
        from hf_iis.evaluation.benchmarks import load_benchmark

        datasets = {name: load_benchmark(name, args.data_root, limit=args.limit)
                    for name in args.datasets.split(",")}
    except (ValueError, KeyError, FileNotFoundError) as error:
        print(f"analyze_prior_gap.py: error: {error}", file=sys.stderr)
        return 2
    import torch

    from hf_iis.backbones.u2net import u2net_from_onnx
    from hf_iis.backbones.u2net_weights import find_u2net_onnx
    from hf_iis.models.signed_click.image_processing_signed_click import SignedClickImageProcessor

    torch.set_num_threads(args.threads)
    net, proc = u2net_from_onnx(find_u2net_onnx("u2netp"), "u2netp"), SignedClickImageProcessor(size=320)
    results = {}
    with torch.inference_mode():
        for name, instances in datasets.items():
            rows = [score_instance(inst, net, proc) for inst in instances]
            results[name] = {key: [row[key] for row in rows] for key in rows[0]}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "prior_gap.json").write_text(json.dumps(results))
    names = list(results)
    lines = ["| variant | " + " | ".join(f"{n} (N = {len(next(iter(results[n].values())))})" for n in names) + " |",
             "|---|" + "---|" * len(names)]
    for key in results[names[0]]:
        lines.append(f"| {key} | " + " | ".join(f"{np.mean(results[n][key]):.2f}" for n in names) + " |")
    (args.out / "prior_gap.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
