"""The discriminator D: a patch discriminator with spectral norm, giving logits and features (paper sec. 3.2).

D(x; x_real) "takes the synthesized image and the corresponding video frame to distinguish detailed differences
between them": read here as D scoring the synthesised frame G(f, p) and the real frame x_t, one at a time, with
the hinge loss of eq. 7, and its intermediate features of the two compared by the feature-matching loss of eq. 6.

Choices made where the paper is silent:
- Unconditional by default. Feeding the real frame itself as a condition would let D tell real from fake by
  checking whether its two inputs are equal, not by realism. Optional conditioning (``model.disc_conditional``)
  concatenates the embedded face f on the channel axis; the real and the fake branch get the same f, so only the
  image differs between them.
- PatchGAN (Pix2PixHD / pix2pix): `num_layers` stride-2 4x4 convolutions then a 3x3 convolution to one logit per
  patch; spectral norm (Miyato et al.) on every convolution and no other normalisation, as in SAGAN's D.
- Features for matching are the activations after every stride-2 layer.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from model.blocks import NEGATIVE_SLOPE
from model.config import ModelConfig


class DiscriminatorOutput(NamedTuple):
    """D's verdict on a batch of images."""

    logits: torch.Tensor  # (B, 1, H / 2**L, W / 2**L): one realism score per patch
    features: tuple[torch.Tensor, ...]  # L maps, (B, C_l, H / 2**l, W / 2**l) for l = 1..L


class Discriminator(nn.Module):
    """Spectrally normalised patch discriminator returning logits and intermediate features."""

    def __init__(
        self,
        hidden_dim: int,  # width of the first layer, doubled per layer
        num_layers: int,  # stride-2 layers
        max_hidden_dim: int,  # cap on any width
        *,
        conditional: bool = False,  # also take the embedded face, channel-concatenated
    ) -> None:
        super().__init__()
        self.conditional, self.num_layers = conditional, num_layers
        widths = [6 if conditional else 3] + [min(hidden_dim * 2**i, max_hidden_dim) for i in range(num_layers)]
        self.layers = nn.ModuleList(
            spectral_norm(nn.Conv2d(widths[i], widths[i + 1], 4, stride=2, padding=1)) for i in range(num_layers)
        )
        self.to_logits = spectral_norm(nn.Conv2d(widths[-1], 1, 3, padding=1))

    @classmethod
    def from_config(cls, config: ModelConfig, *, size: int) -> Discriminator:
        """Build from the `model` section for `size`-pixel frames."""
        config.check_size(size)
        return cls(
            config.disc_hidden_dim, config.num_disc_layers, config.max_hidden_dim, conditional=config.disc_conditional
        )

    def forward(self, img: torch.Tensor, condition: torch.Tensor | None = None) -> DiscriminatorOutput:
        """img: (B, 3, H, W) in [-1, 1], real or synthesised; condition: (B, 3, H, W) embedded face, given exactly
        when the discriminator is conditional."""
        assert img.dim() == 4 and img.shape[1] == 3, f"img must be (B, 3, H, W), got {tuple(img.shape)}"
        assert (condition is not None) == self.conditional, "pass a condition exactly when D is conditional"
        h = img if condition is None else torch.cat([img, condition], dim=1)  # (B, 3 or 6, H, W)
        features = []
        for layer in self.layers:
            h = F.leaky_relu(layer(h), NEGATIVE_SLOPE)
            features.append(h)
        return DiscriminatorOutput(self.to_logits(h), tuple(features))
