"""The conditional generator G: embedded face f and pose code p -> a photo-realistic frame (paper sec. 3.2).

Built on Pix2PixHD's global generator (Wang et al.): a front end G_f that downsamples, a middle G_m of residual
blocks, a back end G_b that upsamples. As the paper asks, every convolution block is residual, one self-attention
module (SAGAN) is added, and the residual blocks of G_m and G_b normalise with AdaIN whose scale and bias come from
an MLP on p (one shared linear layer, then a mean head and a std head; see `model.blocks.AdaIN`).

Choices made where the paper is silent:
- The front end uses plain InstanceNorm residual blocks: it sees only f, so the pose enters in G_m and G_b only.
- The one self-attention block sits between G_f and G_m, at the lowest resolution, where attending over all
  positions is cheapest ((size / 2**num_down)**2 positions) and each position already sees a wide area.
- Stem and output convolutions are 7x7 as in Pix2PixHD; the output goes through tanh into [-1, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from model.blocks import NEGATIVE_SLOPE, AdaINResBlock, ConvNormAct, ResBlock, SelfAttention
from model.config import ModelConfig


class Generator(nn.Module):
    """G(f, p): Pix2PixHD-style residual generator with AdaIN on the pose code and one self-attention block."""

    def __init__(
        self,
        pose_dim: int,  # length of the pose code p
        hidden_dim: int,  # stem width, doubled per downsampling (Pix2PixHD's ngf)
        num_down: int,  # resolution steps of the front end (and the back end)
        *,
        num_blocks: int,  # AdaIN residual blocks in the middle G_m
        adain_hidden_dim: int,  # width of each AdaIN MLP's shared layer
        max_hidden_dim: int,  # cap on any width
    ) -> None:
        super().__init__()
        self.pose_dim, self.num_down = pose_dim, num_down
        widths = [min(hidden_dim * 2**level, max_hidden_dim) for level in range(num_down + 1)]
        adain = dict(pose_dim=pose_dim, hidden_dim=adain_hidden_dim)
        self.stem = ConvNormAct(3, widths[0], kernel=7)
        self.front = nn.Sequential(*(ResBlock(widths[i], widths[i + 1], resample="down") for i in range(num_down)))
        self.attention = SelfAttention(widths[-1])
        self.middle = nn.ModuleList(AdaINResBlock(widths[-1], widths[-1], **adain) for _ in range(num_blocks))
        self.back = nn.ModuleList(AdaINResBlock(widths[i + 1], widths[i], resample="up", **adain)
                                  for i in reversed(range(num_down)))
        self.out_norm = nn.InstanceNorm2d(widths[0], affine=True)
        self.out_conv = nn.Conv2d(widths[0], 3, 7, padding=3)

    @classmethod
    def from_config(cls, config: ModelConfig, *, size: int) -> Generator:
        """Build from the `model` section for `size`-pixel frames."""
        config.check_size(size)
        return cls(config.pose_dim, config.gen_hidden_dim, config.num_gen_down, num_blocks=config.num_gen_blocks,
                   adain_hidden_dim=config.adain_hidden_dim, max_hidden_dim=config.max_hidden_dim)

    def forward(self, face: torch.Tensor, pose_code: torch.Tensor) -> torch.Tensor:
        """face: (B, 3, H, W) embedded face; pose_code: (B, pose_dim). Returns img: (B, 3, H, W) in [-1, 1]."""
        assert face.dim() == 4 and face.shape[1] == 3, f"face must be (B, 3, H, W), got {tuple(face.shape)}"
        assert face.shape[-1] % 2**self.num_down == 0, f"face size must be divisible by {2**self.num_down}"
        assert pose_code.shape == (face.shape[0], self.pose_dim), f"pose_code must be (B, {self.pose_dim})"
        h = self.attention(self.front(self.stem(face)))  # (B, C, H / 2**num_down, W / 2**num_down)
        for block in self.middle:
            h = block(h, pose_code)
        for block in self.back:
            h = block(h, pose_code)  # doubles the size
        return torch.tanh(self.out_conv(F.leaky_relu(self.out_norm(h), NEGATIVE_SLOPE)))
