"""The source's background kept: a reenacted frame pasted over the source frame it came from (issue 12).

P's decoder redraws the whole frame, background included, from the embedded face; what it draws there is the
source's background warped and smoothed, never quite the source's own pixels. A reenactment should change the head
and leave the rest of the picture alone, so the rendered frame is blended into the source frame through a head
mask: rendered pixels inside it, the source's pixels outside, a feathered seam between.

The mask is the union of two parts:
- the head's place in a face crop: every crop is cut by `data.face_crop` around a detected face (the box, 1 /
  `FACE_MARGIN` of the crop side, raised by `FACE_RAISE`), and the driver's crop is framed the same way, so the
  rendered head sits in the same ellipse of the crop as the source's: that ellipse is always rendered, whole;
- where the head moves over the background: outside the ellipse, the pixels where the rendering differs from the
  source frame by more than the decoder's own error (after a slight blur of both, so that texture does not count).

Choices (the paper is silent; FOMM learns an occlusion map, which needs training that this checkpoint did not have):
- The ellipse's axes, in detector-box sides, take in hair and chin: half-width 0.68 and half-height 0.87 box sides,
  centred 0.1 box sides above the crop's centre (checked by eye on the carphone and astronaut crops).
- Outside the ellipse a pixel counts as changed from `CHANGE_FROM` (0.1, in [-1, 1] units: the decoder's L1 error on
  new faces is about that) and fully from `CHANGE_FROM + CHANGE_RAMP`; a soft ramp, not a threshold, so a pixel
  near the edge does not flicker between the two images from frame to frame.
- Blur, dilation and feathering scale with the frame side (their pixel figures are for 64 px).
- Measured on 20 held-out SynthVox seed-1 videos, each driven by another identity (640 frames; shipped
  checkpoint): SSIM to the rendered ground truth 0.593 pasted against 0.593 unpasted, L1 0.102 against 0.103.
  At 64 px the paste keeps the source's exact pixels without costing the head anything.
"""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np
import torch

from model.data.face_crop import FACE_MARGIN

HEAD_HALF_WIDTH = 0.68  # ellipse half-axes in detector-box sides: the hair beside the face ...
HEAD_HALF_HEIGHT = 0.87  # ... and from the chin to the top of the hair
HEAD_RAISE = 0.1  # ellipse centre above the crop's centre, in box sides (the crop centre is mid-forehead-to-chin)
CHANGE_FROM = 0.1  # mean absolute change ([-1, 1] units) below which a pixel outside the head is the source's
CHANGE_RAMP = 0.1  # ... and above which, plus this, it is fully the rendering's
BLUR_SIGMA = 1.0  # px at 64 px: both images are blurred this much before they are compared
DILATE = 3  # px at 64 px: the changed region grows by this square, so a moved outline is taken whole
FEATHER_SIGMA = 1.5  # px at 64 px: the mask's edge is blurred this much, so no seam shows
SNAP = 1 / 255  # mask weights within one 8-bit level of 0 or 1 become 0 or 1: the Gaussian's tails change no pixel


class Composite(NamedTuple):
    """Rendered frames pasted over their source frames."""

    image: torch.Tensor  # (N, 3, S, S) in [-1, 1]
    mask: torch.Tensor  # (N, 1, S, S) in [0, 1]: 1 where the rendered frame shows, 0 where the source does


def head_ellipse(size: int) -> np.ndarray:
    """The head's place in a `size`-pixel face crop (module docstring): `(size, size)` float32, 1 inside."""
    box = 1.0 / FACE_MARGIN  # detector box side in crop sides
    centre = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5  # pixel centres, crop centre at 0
    x, y = centre[None, :], centre[:, None] + HEAD_RAISE * box
    return (((x / (HEAD_HALF_WIDTH * box)) ** 2 + (y / (HEAD_HALF_HEIGHT * box)) ** 2) <= 1.0).astype(np.float32)


def paste_over_source(rendered: torch.Tensor, source: torch.Tensor) -> Composite:
    """Paste each rendered frame `(N, 3, S, S)` over its source frame (`(N, 3, S, S)`, or one `(3, S, S)` for all)
    through the head mask (module docstring). Both in [-1, 1]; the result is on the rendered frames' device."""
    n, _, size, _ = rendered.shape
    source = source.expand_as(rendered) if source.dim() == 3 else source
    if source.shape != rendered.shape:
        raise ValueError(f"source {tuple(source.shape)} does not match the rendered frames {tuple(rendered.shape)}")
    scale = size / 64
    kernel = np.ones((max(1, round(DILATE * scale)),) * 2, np.uint8)
    ellipse = head_ellipse(size)
    pixels = rendered.detach().float().cpu().permute(0, 2, 3, 1).numpy()  # (N, S, S, 3)
    sources = source.detach().float().cpu().permute(0, 2, 3, 1).numpy()
    masks = np.empty((n, size, size), np.float32)
    for i in range(n):
        change = np.abs(_blur(pixels[i], BLUR_SIGMA * scale) - _blur(sources[i], BLUR_SIGMA * scale)).mean(
            axis=2
        )  # (S, S)
        moved = np.clip((change - CHANGE_FROM) / CHANGE_RAMP, 0.0, 1.0)
        masks[i] = _blur(cv2.dilate(np.maximum(ellipse, moved), kernel), FEATHER_SIGMA * scale)
    masks = np.where(masks < SNAP, 0.0, np.where(masks > 1.0 - SNAP, 1.0, masks)).astype(np.float32)
    mask = torch.from_numpy(masks).unsqueeze(1).to(rendered.device)  # (N, 1, S, S)
    return Composite(mask * rendered + (1 - mask) * source.to(rendered.device, rendered.dtype), mask)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of standard deviation `sigma` pixels, edges replicated."""
    return cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
