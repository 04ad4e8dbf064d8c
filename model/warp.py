"""Pure warping and resampling helpers: displacement fields, bilinear sampling, total variation, flow pictures.

Paper sec. 3.1: both embedders move pixels with a displacement field through a bilinear sampling kernel
(Jaderberg et al. 2015); eq. 2's upsampling operator U is `resize`; eq. 4's smoothness term is `total_variation`.

Choices made where the paper is silent:
- Backward warping: ``warp(img, flow)(p) = img(p + flow(p))``, the only kind bilinear sampling gives. The paper's
  "pixel (u, v) moves to (u + du, v + dv)" is read as the field's sampling direction, as in deforming autoencoders.
- Flow units are normalised image coordinates (``[-1, 1]`` spans the image), channel 0 horizontal (x, u), channel 1
  vertical (y, v) — grid_sample's own order. A field means the same motion at every resolution, so the pose
  embedder's W/4 warp and the face embedder's W warp share units and eq. 4 weighs them alike.
- ``ALIGN_CORNERS = False``: pixel-area convention, PyTorch's default; resizing by 2 and back keeps content in
  place, and one pixel is ``2 / W`` in flow units at every size. It is recorded in `ModelConfig.align_corners`.
- ``PADDING_MODE = "border"``: samples outside the image repeat its edge rather than pull in black (-1 would be
  black, 0 grey), so a warp that pushes the face slightly out of frame does not paint a band the residuals must undo.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

ALIGN_CORNERS = False  # every grid_sample / interpolate in model/ passes this; see the module docstring
PADDING_MODE = "border"  # grid_sample's padding for samples that fall outside the source image


def identity_grid(
    height: int, width: int, *, device: torch.device | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """The sampling grid that reproduces the image: `(1, H, W, 2)`, last axis (x, y) in normalised coordinates."""
    if ALIGN_CORNERS:
        xs = torch.linspace(-1.0, 1.0, width, device=device, dtype=dtype)
        ys = torch.linspace(-1.0, 1.0, height, device=device, dtype=dtype)
    else:  # pixel centres: (2i + 1) / W - 1
        xs = (torch.arange(width, device=device, dtype=dtype) * 2 + 1) / width - 1
        ys = (torch.arange(height, device=device, dtype=dtype) * 2 + 1) / height - 1
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")  # each (H, W)
    return torch.stack((grid_x, grid_y), dim=-1).unsqueeze(0)  # (1, H, W, 2)


def pixels_to_flow(pixels: torch.Tensor) -> torch.Tensor:
    """A displacement in pixels `(B, 2, H, W)` (x then y) as a flow in normalised units at that resolution."""
    height, width = pixels.shape[-2:]
    span = torch.tensor([width, height], dtype=pixels.dtype, device=pixels.device)
    if ALIGN_CORNERS:
        span = span - 1
    return pixels * (2.0 / span).view(1, 2, 1, 1)


def flow_to_grid(flow: torch.Tensor) -> torch.Tensor:
    """Displacement field `(B, 2, H, W)` in normalised units to grid_sample's grid `(B, H, W, 2)`, in float32.

    Always float32: a bf16 grid (CUDA autocast) has 8 significant bits, so coordinates near 1 round by 2**-8 of
    the half-width, about 0.5 px at 256 px, and every warp would shift pixels by up to a pixel.
    """
    assert flow.dim() == 4 and flow.shape[1] == 2, f"flow must be (B, 2, H, W), got {tuple(flow.shape)}"
    height, width = flow.shape[-2:]
    base = identity_grid(height, width, device=flow.device)  # (1, H, W, 2), float32
    return base + flow.float().permute(0, 2, 3, 1)  # (B, H, W, 2): channels last, as grid_sample wants


def upsample_flow(flow: torch.Tensor, size: int) -> torch.Tensor:
    """A flow `(B, 2, h, w)` resampled to `(B, 2, size, size)`; normalised units mean the same motion at any size."""
    return F.interpolate(flow.float(), size=(size, size), mode="bilinear", align_corners=ALIGN_CORNERS)


def warp(img: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Bilinearly sample `img` at `p + flow(p)`.

    img: (B, C, Hi, Wi); flow: (B, 2, H, W) in normalised units. Returns (B, C, H, W): the output has the flow's
    resolution, whatever the source's.
    """
    assert img.dim() == 4 and img.shape[0] == flow.shape[0], f"img {tuple(img.shape)} vs flow {tuple(flow.shape)}"
    grid = flow_to_grid(flow)  # float32 whatever the autocast dtype (flow_to_grid)
    with torch.autocast(img.device.type, enabled=False):
        return F.grid_sample(img.float(), grid, mode="bilinear", padding_mode=PADDING_MODE, align_corners=ALIGN_CORNERS)


def resize(img: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of `(B, C, H, W)` to `(B, C, size, size)`: eq. 2's upsampling operator U."""
    return F.interpolate(img, size=(size, size), mode="bilinear", align_corners=ALIGN_CORNERS)


def downsample(img: torch.Tensor, factor: int) -> torch.Tensor:
    """Area (box) downsampling of `(B, C, H, W)` by an integer `factor`: no aliasing, no corner convention."""
    return F.avg_pool2d(img, kernel_size=factor) if factor > 1 else img


def total_variation(flow: torch.Tensor) -> torch.Tensor:
    """Eq. 4's E(|grad_u T|_1 + |grad_v T|_1) for a field `(..., C, H, W)`: mean absolute horizontal difference
    plus mean absolute vertical difference, a scalar."""
    horizontal = (flow[..., :, 1:] - flow[..., :, :-1]).abs().mean()
    vertical = (flow[..., 1:, :] - flow[..., :-1, :]).abs().mean()
    return horizontal + vertical


def flow_to_colour(flow: torch.Tensor, max_norm: float | None = None) -> torch.Tensor:
    """A picture of a flow `(B, 2, H, W)`: hue is direction, saturation is length (relative to `max_norm`, by
    default the largest in the batch); zero flow is white. Returns `(B, 3, H, W)` in [-1, 1] like every image."""
    assert flow.dim() == 4 and flow.shape[1] == 2, f"flow must be (B, 2, H, W), got {tuple(flow.shape)}"
    flow = flow.detach()  # a picture, not part of any loss
    norm = flow.norm(dim=1, keepdim=True)  # (B, 1, H, W)
    scale = norm.amax().clamp_min(1e-8) if max_norm is None else max_norm
    hue = (torch.atan2(flow[:, 1:2], flow[:, 0:1]) / (2 * math.pi)) % 1.0  # (B, 1, H, W) in [0, 1)
    saturation = (norm / scale).clamp(0.0, 1.0)
    # HSV -> RGB with value 1: channel n is 1 - s * clamp(min(k, 4 - k), 0, 1), k = (n + 6h) mod 6, n = 5, 3, 1
    offsets = torch.tensor([5.0, 3.0, 1.0], device=flow.device, dtype=flow.dtype).view(1, 3, 1, 1)
    k = (offsets + hue * 6) % 6  # (B, 3, H, W)
    rgb = 1 - saturation * torch.minimum(k, 4 - k).clamp(0.0, 1.0)
    return rgb * 2 - 1
