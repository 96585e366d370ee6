"""Retrain a multi-map model's IoU head alone, on which answer a click is taken to mean.

The S maps answer one click with nested alternatives (a part, the whole object, ...); the IoU head ranks them, and
the default (`select_best`) returns the top one. What the head ranks first depends only on the distribution of
target masks given the click, P(m | x), that it is trained on: with predicted IoUs q_k it learns

    q_k(x) ≈ E_{m ~ P(m | x)} IoU(l_k ≥ 0, m),         summed over the masks m of the image that hold x.

Rules for P(m | x), x a positive click (`CHOICE_RULES`):

    "uniform"   P(m | x) ∝ 1 / |m|     the seed's sampling (m uniform over the image's masks, x uniform in m): small
                                       nested masks explain a click more often, so the head learns to answer parts
    "area"      P(m | x) = 1 / |M_x|   every mask holding x equally (m drawn ∝ |m|, then x uniform in m)
    "largest"   m = the largest mask holding x   a click means the whole object; the parts stay available as the
                                       other maps (`multimask_output=True`)

For a negative first click x̄ every rule uses the seed's P(m | x̄) ∝ 1 / |valid \\ m| over the masks not holding x̄.

Because only the head changes, its inputs (`MaskIoUHead.inputs`: pooled decoder features and per-map statistics)
and each map's IoU with every mask of the view are computed once from the embedding cache
(`collect_choice_examples`); each rule is then a cheap fit of the small MLP on stored tensors (`fit_iou_head`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..utils.memory import release_freed_memory
from .embedding_cache import list_shards, load_shards
from .sampling import choose_masks, sample_click_pairs

CHOICE_RULES = ("uniform", "area", "largest")


@dataclass
class ChoiceExamples:
    """Stored head inputs for N first clicks.

    Attributes:
        inputs: (N, D + 2S) the head's input (`MaskIoUHead.inputs`).
        ious: (N, M, S) IoU of each map (thresholded at 0) with each of the view's masks (M = the most masks in a
            view; padding rows are 0). holds: (N, M) bool, the mask holds the click (positive) / does not hold it
            (negative). areas: (N, M) valid pixels of each mask (0 for padding); outside: (N, M) valid pixels outside.
        sign: (N,) +1 / −1.
    """

    inputs: torch.Tensor
    ious: torch.Tensor
    holds: torch.Tensor
    areas: torch.Tensor
    outside: torch.Tensor
    sign: torch.Tensor

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def state(self) -> dict[str, torch.Tensor]:
        return dict(vars(self))


def with_head_inputs(model, kind: str):
    """A copy of a multi-map `model` whose IoU head reads `kind` inputs (`MaskIoUHead`): every other weight is kept,
    the new head starts from the current torch generator."""
    from ..models.signed_click.configuration_signed_click import SignedClickConfig
    from ..models.signed_click.modeling_signed_click import SignedClickModel
    from ..models.signed_click.multimask import MaskIoUHead

    config = SignedClickConfig(**{**model.config.to_dict(), "iou_head_inputs": kind})
    new = SignedClickModel(config)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("decoder.iou_head.")}
    missing, unexpected = new.load_state_dict(state, strict=False)
    if unexpected or any(not k.startswith("decoder.iou_head.") for k in missing):
        raise ValueError(f"the model does not fit its own config with iou_head_inputs={kind!r}")
    # torch's default initialisation, not the model's: its init scales the head so that σ(q) saturates at 0 or 1,
    # where the squared error has no gradient to learn from
    new.decoder.iou_head = MaskIoUHead(config.embed_dim, config.num_mask_outputs, inputs=kind)
    return new.eval()


def choice_targets(examples: ChoiceExamples, rule: str) -> torch.Tensor:
    """(N, S) expected IoU of each map under `rule` (module docstring); rows with no eligible mask are NaN."""
    if rule not in CHOICE_RULES:
        raise ValueError(f"rule must be one of {CHOICE_RULES}, got {rule!r}")
    holds = examples.holds & (examples.areas > 0)
    areas = examples.areas.float()
    if rule == "uniform":
        weight = torch.where(holds, 1.0 / areas.clamp_min(1), 0.0)
    elif rule == "area":
        weight = holds.float()
    else:
        largest = torch.where(holds, areas, -1.0).argmax(1)
        weight = torch.zeros_like(areas).scatter_(1, largest[:, None], 1.0) * holds.float()
    negative = examples.sign < 0
    seed_negative = torch.where(holds, 1.0 / examples.outside.float().clamp_min(1), 0.0)
    weight = torch.where(negative[:, None], seed_negative, weight)
    total = weight.sum(1, keepdim=True)
    weight = weight / total.clamp_min(1e-12)
    targets = (weight[:, :, None] * examples.ious).sum(1)
    return torch.where(total > 0, targets, torch.full_like(targets, float("nan")))


@torch.no_grad()
def collect_choice_examples(model, cache: str, num_views: int, seed: int = 0, batch_size: int = 32,
                            shards_per_load: int = 4, progress: bool = True) -> ChoiceExamples:
    """A positive and a negative first click on each of `num_views` cached views (drawn as training draws them:
    a mask uniformly, x uniform in it, x̄ uniform outside it), decoded once; see `ChoiceExamples`."""
    from tqdm import tqdm

    from ..models.signed_click.multimask import mask_iou

    head = model.decoder.iou_head
    if head is None:
        raise ValueError("the model has one map: there is no IoU head to train")
    captured: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda module, args, out: captured.append(module.inputs(*args)))
    rng = np.random.default_rng(seed)
    shards = list_shards(cache)
    if not shards:
        raise ValueError(f"{cache} holds no shard: build the cache first (scripts/train_decoder.py cache)")
    order = rng.permutation(len(shards))
    size = model.config.image_size
    rows: dict[str, list] = {k: [] for k in ("inputs", "ious", "holds", "areas", "outside", "sign")}
    max_masks = 8
    bar = tqdm(total=num_views, desc="head inputs", disable=not progress)
    done = 0
    try:
        for start in range(0, len(order), shards_per_load):
            if done >= num_views:
                break
            views = None
            release_freed_memory()  # the last shards' buffers: else the heap grows ~1 GB per load (utils/memory.py)
            views = load_shards([shards[i] for i in order[start:start + shards_per_load]], size)
            for first in range(0, len(views), batch_size):
                if done >= num_views:
                    break
                index, points, labels, view_masks = [], [], [], []
                for v in range(first, min(first + batch_size, len(views))):
                    masks, valid = views.masks[v].numpy(), views.valid[v].numpy()
                    pick = choose_masks(masks, valid, 1, rng, 16)
                    if pick.size == 0:
                        continue
                    pair = sample_click_pairs(masks[pick[0]], valid, 1, rng)
                    signs = ((1, pair.positives[0]),) + (((-1, pair.negatives[0]),) if pair.negative_ok[0] else ())
                    for sign, point in signs:
                        index.append(v)
                        points.append(point)
                        labels.append(sign)
                        view_masks.append((masks & valid[None], valid))
                if not index:
                    continue
                done += len(set(index))
                sel = torch.tensor(index)
                e = views.embeddings.index(sel)
                embeddings = type(e)(**{k: None if t is None else t.float() for k, t in vars(e).items()})
                pts = torch.from_numpy(np.stack(points))[:, None].float()
                lab = torch.tensor(labels)[:, None]
                captured.clear()
                logits, _ = model.decode_masks(embeddings, pts, lab)
                rows["inputs"].append(captured[0])
                for i, (masks, valid) in enumerate(view_masks):
                    m = min(len(masks), max_masks)
                    target = torch.from_numpy(masks[:m])[:, None]
                    ious = torch.zeros(max_masks, logits.shape[1])
                    ious[:m] = mask_iou(logits[i:i + 1].expand(m, -1, -1, -1), target,
                                        torch.from_numpy(valid)[None, None])
                    x, y = int(points[i][0]), int(points[i][1])
                    holds = torch.zeros(max_masks, dtype=torch.bool)
                    holds[:m] = torch.from_numpy(masks[:m, y, x] if labels[i] > 0 else ~masks[:m, y, x])
                    areas = torch.zeros(max_masks, dtype=torch.int64)
                    areas[:m] = torch.from_numpy(masks[:m].reshape(m, -1).sum(1))
                    rows["ious"].append(ious)
                    rows["holds"].append(holds)
                    rows["areas"].append(areas)
                    rows["outside"].append(int(valid.sum()) - areas)
                    rows["sign"].append(labels[i])
                bar.update(len(set(index)))
    finally:
        hook.remove()
        bar.close()
    return ChoiceExamples(inputs=torch.cat(rows["inputs"]), ious=torch.stack(rows["ious"]),
                          holds=torch.stack(rows["holds"]), areas=torch.stack(rows["areas"]),
                          outside=torch.stack(rows["outside"]), sign=torch.tensor(rows["sign"]))


@torch.no_grad()
def fold_standardization(layer: torch.nn.Linear, mean: torch.Tensor, scale: torch.Tensor) -> None:
    """Make `layer`, trained on z = (x − mean) / scale, read raw x: W' = W / scale, b' = b − W' mean (in place)."""
    weight = layer.weight / scale[None, :]
    layer.bias.sub_(weight @ mean)
    layer.weight.copy_(weight)


