"""The face embedder F: K frames of one video -> one embedded face (paper sec. 3.1, Fig. 3, eq. 1).

For every frame x_k a U-Net predicts a displacement field T_k and an attention logit map; each frame is warped by
bilinear sampling and the warped frames are fused, f = sum_k A'_k * T_k(x_k) with A'_k = A_k / sum_k A_k.

Choices made where the paper is silent:
- One U-Net, shared over frames and applied to each frame alone: the embedder works for any K, and K = 1
  (``data.num_frames: 1``) is Table 1's single-frame row with no other change. The frames agree with each other
  through the template they all warp towards, as in deforming autoencoders.
- A is kept positive as A = exp(logit), so A' is a softmax over k: strictly positive, sums to 1 exactly, and
  cannot divide by a near-zero sum the way softplus or ReLU weights can. With K = 1, A' = 1.
- The flow and attention head is zero-initialised: training starts from the identity warp and an even average,
  which the reconstruction loss can improve on from step one. Flow units are `model.warp`'s (normalised).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from model.blocks import ConvNormAct, zero_init
from model.config import ModelConfig
from model.warp import resize, warp


class FaceEmbedding(NamedTuple):
    """What F computes for a batch of videos."""

    face: torch.Tensor  # (B, 3, H, W): the embedded face f of eq. 1
    flow: torch.Tensor  # (B, K, 2, H, W): each frame's displacement field T_k, normalised units
    attention: torch.Tensor  # (B, K, 1, H, W): normalised weights A'_k, positive, summing to 1 over k
    warped: torch.Tensor  # (B, K, 3, H, W): each frame warped, T_k(x_k)


class FaceEmbedder(nn.Module):
    """Multi-frame deforming autoencoder (eq. 1)."""

    def __init__(
        self,
        hidden_dim: int,  # width of the first U-Net level, doubled per level
        num_levels: int,  # U-Net downsamplings; input size must be divisible by 2**num_levels
        max_hidden_dim: int,  # cap on the width of any level
    ) -> None:
        super().__init__()
        self.num_levels = num_levels
        widths = [min(hidden_dim * 2**level, max_hidden_dim) for level in range(num_levels + 1)]
        self.stem = ConvNormAct(3, widths[0])
        self.down = nn.ModuleList(ConvNormAct(widths[i], widths[i + 1], stride=2) for i in range(num_levels))
        # up[i] brings level i+1 back to level i, concatenated with level i's skip
        self.up = nn.ModuleList(ConvNormAct(widths[i + 1] + widths[i], widths[i]) for i in range(num_levels))
        self.head = zero_init(nn.Conv2d(widths[0], 3, 3, padding=1))  # 2 flow channels + 1 attention logit

    @classmethod
    def from_config(cls, config: ModelConfig, *, size: int) -> FaceEmbedder:
        """Build from the `model` section for `size`-pixel frames."""
        config.check_size(size)
        return cls(config.face_hidden_dim, config.num_face_levels, config.max_hidden_dim)

    def forward(self, frames: torch.Tensor) -> FaceEmbedding:
        """frames: (B, K, 3, H, W) in [-1, 1], K frames of one video per item."""
        assert frames.dim() == 5 and frames.shape[2] == 3, f"frames must be (B, K, 3, H, W), got {tuple(frames.shape)}"
        b, k, _, h, w = frames.shape
        assert h == w and h % 2**self.num_levels == 0, f"frames must be square, divisible by {2**self.num_levels}"
        x = frames.reshape(b * k, 3, h, w)  # (B*K, 3, H, W): every frame on its own
        skips = [self.stem(x)]
        for down in self.down:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for level in reversed(range(self.num_levels)):
            skip = skips.pop()
            y = self.up[level](torch.cat([resize(y, skip.shape[-1]), skip], dim=1))
        out = self.head(y)  # (B*K, 3, H, W)
        flow = out[:, :2]  # (B*K, 2, H, W)
        logits = out[:, 2:].reshape(b, k, 1, h, w)  # (B, K, 1, H, W)
        attention = torch.softmax(logits, dim=1)  # A' = exp(l_k) / sum_k exp(l_k)
        warped = warp(x, flow).reshape(b, k, 3, h, w)  # (B, K, 3, H, W): T_k(x_k)
        face = (attention * warped).sum(dim=1)  # (B, 3, H, W): eq. 1
        flow = flow.reshape(b, k, 2, h, w)  # (B, K, 2, H, W): back to one row per video
        return FaceEmbedding(face, flow, attention, warped)
