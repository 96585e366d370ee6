"""The cached image embedding: what `SignedClickModel.encode_image` returns once per image (or TTA view) and every
`decode` call reads."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers.utils import ModelOutput


@dataclass
class SignedClickImageEmbeddings(ModelOutput):
    """
    Args:
        features (`torch.FloatTensor` of shape `(batch_size, embed_dim, H/8, W/8)`): fused multi-scale features.
        low_level (`torch.FloatTensor` of shape `(batch_size, low_level_dim, H/4, W/4)`): boundary detail.
        fine (`torch.FloatTensor` of shape `(batch_size, 8, H/2, W/2)`, *optional*): the saliency branch's
            stride-2 embedding (its maps and features), read by the decoder's last refinement; None without it.
        saliency (`torch.FloatTensor` of shape `(batch_size, 1, H/2, W/2)`, *optional*): the saliency branch's
            map (side output d2, min-max normalised per image), from which the decoder's click prior is cut.
        prior_saliency (`torch.FloatTensor` of shape `(batch_size, 1, H, W)`, *optional*): with
            `config.prior_source="stretched"`, U²-Net(-p)'s full-resolution map of the image stretched to its
            training size (`hf_iis.backbones.stretched_saliency`), from which the output path's click component is
            cut; None otherwise.
    """

    features: torch.FloatTensor | None = None
    low_level: torch.FloatTensor | None = None
    fine: torch.FloatTensor | None = None
    saliency: torch.FloatTensor | None = None
    prior_saliency: torch.FloatTensor | None = None

    def _map(self, fn) -> SignedClickImageEmbeddings:
        return SignedClickImageEmbeddings(
            features=fn(self.features), low_level=fn(self.low_level),
            fine=None if self.fine is None else fn(self.fine),
            saliency=None if self.saliency is None else fn(self.saliency),
            prior_saliency=None if self.prior_saliency is None else fn(self.prior_saliency),
        )

    def index(self, index: torch.Tensor | slice) -> SignedClickImageEmbeddings:
        """The embeddings of the images selected by `index` (a slice or an index tensor along the batch)."""
        return self._map(lambda t: t[index])

    def expand(self, n: int) -> SignedClickImageEmbeddings:
        """A batch-1 embedding broadcast (without copying) to `n` click sets."""
        return self._map(lambda t: t.expand(n, -1, -1, -1))

    @classmethod
    def cat(cls, embeddings: list[SignedClickImageEmbeddings]) -> SignedClickImageEmbeddings:
        """Several embeddings of one input size as one batch (in order), e.g. the cached TTA views of an image, so
        that one `decode` call with `image_index` serves click sets on all of them."""

        def join(name: str) -> torch.Tensor | None:
            parts = [getattr(e, name) for e in embeddings]
            return None if parts[0] is None else torch.cat(parts)

        return cls(features=join("features"), low_level=join("low_level"), fine=join("fine"),
                   saliency=join("saliency"), prior_saliency=join("prior_saliency"))

    def detach(self) -> SignedClickImageEmbeddings:
        return self._map(lambda t: t.detach())

    @property
    def batch_size(self) -> int:
        return int(self.features.shape[0])