def fit_iou_head(head, examples: ChoiceExamples, rule: str, epochs: int = 60, lr: float = 1e-3,
                 batch_size: int = 256, seed: int = 0, held_out: float = 0.1,
                 standardize: bool = False) -> dict[str, float]:
    """Fit `head` (a `MaskIoUHead`) in place: (σ(q) − target)² on the stored inputs, Adam, on all but a seeded
    `held_out` share of the examples.

    standardize (off by default: on validation it lost, docs/results_multimask.md § 11): the MLP trains on
    z = (x − μ) / σ, μ and σ the training inputs' per-feature mean and deviation
    (the inputs mix pooled features, mean probabilities and overlaps on very different scales), and the statistics
    are then folded into the first layer, W' = W / σ and b' = b − W' μ, so the head keeps its form and reads raw
    inputs as before.

    Returns the final training loss; how often the head's top map is the rule's top map on the training and on the
    held-out examples; and on the held-out examples the rule's expected IoU of the chosen map, of the best map
    (oracle) and of always the first map."""
    targets = choice_targets(examples, rule)
    keep = ~torch.isnan(targets).any(1)
    inputs, targets = examples.inputs[keep].float(), targets[keep]
    generator = torch.Generator().manual_seed(seed)
    shuffled = torch.randperm(len(inputs), generator=generator)
    cut = len(inputs) - int(round(held_out * len(inputs)))
    train, test = shuffled[:cut], shuffled[cut:]
    mean = inputs[train].mean(0) if standardize else torch.zeros(inputs.shape[1])
    scale = inputs[train].std(0).clamp_min(1e-4) if standardize and len(train) > 1 else torch.ones(inputs.shape[1])
    z = (inputs - mean) / scale
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    head.train()
    loss_value = float("nan")
    for _ in range(epochs):
        order = train[torch.randperm(len(train), generator=generator)]
        total = 0.0
        for start in range(0, len(order), batch_size):
            part = order[start:start + batch_size]
            loss = ((torch.sigmoid(head.mlp(z[part])) - targets[part]) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(part)
        loss_value = total / len(order)
    head.eval()
    if standardize:
        fold_standardization(head.mlp[0], mean, scale)
    with torch.no_grad():
        chosen = head.mlp(inputs).argmax(1)
    agree = chosen == targets.argmax(1)
    chosen_target = targets.gather(1, chosen[:, None])[:, 0]
    nan = float("nan")
    return {"loss": loss_value, "top_agreement": float(agree[train].float().mean()),
            "held_out_agreement": float(agree[test].float().mean()) if len(test) else nan,
            "held_out_chosen": float(chosen_target[test].mean()) if len(test) else nan,
            "held_out_oracle": float(targets[test].max(1).values.mean()) if len(test) else nan,
            "held_out_first_map": float(targets[test, 0].mean()) if len(test) else nan,
            "examples": int(len(train)), "held_out": int(len(test))}
