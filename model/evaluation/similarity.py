"""Per-image similarity between two stacks of frames: SSIM (Wang et al. 2004, the paper's sec. 4 metric) and L1.

Choices:
- SSIM comes from pytorch-msssim (a small, maintained package that depends on torch alone; torchvision is not
  allowed beside our torch): Gaussian window of side 11 and sigma 1.5, K1 = 0.01, K2 = 0.03, no padding (the
  border the window cannot cover is left out), computed per colour channel on images in [0, 1] and averaged over
  pixels and channels. This is Wang et al.'s definition and what `skimage.metrics.structural_similarity` computes
  with ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1``; a test checks they agree.
- L1 is the mean absolute difference over pixels and channels in the model's [-1, 1] units (x 127.5 = 8-bit levels).
- Both take `(N, 3, S, S)` floats in [-1, 1] (what `DAEGAN.to_frames` and the renderers give) and return one value
  per image pair, `(N,)`, so callers can average, compare or keep them per video.
"""

from __future__ import annotations

import torch

SSIM_WINDOW = 11  # Wang et al. 2004: 11 x 11 Gaussian window ...
SSIM_SIGMA = 1.5  # ... of standard deviation 1.5 pixels
SSIM_K = (0.01, 0.03)  # Wang et al.'s stabilising constants K1, K2


def _check(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape or a.dim() != 4 or a.shape[1] != 3:
        raise ValueError(
            f"expected two (N, 3, H, W) stacks of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """SSIM of each image pair: `(N, 3, H, W)` x 2 in [-1, 1] -> `(N,)` in [-1, 1], 1 for identical images."""
    from pytorch_msssim import ssim as msssim_ssim  # the eval extra

    _check(a, b)
    if min(a.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW} pixels a side, got {tuple(a.shape[-2:])}")
    x = (a.detach().float().cpu().clamp(-1, 1) + 1) / 2  # [0, 1]
    y = (b.detach().float().cpu().clamp(-1, 1) + 1) / 2
    return msssim_ssim(x, y, data_range=1.0, size_average=False, win_size=SSIM_WINDOW, win_sigma=SSIM_SIGMA, K=SSIM_K)


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of each image pair in [-1, 1] units: `(N, 3, H, W)` x 2 -> `(N,)`, 0 when equal."""
    _check(a, b)
    return (a.detach().float().cpu() - b.detach().float().cpu()).abs().mean(dim=(1, 2, 3))
