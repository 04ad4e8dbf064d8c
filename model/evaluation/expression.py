"""Expression where it shows: cross-identity reenactment on SynthVox judged inside the mouth and eye regions
(issue 11, "expression metrics on the mouth and eye regions").

The ground truth of a cross-identity pair is the source identity rendered in the driving frame's pose, in the scene
of the source's video (`cross_identity`). Its **mouth region** is the box around every pixel that the mouth
parameters (mouth_open, smile) change in that identity, scene and head pose; its **eye region** the box around every
pixel that blink and brow_raise change (eyes and brows). L1 inside each box compares the reenactment, the unchanged
source frame and the driving frame with the ground truth: a model that carries expression beats both there, not
only on the whole face.

Choices:
- Regions come from the renderer, not from dlib landmarks on the ground truth: renders of the same identity and
  head pose with the expression parameters at their extremes mark exactly the pixels an expression can change, in
  every head pose, with no second judge's errors (dlib's frontal detector misses turned heads, which would leave
  the hardest pairs out). Three renders per pair: expression neutral, mouth at its extreme, mouth and eyes at
  theirs; the first two differ in the mouth region, the last two in the eye region.
- A region is the bounding box of the pixels whose render changes by more than `REGION_LEVEL` 8-bit levels at the
  model's size, grown by `REGION_MARGIN` pixels a side: a wrong expression also disturbs the lips' and lids'
  surroundings. A pair whose renders do not change (the region out of sight) is left out of that region's mean.
- L1, not SSIM: at 64 px the boxes are 6-20 pixels a side, about SSIM's 11-pixel window, so SSIM would rest on a
  handful of window positions.
"""

from __future__ import annotations

import numpy as np
import torch

from model.daegan import images_to_frames
from model.data.synthvox import POSE_COLUMNS
from model.evaluation.cross_identity import CrossDraw
from model.evaluation.frames import EvalCollection
from model.evaluation.protocol import ReenactedSet
from model.evaluation.results import RegionL1

REGION_LEVEL = 8.0  # 8-bit levels of change that mark a pixel as part of a region
REGION_MARGIN = 1  # pixels added on each side of a region's box, at the model's size
MOUTH, EYES = ("mouth_open", "smile"), ("blink", "brow_raise")  # the parameters that move each region
REGIONS = ("mouth", "eyes")


def region_boxes(collection: EvalCollection, draws: list[CrossDraw], size: int) -> dict[str, np.ndarray]:
    """For every cross-identity pair of `draws` (in `reenact_cross`'s order), the box of each region at the model's
    frame side `size`: name -> `(N, 4)` int rows (top, bottom, left, right), bottom and right exclusive; a row of
    -1 where the region does not show."""
    mouth_at = [POSE_COLUMNS.index(c) for c in MOUTH]
    eyes_at = [POSE_COLUMNS.index(c) for c in EYES]
    boxes: dict[str, list[np.ndarray]] = {name: [] for name in REGIONS}
    for draw in draws:
        source = collection.frames.loc[draw.source.sources[0]]  # the ground truth's identity and scene
        neutral = draw.driver.poses[draw.driving].copy()  # (M, 7): the driver's head pose
        neutral[:, mouth_at + eyes_at] = 0.0
        mouth = neutral.copy()
        mouth[:, mouth_at] = 1.0
        both = mouth.copy()
        both[:, eyes_at] = 1.0
        renders = [
            images_to_frames(collection.render_truth(str(source["identity"]), str(source["video"]), poses), size)
            for poses in (neutral, mouth, both)
        ]
        boxes["mouth"].append(_boxes(renders[0], renders[1]))
        boxes["eyes"].append(_boxes(renders[1], renders[2]))
    return {name: np.concatenate(parts) if parts else np.zeros((0, 4), int) for name, parts in boxes.items()}


def _boxes(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """(N, 4) boxes around the pixels where `(N, 3, S, S)` frames a and b differ (module docstring)."""
    changed = ((a - b).abs().amax(dim=1) > REGION_LEVEL / 127.5).numpy()  # (N, S, S)
    size = changed.shape[-1]
    out = np.full((len(changed), 4), -1, dtype=int)
    for i, mask in enumerate(changed):
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if len(rows):
            out[i] = (
                max(rows[0] - REGION_MARGIN, 0),
                min(rows[-1] + 1 + REGION_MARGIN, size),
                max(cols[0] - REGION_MARGIN, 0),
                min(cols[-1] + 1 + REGION_MARGIN, size),
            )
    return out


def region_l1(result: ReenactedSet, boxes: dict[str, np.ndarray]) -> dict[str, RegionL1]:
    """Mean L1 against the ground truth inside each region: the reenactment, the unchanged source frame and the
    driving frame; with the number of pairs each region counts."""
    images = {
        key: t.detach().float().cpu()
        for key, t in (
            ("model", result.reenacted),
            ("source", result.source),
            ("driving", result.driving),
            ("truth", result.target),
        )
    }
    out: dict[str, RegionL1] = {}
    for name, rows in boxes.items():
        assert len(rows) == len(result.reenacted), (len(rows), len(result.reenacted))
        kept = np.flatnonzero(rows[:, 0] >= 0)
        scores: dict[str, list[float]] = {"model": [], "source": [], "driving": []}
        for i in kept:
            top, bottom, left, right = rows[i]
            truth = images["truth"][i, :, top:bottom, left:right]
            for key, values in scores.items():
                values.append(float((images[key][i, :, top:bottom, left:right] - truth).abs().mean()))
        mean = {key: float(np.mean(v)) if v else float("nan") for key, v in scores.items()}
        out[name] = RegionL1(mean["model"], mean["source"], mean["driving"], len(kept))
    return out
