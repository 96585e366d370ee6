"""Zero-shot whole-image segmentation from the student's feature space: an ordered list of masks, no clicks.

Every pixel x of the auxiliary grid Y (stride `config.triangulation_stride`) proposes its own mask
m_x = {z : f+(x)(z) ≥ 0.5} on the stride-s grid, from one matrix F+[x, z] = σ f+(x)(z) (`pairwise_logits`). Each is
scored by
    confidence(x)  = mean_{z ∈ m_x} F+[x, z]                     (how sure the mask is: the teacher protocol's score)
    consistency(x) = mean_{y ∈ m_x ∩ Y} F+[y, x]                 (do the mask's own pixels select x back?)
    score(x)       = confidence(x) · consistency(x)
and the masks are taken greedily, best score first, skipping any x already covered by an accepted mask (x ∈ m_x'
for an earlier x'), until every valid candidate is covered or `max_proposals` are taken: an approximate partition of
the image, ordered by score. Masks are upsampled in logit space to the original image, thresholded at 0.5, and
deduplicated by the protocol's mask NMS (`hf_iis.evaluation.proposals.mask_nms`) so the result is scored exactly as
the teacher's click-sampling proposals are (`run_feature_proposals` returns the same `ProposalRun`s).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .proposals import Proposal, ProposalRun, dedupe_masks, mask_nms


@torch.inference_mode()
def feature_proposals(predictor, image: np.ndarray, max_proposals: int = 96, nms_iou: float = 0.7,
                      min_cells: int = 2, block_rows: int = 256) -> list[Proposal]:
    """Ordered proposals of `image` from a `SignedClickStudentPredictor` (see the module docstring)."""
    from ..scaling.tta import resolve_views

    if max_proposals < 1:
        raise ValueError(f"max_proposals must be >= 1, got {max_proposals}")
    predictor.set_image(image)
    model, stride = predictor.model, predictor.stride
    emb = predictor.view_embeddings(resolve_views(1))["identity"]
    h, w = emb.grid_size
    valid = (F.avg_pool2d(predictor._valid.float(), stride)[0, 0] > 0.5).reshape(-1)
    step = model.config.triangulation_stride // stride
    rows = torch.arange(step // 2, h, step)
    cols = torch.arange(step // 2, w, step)
    aux = (rows[:, None] * w + cols[None, :]).reshape(-1).to(valid.device)
    aux = aux[valid[aux]]
    everything = torch.arange(h * w, device=aux.device)
    positive = torch.cat([torch.sigmoid(model.pairwise_logits(emb, aux[i : i + block_rows], everything, 1))
                          for i in range(0, aux.numel(), block_rows)])  # (|Y|, h·w)
    masks = (positive >= 0.5) & valid[None]
    area = masks.sum(1)
    confidence = (positive * masks).sum(1) / area.clamp_min(1)
    on_y = masks[:, aux].float()  # m_x restricted to Y, (|Y|, |Y|)
    back = positive[:, aux]  # back[y, x] = F+[y, x]
    consistency = (on_y * back.T).sum(1) / on_y.sum(1).clamp_min(1)
    score = torch.where(area >= min_cells, confidence * consistency, torch.full_like(confidence, -1.0))
    covered = torch.zeros(aux.numel(), dtype=torch.bool, device=aux.device)
    chosen: list[int] = []
    for i in torch.argsort(score, descending=True).tolist():
        if score[i] < 0 or len(chosen) >= max_proposals:
            break
        if covered[i]:
            continue
        chosen.append(i)
        covered |= masks[i, aux]
        covered[i] = True
    if not chosen:
        return []
    logits = model.pairwise_logits(emb, aux[chosen], everything, 1).reshape(len(chosen), h, w)
    up = F.interpolate(logits[:, None], size=(h * stride, w * stride), mode="bilinear", align_corners=False)
    probs = predictor.processor.map_to_original(torch.sigmoid(up), predictor.original_size, predictor.reshaped_size)
    probs = probs[:, 0].cpu().numpy()
    (height, width), (rh, rw) = predictor.original_size, predictor.reshaped_size
    props = []
    for k, i in enumerate(chosen):  # the seed pixel x, from grid cell to original pixels (as points_to_input, inverted)
        index = int(aux[i])
        x_in, y_in = (index % w + 0.5) * stride - 0.5, (index // w + 0.5) * stride - 0.5
        point = (float(np.clip((x_in + 0.5) * width / rw - 0.5, 0, width - 1)),
                 float(np.clip((y_in + 0.5) * height / rh - 0.5, 0, height - 1)))
        props.append(Proposal(probs[k] > 0.5, float(score[i]), point))
    props = [p for p in props if p.mask.any()]
    keep = mask_nms([p.mask for p in props], [p.score for p in props], nms_iou)
    return [props[i] for i in keep]


def run_feature_proposals(predictor, samples: Sequence, max_proposals: int = 96, nms_iou: float = 0.7,
                          gt_dedupe_iou: float = 0.9, progress: bool = True) -> list[ProposalRun]:
    """Average-recall curves of `feature_proposals` on multi-mask samples, as `run_proposals` computes them for
    click sampling (gt deduplicated at `gt_dedupe_iou`, curves `max_proposals` long, headline at n = #gt)."""
    from tqdm import tqdm

    from .metrics import average_recall_curve

    runs = []
    for s in tqdm(samples, desc="feature proposals", disable=not progress, leave=False):
        start = time.perf_counter()
        props = feature_proposals(predictor, s.image, max_proposals, nms_iou)
        seconds = time.perf_counter() - start
        gts = dedupe_masks(list(s.masks), gt_dedupe_iou)
        curve = average_recall_curve(gts, [p.mask for p in props], max_proposals, s.ignore)
        runs.append(ProposalRun(s.id, len(gts), len(props), [float(v) for v in curve],
                                float(curve[min(len(gts), len(curve)) - 1]), seconds))
    return runs
