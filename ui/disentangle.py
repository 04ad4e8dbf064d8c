"""The paper's Fig. 7 for one video: what the face embedder made of its frames and how the pose embedder warps it
back into each frame.

Paper sec. 3.1 and Fig. 7: F warps each of the K source frames by T_k and fuses them into the embedded face f
(eq. 1); for a target frame, P's code drives the warp T^-1 of f and the residuals that give the reconstruction
(eq. 2). Flows are drawn as colour (hue = direction, saturation = length: `model.warp.flow_to_colour`).

Choices:
- Both embedders' flows are coloured on one absolute scale (`FLOW_FULL_SCALE`), not each relative to its own
  largest vector: a model whose pose warp is nearly still then shows white, not a saturated colour that hides how
  small the motion is, and the two rows can be compared.
- The W/4 warps are enlarged (nearest neighbour) to the frame size, so each column of the figure lines up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from model.daegan import DAEGAN
from model.warp import flow_to_colour

FLOW_FULL_SCALE = 0.05  # flow length drawn fully saturated, in normalised units (2 = the image width): 2.5% of it


@dataclass(frozen=True)
class Figure7:
    """Fig. 7's pictures, RGB uint8 `(S, S, 3)` each."""

    sources: list[np.ndarray]  # the K source frames x_k, as the model saw them
    source_flows: list[np.ndarray]  # F's displacement field T_k per source frame, as colour
    face: np.ndarray  # the embedded face f
    targets: list[np.ndarray]  # the N target frames
    flows: list[np.ndarray]  # P's warp T^-1 per target, as colour
    warped: list[np.ndarray]  # T^-1(f): the embedded face warped into each target's pose
    reconstructions: list[np.ndarray]  # x of eq. 2 per target


def figure7(model: DAEGAN, sources: Sequence[np.ndarray], targets: Sequence[np.ndarray]) -> Figure7:
    """Reconstruct each target frame from the embedded face of the source frames (eq. 2), with every warp."""
    rec = model.reconstruct(list(sources), list(targets))
    size = model.size
    return Figure7(
        sources=list(model.to_images(model.to_frames(list(sources)))),
        source_flows=_enlarged(model.to_images(flow_to_colour(rec.face_flow, FLOW_FULL_SCALE)), size),
        face=model.to_images(rec.face),
        targets=list(model.to_images(model.to_frames(list(targets)))),
        flows=_enlarged(model.to_images(flow_to_colour(rec.flow, FLOW_FULL_SCALE)), size),
        warped=_enlarged(model.to_images(rec.warped), size),
        reconstructions=list(model.to_images(rec.reconstruction)),
    )


def _enlarged(images: np.ndarray, size: int) -> list[np.ndarray]:
    """(N, h, w, 3) uint8 pictures blown up to (size, size) with nearest neighbour: each flow vector stays a block."""
    return [
        img if img.shape[0] == size else cv2.resize(img, (size, size), interpolation=cv2.INTER_NEAREST)
        for img in images
    ]
