"""Pose-preserving augmentation of the pose embedder's input (a departure from the paper; DESIGN.md, "The pose code
must carry motion").

P's encoder sees each target frame with its colours, sharpness and framing disturbed, while P must still rebuild the
undisturbed frame from the embedded face. Whatever the disturbance changes (skin tone, light, backdrop colour,
camera distance) is then useless to the pose code, and only what it keeps (where the head points, what the mouth,
eyes and brows do) is worth encoding. Burkov et al. 2020 ("Neural Head Reenactment with Latent Pose Descriptors")
augment their pose encoder's input this way for the same reason.

Choices made:
- Every parameter is drawn per frame on the CPU, then moved to the batch's device: the draws are the same on any
  device. The trainer draws from `step_generator`, a generator of its own per (seed, step, rank): a resumed run
  draws exactly what the uninterrupted run drew, which torch's global generator cannot promise (a DataLoader
  iterator takes a seed from it when it starts, and a resumed run starts one mid-epoch). Without a generator the
  draws come from torch's global one.
- Colour operations work on [0, 1] intensities in this order: brightness, contrast about the frame's mean grey,
  saturation about each pixel's grey (Rec. 601 luma weights), hue as a rotation of RGB about the grey axis, then
  greyscale. Each is a plain linear map, as in torchvision's ColorJitter (not a dependency here).
- Blur is a separable Gaussian with a per-frame sigma, applied as one grouped convolution over the batch.
- Scale and shift are one affine resampling per frame (bilinear, border padding, float32 grid), small enough that
  the head stays in frame; the code must then not depend on exactly where the head sits.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from model.config import AugmentConfig
from model.warp import ALIGN_CORNERS, PADDING_MODE

LUMA = (0.299, 0.587, 0.114)  # Rec. 601 weights of R, G, B in grey
STREAM_AUGMENT = 0  # spawn key of the augmentation draws under the training seed (`step_generator`) ...
STREAM_CONTRAST = 1  # ... and of the contrastive term's views (`loss.contrast_weight`), drawn independently


def step_generator(seed: int, step: int, rank: int = 0, stream: int = STREAM_AUGMENT) -> torch.Generator:
    """The CPU generator of one training step's draws on one process: a pure function of (seed, step, rank,
    stream)."""
    state = np.random.SeedSequence(seed, spawn_key=(stream, step, rank)).generate_state(1, np.uint64)
    return torch.Generator().manual_seed(int(state[0]))


def _uniform(count: int, low: float, high: float, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(count, generator=generator) * (high - low) + low  # (count,) on the CPU: the same on any device


def _grey(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1, H, W) luma."""
    weights = torch.tensor(LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)


def _hue_rotation(angles: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (B, 3, 3) about the grey axis (1, 1, 1)/sqrt(3) by `angles` radians (Rodrigues)."""
    cos, sin = torch.cos(angles)[:, None, None], torch.sin(angles)[:, None, None]
    axis = torch.full((3,), 1 / math.sqrt(3))
    cross = torch.tensor([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    outer = torch.outer(axis, axis)
    return cos * torch.eye(3) + sin * cross + (1 - cos) * outer  # (B, 3, 3)


def _blur(x: torch.Tensor, sigmas: torch.Tensor, max_sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of each frame of (B, C, H, W) with its own sigma (pixels); sigma 0 leaves it alone."""
    b, c, h, w = x.shape
    radius = max(1, math.ceil(3 * max_sigma))
    taps = torch.arange(-radius, radius + 1, dtype=torch.float32)  # (T,)
    kernels = torch.exp(-0.5 * (taps[None] / sigmas.clamp_min(1e-3)[:, None]) ** 2)  # (B, T)
    kernels = (kernels / kernels.sum(dim=1, keepdim=True)).to(x.device, x.dtype)
    kernels = kernels.repeat_interleave(c, dim=0)  # (B*C, T): one kernel per channel of each frame
    flat = F.pad(x.reshape(1, b * c, h, w), (radius, radius, radius, radius), mode="replicate")
    flat = F.conv2d(flat, kernels[:, None, None, :], groups=b * c)  # horizontal pass
    flat = F.conv2d(flat, kernels[:, None, :, None], groups=b * c)  # vertical pass
    return flat.view(b, c, h, w)


def augment_pose_input(
    img: torch.Tensor, config: AugmentConfig, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """img: (B, 3, H, W) in [-1, 1] -> the same frames, each disturbed as `config` allows (module docstring); the
    draws come from the CPU `generator` (`step_generator`), else from torch's global one."""
    assert img.dim() == 4 and img.shape[1] == 3, f"img must be (B, 3, H, W), got {tuple(img.shape)}"
    if not config.enabled:
        return img
    b, device = img.shape[0], img.device
    x = (img.float() + 1) / 2  # [0, 1]

    def per_frame(values: torch.Tensor) -> torch.Tensor:
        return values.to(device).view(b, 1, 1, 1)

    if config.brightness:
        x = x * per_frame(_uniform(b, 1 - config.brightness, 1 + config.brightness, generator))
    if config.contrast:
        mean = _grey(x).mean(dim=(2, 3), keepdim=True)  # (B, 1, 1, 1)
        x = (x - mean) * per_frame(_uniform(b, 1 - config.contrast, 1 + config.contrast, generator)) + mean
    if config.saturation:
        grey = _grey(x)
        x = grey + (x - grey) * per_frame(_uniform(b, 1 - config.saturation, 1 + config.saturation, generator))
    if config.hue:
        rotation = _hue_rotation(_uniform(b, -1, 1, generator) * config.hue * 2 * math.pi).to(device)  # (B, 3, 3)
        x = torch.einsum("bij,bjhw->bihw", rotation, x)
    if config.greyscale:
        grey_frames = per_frame((torch.rand(b, generator=generator) < config.greyscale).float())
        x = grey_frames * _grey(x).expand_as(x) + (1 - grey_frames) * x
    if config.blur:
        x = _blur(x, _uniform(b, 0, config.blur, generator), config.blur)
    if config.scale or config.shift:
        zoom = _uniform(b, 1 - config.scale, 1 + config.scale, generator)
        theta = torch.zeros(b, 2, 3)
        theta[:, 0, 0] = theta[:, 1, 1] = 1 / zoom  # sampling a smaller window enlarges the content
        shift = _uniform(2 * b, -1, 1, generator).view(b, 2) * config.shift  # (B, 2) fractions of the side
        theta[:, :, 2] = shift * 2  # normalised units: 2 = the side
        grid = F.affine_grid(theta.to(device), list(x.shape), align_corners=ALIGN_CORNERS)  # (B, H, W, 2) float32
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode=PADDING_MODE, align_corners=ALIGN_CORNERS)
    return (x.clamp(0, 1) * 2 - 1).to(img.dtype)
