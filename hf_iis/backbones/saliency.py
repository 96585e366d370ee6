"""The saliency branch: a frozen U²-Net(-p) whose maps and decoder features join the cached image embedding.

Run once per image (or TTA view) inside `SignedClickModel.encode_image`, never per click, so clicks stay cheap:

    x_u2  = resize(pixel_values → saliency_input_size), renormalised to U²-Net's ImageNet statistics
    U²-Net up to decoder stage 2 (the full-resolution decoder stage 1 and the fused map d0 are skipped: they cost
    ~60 % of the network and the stride-2 side output d2 scores within 0.5 IoU of d0 on GrabCut and Berkeley)
    maps  = logit(d2..d6)                                 5 channels, stride 2 of the saliency input
    feats = decoder stages 2, 3, 4 (strides 2, 4, 8)      64 channels each for U²-Net-p

and, in the click model's frame (H × W input, `features` at H/8, `low_level` at H/4):

    features  += P8([maps, feats_s8] resized to H/8)      P8, P4, Pf end in zero-initialised 1×1 convs, so a model
    low_level += P4([maps, feats_s4] resized to H/4)      warm-started from a checkpoint without the branch starts
    fine       = Pf([maps, feats_s2] resized to H/2)      out exactly as that checkpoint

With `frame="stretched"` the net's input is the photo alone stretched to the square (`saliency_frame.py`) instead of
the padded model input, and "resized to H/k" becomes "resized into the photo's box at H/k, neutral elsewhere".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .u2net import U2NET_MEAN, U2NET_STD, U2Net

SALIENCY_FEATURE_SETS = ("maps", "decoder")
"""What the branch passes on: `maps` = the side-output logits d2..d6, `decoder` = decoder-stage features."""

NUM_MAPS = 5  # d2..d6
FINE_DIM = 8  # channels of the stride-2 embedding the decoder's refinement reads


def _project(cin: int, cout: int) -> nn.Sequential:
    last = nn.Conv2d(32, cout, 1)
    last._zero_init = True  # SignedClickPreTrainedModel._init_weights zeroes it (also for missing checkpoint keys)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(nn.Conv2d(cin, 32, 1), nn.ReLU(inplace=True), last)


class SaliencyBranch(nn.Module):
    """Frozen U²-Net(-p) + trainable projections into the click model's embedding (see the module docstring)."""

    def __init__(self, variant: str, feature_sets: list[str], input_size: int, embed_dim: int, low_level_dim: int,
                 pixel_mean: list[float], pixel_std: list[float], frame: str = "padded") -> None:
        super().__init__()
        self.frame = frame
        unknown = sorted(set(feature_sets) - set(SALIENCY_FEATURE_SETS))
        if unknown or not feature_sets:
            raise ValueError(f"saliency_features must be a non-empty subset of {list(SALIENCY_FEATURE_SETS)}, "
                             f"got {feature_sets}")
        if input_size % 32:
            raise ValueError(f"saliency_input_size must be a multiple of 32, got {input_size}")
        self.u2net = U2Net(variant)
        self.u2net.requires_grad_(False)
        self.use_maps, self.use_decoder = "maps" in feature_sets, "decoder" in feature_sets
        self.input_size = input_size
        dec = self.u2net.decoder_channels  # stages 1..5
        extra = NUM_MAPS if self.use_maps else 0
        self.to_s8 = _project(extra + (dec[3] if self.use_decoder else 0), embed_dim)
        self.to_s4 = _project(extra + (dec[2] if self.use_decoder else 0), low_level_dim)
        self.to_s2 = _project(extra + (dec[1] if self.use_decoder else 0), FINE_DIM)
        # pixel_values come normalised with the image processor's statistics; U²-Net wants ImageNet's. Plain floats,
        # not buffers: transformers' from_pretrained builds the model on the meta device and would leave
        # non-persistent buffers uninitialised.
        self.scale = [s / t for s, t in zip(pixel_std, U2NET_STD)]
        self.shift = [(m - t) / ts for m, t, ts in zip(pixel_mean, U2NET_MEAN, U2NET_STD)]

    def train(self, mode: bool = True) -> SaliencyBranch:
        super().train(mode)
        self.u2net.eval()  # frozen: no BatchNorm exists, but keep it out of any train-mode behaviour
        return self

    @torch.no_grad()
    def saliency_outputs(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(logits of d2..d6 at stride 2, decoder features of stages 2, 3, 4) of the U²-Net input."""
        scale = pixel_values.new_tensor(self.scale).view(1, 3, 1, 1)
        shift = pixel_values.new_tensor(self.shift).view(1, 3, 1, 1)
        return self.net_outputs(pixel_values * scale + shift)

    @torch.no_grad()
    def net_outputs(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """`saliency_outputs` of a net input `x` already in U²-Net's statistics (resized to the input size)."""
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False,
                              antialias=True)
        net = self.u2net
        enc = net.encode(x)
        dec = net.decode(enc, num_stages=4)  # decoder stages 5, 4, 3, 2 (stage 1 skipped)
        sides = [net.side[5](enc[-1])]
        for k, feat in zip((4, 3, 2, 1), dec):
            sides.append(net.side[k](feat))
        size = dec[-1].shape[-2:]
        maps = torch.cat([F.interpolate(s, size=size, mode="bilinear", align_corners=False) for s in sides[::-1]],
                         dim=1)  # d2, d3, d4, d5, d6
        return maps, dec[::-1][:3]  # decoder stages 2, 3, 4

    def forward(self, pixel_values: torch.Tensor, s8: torch.Size, s4: torch.Size, s2: torch.Size,
                stretched: torch.Tensor | None = None, boxes: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Additions to `features` (s8) and `low_level` (s4), the stride-2 `fine` embedding, and the saliency map
        (d2, min-max normalised per image) at s2. With the stretched frame, `stretched` (B, 3, s, s) is the net input
        and `boxes` (B, 4) the photo's (y0, x0, y1, x1) in `pixel_values`' pixels (`saliency_frame.py`)."""
        if self.frame == "stretched":
            from .saliency_frame import place_in_boxes

            frame = tuple(pixel_values.shape[-2:])
            maps, (f2, f4, f8) = self.net_outputs(stretched.to(pixel_values.dtype))

            def resize(t: torch.Tensor, size, is_map: bool = False) -> torch.Tensor:
                # maps are logits: the padding gets each map's own minimum (the least salient value it holds)
                fill = t.amin(dim=(2, 3)) if is_map else 0.0
                return place_in_boxes(t, boxes, frame, tuple(size), fill)
        else:
            maps, (f2, f4, f8) = self.saliency_outputs(pixel_values)

            def resize(t: torch.Tensor, size, is_map: bool = False) -> torch.Tensor:
                return F.interpolate(t, size=size, mode="bilinear", align_corners=False)
        d2 = torch.sigmoid(resize(maps[:, :1], s2, is_map=True))
        low = d2.amin(dim=(2, 3), keepdim=True)
        saliency = (d2 - low) / (d2.amax(dim=(2, 3), keepdim=True) - low).clamp_min(1e-6)
        out = []
        for size, feat, proj in ((s8, f8, self.to_s8), (s4, f4, self.to_s4), (s2, f2, self.to_s2)):
            parts = []
            if self.use_maps:
                parts.append(resize(maps, size, is_map=True))
            if self.use_decoder:
                parts.append(resize(feat, size))
            out.append(proj(torch.cat(parts, dim=1)))
        return out[0], out[1], out[2], saliency
