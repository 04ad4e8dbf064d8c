"""Reenactment as the UI offers it: one source face drawn in the pose of each driving face (the query and its hits).

Paper sec. 3.2: at test time the face embedder F and the pose embedder P may see different people, so the source's
embedded face f, rendered with a driver's pose code p, is the source in the driver's pose (`DAEGAN.reenact`).

"Best source frame" (not in the paper): distortion grows with the gap between the source's pose and the driver's,
and the index already knows every source frame's pose. So, per driver, the source video's frame whose stored pose
code is nearest (cosine) to the driver's becomes that driver's single source frame (K = 1), instead of the same
K frames for every driver.

Results, drivers and source frames are `model.reenact.output_size` pixels a side (128 for the small model): P's
decoder draws from the source frames' own pixels at that size (`DAEGAN.draw`), so stored crops larger than the
model's S keep their detail.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from model.daegan import DAEGAN, Renderer
from model.data.dataset import to_square
from model.reenact import output_size


@dataclass(frozen=True)
class ReenactResult:
    """Per driver: the driving crop, the source frame used (best-source only) and the rendered face."""

    drivers: list[np.ndarray]  # (H, H, 3) uint8 each, H = output_size
    results: list[np.ndarray]  # (H, H, 3) uint8 each: the source face in that driver's pose
    chosen: list[int] | None  # best-source: for each driver, the position of its source frame; else None
    chosen_frames: list[np.ndarray] | None  # best-source: that frame, (H, H, 3) uint8, per driver; else None
    renderer: Renderer  # "generator" (G) or "decoder" (P's decoder, eq. 2)

    def strips(self) -> list[np.ndarray]:
        """One picture per driver, side by side: driver | (its chosen source frame) | result, `(H, 2-3 H, 3)`."""
        used = self.chosen_frames or [None] * len(self.drivers)
        return [
            np.concatenate([part for part in (driver, source, result) if part is not None], axis=1)
            for driver, source, result in zip(self.drivers, used, self.results)
        ]


def nearest_sources(source_codes: np.ndarray, driver_codes: np.ndarray) -> np.ndarray:
    """For each driver, the position of the source whose unit pose code is most cosine-similar to its own: `(N,)`.

    source_codes: (M, dim), driver_codes: (N, dim), both L2-normalised. Ties go to the earlier source.
    """
    assert source_codes.ndim == 2 and driver_codes.ndim == 2 and source_codes.shape[1] == driver_codes.shape[1], (
        source_codes.shape,
        driver_codes.shape,
    )
    return np.argmax(driver_codes @ source_codes.T, axis=1)  # (N, M) similarities -> (N,)


def reenact(model: DAEGAN, sources: Sequence[np.ndarray], drivers: Sequence[np.ndarray]) -> ReenactResult:
    """The face of the K `sources` (frames of one person) in the pose of each driver (RGB uint8 crops)."""
    out = model.reenact(list(sources), list(drivers), size=output_size(model, None))
    return ReenactResult(_crops(model, drivers), list(model.to_images(out.image)), None, None, out.renderer)


def reenact_best_source(
    model: DAEGAN,
    source_codes: np.ndarray,
    drivers: Sequence[np.ndarray],
    load: Callable[[list[int]], list[np.ndarray]],
) -> ReenactResult:
    """Each driver rendered from the one source frame nearest its pose.

    `source_codes`: the unit pose codes `(M, dim)` of the candidate source frames (one video), as the index stores
    them; `load(positions)` reads those frames. Only the chosen frames are read, and each is embedded once.
    """
    raw = model.encode_pose(list(drivers), normalize=False)  # (N, pose_dim): what the renderer takes
    chosen = nearest_sources(source_codes, torch.nn.functional.normalize(raw, dim=1).numpy())
    used, which = np.unique(chosen, return_inverse=True)  # each chosen frame once
    size = output_size(model, None)
    crops = [to_square(frame, size) for frame in load(used.tolist())]  # (size, size, 3) each
    images = torch.empty(len(raw), 3, size, size)
    for position, crop in enumerate(crops):  # each chosen frame embedded once, drawn for its drivers
        mine = torch.as_tensor(which == position)
        images[mine] = model.draw([crop], raw[mine], size=size)  # pasted over that frame
    return ReenactResult(
        _crops(model, drivers),
        list(model.to_images(images)),
        chosen.tolist(),
        [crops[i] for i in which],
        model.default_renderer,
    )


def _crops(model: DAEGAN, images: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Images as the results are drawn: square, `output_size` pixels (so strips line up)."""
    return [to_square(img, output_size(model, None)) for img in images]
