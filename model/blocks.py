"""Layers shared by the four networks: conv units, residual blocks, AdaIN with its pose MLP, self-attention.

Paper sec. 3.2: the generator uses residual blocks (He et al. 2015) throughout, one self-attention module
(Zhang et al. 2018, SAGAN), and AdaIN (Huang and Belongie 2017) whose parameters come from an MLP on the pose code
"of one shared linear layer and two corresponding linear layers for mean and standard deviation".

Choices made where the paper is silent:
- Normalisation is InstanceNorm everywhere (affine where no AdaIN follows): per-sample statistics, so an item's
  output never depends on what it is batched with (BatchNorm biased test-time output in the deforming-autoencoder
  work). Activations are LeakyReLU(0.2).
- Residual blocks are pre-activation (norm, act, conv, norm, act, conv) with a 1x1 skip when widths or sizes change;
  resampling is bilinear x2 up (`warp.resize`) or 2x2 average pooling down, both on the main and the skip path.
- The AdaIN "std" head predicts an offset from 1 (scale = 1 + head): at initialisation AdaIN is plain
  InstanceNorm, and the sign of the scale is free, as in SPADE and StyleGAN. Each AdaIN layer owns its MLP.
- Self-attention follows SAGAN: query/key at C/8 channels, value at C, output scaled by a learned gamma initialised
  to 0 (the block starts as the identity).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from model.warp import downsample, resize

Resample = Literal["none", "down", "up"]
NEGATIVE_SLOPE = 0.2  # LeakyReLU slope everywhere


def zero_init(layer: nn.Module) -> nn.Module:
    """Zero a layer's weight and bias (heads that should start as 'no flow', 'no residual', 'no attention')."""
    for param in layer.parameters():
        nn.init.zeros_(param)
    return layer


def _resample(x: torch.Tensor, resample: Resample) -> torch.Tensor:
    if resample == "down":
        return downsample(x, 2)
    if resample == "up":
        return resize(x, x.shape[-1] * 2)
    return x


class ConvNormAct(nn.Sequential):
    """Conv (kernel 3 unless told) -> InstanceNorm (affine) -> LeakyReLU; stride 2 halves the size."""

    def __init__(self, in_dim: int, out_dim: int, *, stride: int = 1, kernel: int = 3) -> None:
        super().__init__(
            nn.Conv2d(in_dim, out_dim, kernel, stride=stride, padding=kernel // 2),
            nn.InstanceNorm2d(out_dim, affine=True),
            nn.LeakyReLU(NEGATIVE_SLOPE),
        )


class ResBlock(nn.Module):
    """Pre-activation residual block with InstanceNorm; `resample` halves or doubles the size.

    `norm=False` drops the norms: for a decoder fed by a code, whose per-channel scale and offset are the message
    InstanceNorm would erase.
    """

    def __init__(self, in_dim: int, out_dim: int, *, resample: Resample = "none", norm: bool = True) -> None:
        super().__init__()
        self.resample = resample
        self.norm1 = nn.InstanceNorm2d(in_dim, affine=True) if norm else nn.Identity()
        self.conv1 = nn.Conv2d(in_dim, out_dim, 3, padding=1)
        self.norm2 = nn.InstanceNorm2d(out_dim, affine=True) if norm else nn.Identity()
        self.conv2 = nn.Conv2d(out_dim, out_dim, 3, padding=1)
        self.skip = nn.Conv2d(in_dim, out_dim, 1) if in_dim != out_dim else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, in_dim, H, W) -> (B, out_dim, H', W'), H' = H/2, H or 2H per `resample`."""
        h = _resample(F.leaky_relu(self.norm1(x), NEGATIVE_SLOPE), self.resample)
        h = self.conv2(F.leaky_relu(self.norm2(self.conv1(h)), NEGATIVE_SLOPE))
        return h + self.skip(_resample(x, self.resample))


class AdaIN(nn.Module):
    """Adaptive instance normalisation whose scale and bias come from the pose code (paper sec. 3.2)."""

    def __init__(self, dim: int, pose_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.norm = nn.InstanceNorm2d(dim, affine=False)
        self.shared = nn.Linear(pose_dim, hidden_dim)  # the one shared linear layer
        self.mean = nn.Linear(hidden_dim, dim)  # bias head
        self.std = nn.Linear(hidden_dim, dim)  # scale head: scale = 1 + std(h)

    def forward(self, x: torch.Tensor, pose_code: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W); pose_code: (B, pose_dim) -> (B, C, H, W)."""
        h = F.relu(self.shared(pose_code))  # (B, hidden_dim)
        scale = 1 + self.std(h)[:, :, None, None]  # (B, C, 1, 1)
        bias = self.mean(h)[:, :, None, None]  # (B, C, 1, 1)
        return self.norm(x) * scale + bias


class AdaINResBlock(nn.Module):
    """Pre-activation residual block whose two norms are AdaIN on the pose code (generator middle and back end)."""

    def __init__(
        self, in_dim: int, out_dim: int, *, pose_dim: int, hidden_dim: int, resample: Resample = "none"
    ) -> None:
        super().__init__()
        self.resample = resample
        self.norm1 = AdaIN(in_dim, pose_dim, hidden_dim)
        self.conv1 = nn.Conv2d(in_dim, out_dim, 3, padding=1)
        self.norm2 = AdaIN(out_dim, pose_dim, hidden_dim)
        self.conv2 = nn.Conv2d(out_dim, out_dim, 3, padding=1)
        self.skip = nn.Conv2d(in_dim, out_dim, 1) if in_dim != out_dim else nn.Identity()

    def forward(self, x: torch.Tensor, pose_code: torch.Tensor) -> torch.Tensor:
        """x: (B, in_dim, H, W); pose_code: (B, pose_dim) -> (B, out_dim, H', W')."""
        h = _resample(F.leaky_relu(self.norm1(x, pose_code), NEGATIVE_SLOPE), self.resample)
        h = self.conv2(F.leaky_relu(self.norm2(self.conv1(h), pose_code), NEGATIVE_SLOPE))
        return h + self.skip(_resample(x, self.resample))


class SelfAttention(nn.Module):
    """SAGAN self-attention over all positions: x + gamma * softmax(q^T k) v, gamma starting at 0."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        inner = max(dim // 8, 1)
        self.query = nn.Conv2d(dim, inner, 1)
        self.key = nn.Conv2d(dim, inner, 1)
        self.value = nn.Conv2d(dim, dim, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, C, H, W) -> (B, C, H, W)."""
        b, c, h, w = x.shape
        q = self.query(x).flatten(2)  # (B, C/8, N), N = H*W
        k = self.key(x).flatten(2)  # (B, C/8, N)
        v = self.value(x).flatten(2)  # (B, C, N)
        attn = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # (B, N, N): row i weighs the positions i attends to
        out = (v @ attn.transpose(1, 2)).view(b, c, h, w)  # (B, C, N) -> (B, C, H, W)
        return x + self.gamma * out
