"""Configuration of the feature-space student (``model_type="signed_click_student"``), distilled from a teacher."""

from __future__ import annotations

from transformers import PretrainedConfig

from .click_rule import check_click_rule

STRIDES = (4, 8)

# Named sizes: "tiny" is for tests (a 64 px input works); "lite0" is the default student.
STUDENT_PRESETS: dict[str, dict] = {
    "tiny": {"embed_dim": 8, "neck_dim": 16, "image_size": 64, "use_pretrained_backbone": False},
    # triangulation_stride 16: as accurate as 8 on validation (+0.86 [+0.48, +1.24], docs/results_student.md §8) and
    # a quarter of the cost
    "lite0": {"embed_dim": 32, "neck_dim": 64, "image_size": 320, "anchor_at_click": True, "triangulation_stride": 16},
}


class SignedClickStudentConfig(PretrainedConfig):
    r"""
    Configuration of [`SignedClickStudentModel`]: an image encoder that maps every pixel y to an embedding φ(y) at
    stride `stride`, with two bilinear similarity heads, so that one image pass answers every click.

    Args:
        backbone (`str`, *optional*, defaults to `"efficientnet_lite0"`):
            As the teacher's (`hf_iis.backbones.registry.build_backbone`): `efficientnet_lite*` written here, or a
            timm name.
        backbone_out_indices (`list[int]`, *optional*, defaults to `[1, 2, 3, 4]`): feature levels at strides
            4, 8, 16, 32.
        use_pretrained_backbone (`bool`, *optional*, defaults to `True`): whether training code loads ImageNet
            weights into a fresh model (offline for EfficientNet-Lite0).
        image_size (`int`, *optional*, defaults to 320): longest side of the model input (the teacher's; images
            are resized and padded to a square, `SignedClickImageProcessor`).
        stride (`int`, *optional*, defaults to 4): the embedding grid's stride in input pixels, 4 or 8. At 320 px
            and stride 4 the grid is 80 x 80 = 6,400 pixels; click maps are upsampled (bilinearly, in logit space)
            from it to the input.
        embed_dim (`int`, *optional*, defaults to 32): D, the channels of φ.
        neck_dim (`int`, *optional*, defaults to 64): channels of the feature pyramid that fuses the backbone
            levels into the stride-`stride` map.
        triangulation_stride (`int`, *optional*, defaults to 8): stride (input pixels) of the grid of auxiliary
            pixels y that feature-space triangulation sums over exactly (a multiple of `stride`; 40 x 40 = 1,600
            pixels at 320 px).
        triangulation_blend (`float`, *optional*, defaults to 0.0): default weight α of the direct estimate,
            P = α·direct + (1 − α)·triangulated (0 = the seed's formula alone), as the teacher's.
        anchor_at_click (`bool`, *optional*, defaults to `False`): measure the positive head from the click's own
            embedding, so that a positive click's map is σ(b+) at the click (see the modeling module). Off by
            default so that students saved before it load unchanged; the lite0 preset turns it on.
        click_rule (`str`, *optional*, defaults to `"naive_bayes"`): how several clicks combine
            (`click_rule.py`): `"naive_bayes"`, or `"learned"`, naive Bayes plus a small convolutional residual over
            the click maps, the prior and the previous map (trained with `scripts/distill.py train-rule`). The
            default keeps students saved before the learned rule loading and predicting as they did.
        click_rule_channels (`int`, *optional*, defaults to 32): width of the learned rule's convolutions.
        pixel_mean, pixel_std (`list[float]`, *optional*, default 0.5): the image processor's normalisation.
        teacher (`str`, *optional*): the checkpoint the student was distilled from (for the model card).
        teacher_sha256 (`str`, *optional*): the sha256 of that teacher's weights (a folder may hold others later).
        teacher_scaling (`dict`, *optional*): the teacher's inference-time scaling that produced the targets,
            e.g. `{"tta": 4, "triangulation": 0}`.
        distillation (`dict`, *optional*): what the targets were (cache folder, images, clicks per image, steps).
    """

    model_type = "signed_click_student"

    def __init__(
        self,
        backbone: str = "efficientnet_lite0",
        backbone_out_indices: list[int] | tuple[int, ...] = (1, 2, 3, 4),
        use_pretrained_backbone: bool = True,
        image_size: int = 320,
        stride: int = 4,
        embed_dim: int = 32,
        neck_dim: int = 64,
        triangulation_stride: int = 8,
        triangulation_blend: float = 0.0,
        anchor_at_click: bool = False,
        click_rule: str = "naive_bayes",
        click_rule_channels: int = 32,
        pixel_mean: list[float] | tuple[float, ...] = (0.5, 0.5, 0.5),
        pixel_std: list[float] | tuple[float, ...] = (0.5, 0.5, 0.5),
        teacher: str | None = None,
        teacher_sha256: str | None = None,
        teacher_scaling: dict | None = None,
        distillation: dict | None = None,
        **kwargs,
    ) -> None:
        if int(stride) not in STRIDES:
            raise ValueError(f"stride must be one of {STRIDES}, got {stride}")
        if int(image_size) % 32:
            raise ValueError(f"image_size must be a multiple of 32, got {image_size}")
        if int(triangulation_stride) % int(stride) or int(triangulation_stride) < int(stride):
            raise ValueError(f"triangulation_stride must be a multiple of stride {stride}, got {triangulation_stride}")
        if int(embed_dim) < 1 or int(neck_dim) < 1:
            raise ValueError(f"embed_dim and neck_dim must be >= 1, got {embed_dim} and {neck_dim}")
        if not 0.0 <= float(triangulation_blend) <= 1.0:
            raise ValueError(f"triangulation_blend must be in [0, 1], got {triangulation_blend}")
        check_click_rule(click_rule)
        if isinstance(click_rule_channels, bool) or not isinstance(click_rule_channels, int) or click_rule_channels < 1:
            raise ValueError(f"click_rule_channels must be an integer >= 1, got {click_rule_channels!r}")
        if len(list(backbone_out_indices)) != 4:
            raise ValueError(f"backbone_out_indices must name 4 feature levels, got {list(backbone_out_indices)}")
        self.backbone = backbone
        self.backbone_out_indices = list(backbone_out_indices)
        self.use_pretrained_backbone = use_pretrained_backbone
        self.image_size = int(image_size)
        self.stride = int(stride)
        self.embed_dim = int(embed_dim)
        self.neck_dim = int(neck_dim)
        self.triangulation_stride = int(triangulation_stride)
        self.triangulation_blend = float(triangulation_blend)
        self.anchor_at_click = bool(anchor_at_click)
        self.click_rule = click_rule
        self.click_rule_channels = int(click_rule_channels)
        self.pixel_mean = list(pixel_mean)
        self.pixel_std = list(pixel_std)
        self.teacher = teacher
        self.teacher_sha256 = teacher_sha256
        self.teacher_scaling = dict(teacher_scaling) if teacher_scaling else None
        self.distillation = dict(distillation) if distillation else None
        super().__init__(**kwargs)

    @classmethod
    def from_preset(cls, name: str, **overrides) -> SignedClickStudentConfig:
        """A config from `STUDENT_PRESETS` ("tiny", "lite0") with optional overrides."""
        if name not in STUDENT_PRESETS:
            raise KeyError(f"unknown student preset {name!r}; choose one of {sorted(STUDENT_PRESETS)}")
        return cls(**{**STUDENT_PRESETS[name], **overrides})
