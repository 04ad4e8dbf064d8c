"""The pose embedder P: a frame -> pose code p -> a warp of the embedded face plus residuals (sec. 3.1, Fig. 4).

The encoder maps a frame to the pose code p (a vector; what the index stores). The decoder sees only p and
returns a displacement field T^-1 at W/4 and residual maps R^L at W/2 and R^H at W; the frame is rebuilt from the
embedded face f as x = R^H + U{R^L + U[T^-1(f)]} (eq. 2).

Choices made where the paper is silent:
- The decoder has no skip connections from the encoder: everything about the frame reaches the decoder through p,
  so p must carry the pose and the face must come from f.
- Encoder: stride-2 conv units down to a (size / 2**num_levels)-pixel map, flattened (keeping where things are),
  then one linear layer to p. No normalisation or activation on p itself.
- The decoder's residual blocks have no normalisation: InstanceNorm on a map made from p would remove each
  channel's offset and scale, which is much of what p says.
- T^-1 samples an area-downsampled f (box filter by 4), so the W/4 warp sees all of f's pixels, not one in 16.
- The flow and both residual heads are zero-initialised: training starts from x = U{U[downsampled f]}.
- Departure (``model.warp_full_resolution``, on in tiny and small): T^-1 is still predicted at W/4, but upsampled
  (bilinear; flow units are resolution-free) and applied to the full-resolution f, as FOMM and X2Face warp:
  x = T^-1(f) + R^H + U[R^L]. Eq. 2 read literally (U is linear: U{R^L + U[T^-1(f_4)]} = U[R^L] + U[U[T^-1(f_4)]])
  leaves an L1 floor of about 0.07 at 64 px from the 4x-downsampled f alone, which the residuals, decoded from p
  only, then paint: p becomes an appearance code. At full resolution the warp can carry the face.
- `decode(..., residuals=False)` renders the warp alone (the warm-up of `train.warp_warmup_epochs`, and the
  evaluation's check that pose is carried by motion).
- Single-scale (``model.multi_scale: false``, Table 1): the decoder runs on to W and predicts T^-1 there;
  x = T^-1(f), with no residual heads at all.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from model.blocks import NEGATIVE_SLOPE, ConvNormAct, ResBlock, zero_init
from model.config import ModelConfig
from model.warp import downsample, resize, upsample_flow, warp


class PoseReconstruction(NamedTuple):
    """What P computes for a batch of frames."""

    reconstruction: torch.Tensor  # (B, 3, H, W): x of eq. 2
    pose_code: torch.Tensor  # (B, pose_dim): p
    flow: torch.Tensor  # (B, 2, H/4, W/4) (single-scale: (B, 2, H, W)): T^-1, normalised units
    warped: torch.Tensor  # T^-1(f) before any residual: at W/4 (eq. 2), or W (full-resolution warp, single-scale)
    residual_low: torch.Tensor | None  # (B, 3, H/2, W/2): R^L; None when single-scale
    residual_high: torch.Tensor | None  # (B, 3, H, W): R^H; None when single-scale
    view_codes: torch.Tensor | None = None  # (V, pose_dim): codes of the extra `views` given to `forward`, if any


class PoseEmbedder(nn.Module):
    """Multi-scale deforming autoencoder (eq. 2)."""

    def __init__(
        self,
        size: int,  # frame side in pixels; fixes the flattened bottleneck
        pose_dim: int,  # length of the pose code
        hidden_dim: int,  # width of the first encoder level, doubled per level
        *,
        num_levels: int,  # encoder downsamplings (>= 2); size must be divisible by 2**num_levels
        max_hidden_dim: int,  # cap on the width of any level
        multi_scale: bool = True,  # eq. 2; False: one full-resolution warp, no residuals
        warp_full_resolution: bool = False,  # the W/4 flow warps the full-resolution face (module docstring)
    ) -> None:
        super().__init__()
        assert num_levels >= 2 and size % 2**num_levels == 0, f"size {size} vs num_levels {num_levels}"
        self.size, self.pose_dim, self.multi_scale = size, pose_dim, multi_scale
        self.warp_full_resolution = warp_full_resolution
        widths = [min(hidden_dim * 2**level, max_hidden_dim) for level in range(num_levels + 1)]
        self.bottleneck = (widths[-1], size // 2**num_levels, size // 2**num_levels)  # (C, h, w)
        flat = widths[-1] * self.bottleneck[1] * self.bottleneck[2]
        self.encoder = nn.Sequential(
            ConvNormAct(3, widths[0]),
            *(ConvNormAct(widths[i], widths[i + 1], stride=2) for i in range(num_levels)),
        )
        self.to_code = nn.Linear(flat, pose_dim)
        self.from_code = nn.Linear(pose_dim, flat)
        # up[j] doubles the size from level j+1 to level j; the warp is read at level 2 (W/4) or level 0 (W)
        self.up = nn.ModuleList(
            ResBlock(widths[j + 1], widths[j], resample="up", norm=False) for j in range(num_levels)
        )
        if multi_scale:
            self.flow_head = zero_init(nn.Conv2d(widths[2], 2, 3, padding=1))
            self.low_head = zero_init(nn.Conv2d(widths[1], 3, 3, padding=1))
            self.high_head = zero_init(nn.Conv2d(widths[0], 3, 3, padding=1))
        else:
            self.flow_head = zero_init(nn.Conv2d(widths[0], 2, 3, padding=1))
            self.low_head = self.high_head = None

    @classmethod
    def from_config(cls, config: ModelConfig, *, size: int) -> PoseEmbedder:
        """Build from the `model` section for `size`-pixel frames."""
        config.check_size(size)
        return cls(
            size,
            config.pose_dim,
            config.pose_hidden_dim,
            num_levels=config.num_pose_levels,
            max_hidden_dim=config.max_hidden_dim,
            multi_scale=config.multi_scale,
            warp_full_resolution=config.warp_full_resolution,
        )

    def encoder_parameters(self) -> list[nn.Parameter]:
        """The weights of the encoder (frame -> p), those `train.freeze_pose_encoder` keeps."""
        return [*self.encoder.parameters(), *self.to_code.parameters()]

    def encode(self, frame: torch.Tensor) -> torch.Tensor:
        """frame: (B, 3, H, W) in [-1, 1] -> pose code (B, pose_dim)."""
        assert frame.shape[1:] == (3, self.size, self.size), f"frame must be (B, 3, {self.size}, {self.size})"
        return self.to_code(self.encoder(frame).flatten(1))  # (B, C*h*w) -> (B, pose_dim)

    def decode(self, pose_code: torch.Tensor, face: torch.Tensor, *, residuals: bool = True) -> PoseReconstruction:
        """Rebuild a frame in pose `pose_code` (B, pose_dim) from the embedded face `face` (B, 3, H, W) (eq. 2).

        The two may come from different videos: that is reenactment by warping. `residuals=False` leaves R^L and
        R^H out of the reconstruction (they are still returned): the warp alone.
        """
        assert pose_code.shape[1:] == (self.pose_dim,), f"pose_code must be (B, {self.pose_dim})"
        assert face.shape[1:] == (3, self.size, self.size), f"face must be (B, 3, {self.size}, {self.size})"
        h = F.leaky_relu(self.from_code(pose_code), NEGATIVE_SLOPE).view(-1, *self.bottleneck)  # (B, C, h, w)
        for j in reversed(range(2, len(self.up))):  # up to W/4
            h = self.up[j](h)
        if not self.multi_scale:
            h = self.up[0](self.up[1](h))  # (B, C0, H, W)
            flow = self.flow_head(h)  # (B, 2, H, W)
            warped = warp(face, flow)
            return PoseReconstruction(warped, pose_code, flow, warped, None, None)
        flow = self.flow_head(h)  # (B, 2, H/4, W/4)
        h = self.up[1](h)  # (B, C1, H/2, W/2)
        residual_low = self.low_head(h)
        h = self.up[0](h)  # (B, C0, H, W)
        residual_high = self.high_head(h)
        keep = 1.0 if residuals else 0.0
        if self.warp_full_resolution:
            warped = warp(face, upsample_flow(flow, self.size))  # (B, 3, H, W): T^-1(f)
            reconstruction = warped + keep * (residual_high + resize(residual_low, self.size))
        else:
            warped = warp(downsample(face, 4), flow)  # (B, 3, H/4, W/4): T^-1(f)
            low = keep * residual_low + resize(warped, self.size // 2)  # R^L + U[T^-1(f)]
            reconstruction = keep * residual_high + resize(low, self.size)  # eq. 2
        return PoseReconstruction(reconstruction, pose_code, flow, warped, residual_low, residual_high)

    def forward(
        self, frame: torch.Tensor, face: torch.Tensor, *, residuals: bool = True, views: torch.Tensor | None = None
    ) -> PoseReconstruction:
        """frame: (B, 3, H, W) in [-1, 1], what the encoder sees (the target, or an augmented copy of it);
        face: (B, 3, H, W), its video's embedded face. `residuals` as in `decode`. `views` (V, 3, H, W): further
        frames to encode, not decode, in the same pass (the contrastive term's, `model.losses`); their codes come
        back as `view_codes`. Through `forward`, so that a DistributedDataParallel wrapper sees them."""
        if views is None:
            return self.decode(self.encode(frame), face, residuals=residuals)
        codes = self.encode(torch.cat([frame, views]))
        return self.decode(codes[: len(frame)], face, residuals=residuals)._replace(view_codes=codes[len(frame) :])
