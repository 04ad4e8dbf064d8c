"""SynthVox's scenes: what surrounds a head in one video (backdrop, shirt, light, framing), never who it is.

A `Scene` is drawn per video, independent of the identity (DESIGN.md, "The pose code must carry motion, not
appearance"): two videos of one person differ in backdrop, clothes, light and framing, and a backdrop says
nothing about whose video it is. `Scene()` is the neutral scene: a grey backdrop darkening towards the bottom, a
grey shirt, one white light above the camera, the head centred at its nominal size.

Choices made:
- The backdrop is a vertical gradient between two related colours with blurred colour blobs (an out-of-focus
  room), of any hue, always dark. Its brightness cannot depend on the skin (v1 kept it darker than the skin: that
  tied scene to identity), and OpenCV's Haar cascade (the check that a render reads as a face) misses dark skin
  before any backdrop not much darker than it: on seed 0's faces, dark skin is found in 100% of near-frontal
  frames before a grey backdrop of brightness 0.1, 0-35% at 0.2-0.3 and 30-55% at 0.45-0.9 (light skin 80-100%
  throughout). A fifth of bright walls took the detection rate of 16 identities x 2 videos of seed 5 from 0.87
  to 0.79, so there are none: BACKDROP_VALUES stays below the darkest skin.
- The light stays within LIGHT_AZIMUTH_MAX of the camera and a little above it: a face lit steeply from above
  loses its eyes in shadow and, for the detector, its face. Its tint is a warm-to-cool white balance on everything
  the light falls on (not the backdrop).
- Camera distance and offset are moderate (head scale within 10%, offset within 6% of the frame) so the frames
  stay like VoxCeleb's face crops; they move the image window (a crop), not the camera, so perspective is as is.
- Each video's scene comes from its own random stream, `SeedSequence(seed, spawn_key=(STREAM_SCENE, identity,
  video))`, apart from the identity and trajectory streams (`synthvox`'s keys 0-2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RGB = tuple[float, float, float]

STREAM_SCENE = 3  # spawn key of the scene stream; `synthvox` uses 0 (spread), 1 (identity), 2 (trajectory)
NEUTRAL_LIGHT = (0.0, 0.35 / float(np.hypot(0.35, 1.0)), 1.0 / float(np.hypot(0.35, 1.0)))  # above the camera
NEUTRAL_BACKDROP = (0.1, 0.1, 0.1)  # dark: every skin tone stands out (module docstring)
NEUTRAL_FADE = 0.8  # the neutral backdrop's bottom row is this bright relative to its top: a hint of studio light
BACKDROP_VALUES = (0.03, 0.14)  # backdrop brightness (HSV value) range, below the darkest skin (module docstring)
BACKDROP_SATURATION = (0.1, 0.6)
BACKDROP_FADE = (0.6, 1.0)  # the bottom colour's brightness relative to the top's
BACKDROP_HUE_SHIFT = 0.08  # the bottom colour's hue differs from the top's by at most this (of a full turn)
BLOB_CELLS = 4  # the blob texture is a BLOB_CELLS x BLOB_CELLS grid of colours, smoothly interpolated
BLOB_CONTRAST_MAX = 0.12  # largest colour deviation of the blobs
SHIRT_SATURATION, SHIRT_VALUE = (0.15, 0.8), (0.15, 0.85)
LIGHT_AZIMUTH_MAX = 25.0  # degrees either side of the camera
LIGHT_ELEVATION = (5.0, 30.0)  # degrees above the camera's axis (the neutral light: 19.3)
LIGHT_INTENSITY = (0.85, 1.15)
LIGHT_WARMTH_MAX = 0.08  # white balance: red up and blue down by this share (warm), or the reverse (cool)
HEAD_SCALE = (0.9, 1.1)  # the head's size in the frame relative to the nominal framing
HEAD_OFFSET_MAX = 0.06  # the head's shift in the frame, as a share of the frame's side, each axis


@dataclass(frozen=True)
class Scene:
    """Everything in a video's frames that is neither the head nor its motion. Colours are linear RGB in [0, 1]."""

    backdrop_top: RGB = NEUTRAL_BACKDROP  # backdrop colour along the top row
    backdrop_bottom: RGB = tuple(c * NEUTRAL_FADE for c in NEUTRAL_BACKDROP)  # ...and along the bottom row
    blob_contrast: float = 0.0  # strength of the blurred colour blobs on the backdrop; 0: a plain gradient
    blob_seed: int = 0  # which blobs
    shirt_color: RGB = (0.45, 0.45, 0.45)
    # unit vector towards the lamp, world axes: x image right, y up, z towards the camera
    light_direction: tuple[float, float, float] = NEUTRAL_LIGHT
    light_intensity: float = 1.0  # scales all light on the head and body
    light_tint: RGB = (1.0, 1.0, 1.0)  # colour of the light, per channel
    head_scale: float = 1.0  # > 1: a closer camera, a bigger head
    head_offset: tuple[float, float] = (0.0, 0.0)  # the head's shift as a share of the frame's side: right, down

    @classmethod
    def for_video(cls, seed: int, identity_index: int, video_index: int) -> Scene:
        """The scene of video `video_index` of identity `identity_index` in the collection made with `seed`: the
        same arguments give the same scene, and the identity only selects a stream, never the distribution."""
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAM_SCENE, identity_index, video_index)))
        hue, saturation, value = rng.random(), rng.uniform(*BACKDROP_SATURATION), rng.uniform(*BACKDROP_VALUES)
        bottom_hue = hue + rng.uniform(-BACKDROP_HUE_SHIFT, BACKDROP_HUE_SHIFT)
        azimuth, elevation = (
            np.radians(rng.uniform(-LIGHT_AZIMUTH_MAX, LIGHT_AZIMUTH_MAX)),
            np.radians(rng.uniform(*LIGHT_ELEVATION)),
        )
        warmth = rng.uniform(-LIGHT_WARMTH_MAX, LIGHT_WARMTH_MAX)
        return cls(
            backdrop_top=hsv(hue, saturation, value),
            backdrop_bottom=hsv(bottom_hue % 1.0, saturation, value * rng.uniform(*BACKDROP_FADE)),
            blob_contrast=float(rng.uniform(0.0, BLOB_CONTRAST_MAX)),
            blob_seed=int(rng.integers(2**31)),
            shirt_color=hsv(rng.random(), rng.uniform(*SHIRT_SATURATION), rng.uniform(*SHIRT_VALUE)),
            light_direction=(
                float(np.sin(azimuth) * np.cos(elevation)),
                float(np.sin(elevation)),
                float(np.cos(azimuth) * np.cos(elevation)),
            ),
            light_intensity=float(rng.uniform(*LIGHT_INTENSITY)),
            light_tint=(1.0 + warmth, 1.0, 1.0 - warmth),
            head_scale=float(rng.uniform(*HEAD_SCALE)),
            head_offset=(
                float(rng.uniform(-HEAD_OFFSET_MAX, HEAD_OFFSET_MAX)),
                float(rng.uniform(-HEAD_OFFSET_MAX, HEAD_OFFSET_MAX)),
            ),
        )

    def backdrop(self, size: int) -> np.ndarray:
        """The backdrop as `(size * size, 3)` RGB rows in raster order: the vertical gradient plus the blobs."""
        fade = np.linspace(0.0, 1.0, size)[:, None, None]  # (size, 1, 1): 0 at the top row, 1 at the bottom
        top, bottom = np.asarray(self.backdrop_top), np.asarray(self.backdrop_bottom)
        image = np.broadcast_to(top + (bottom - top) * fade, (size, size, 3))  # (size, size, 3)
        if self.blob_contrast > 0.0:
            cells = np.random.default_rng(self.blob_seed).uniform(-1.0, 1.0, (BLOB_CELLS, BLOB_CELLS, 3))
            spread = _interpolation(BLOB_CELLS, size)  # (size, cells)
            image = image + self.blob_contrast * np.einsum("yi,ijc,xj->yxc", spread, cells, spread)
        return np.clip(image, 0.0, 1.0).reshape(size * size, 3)


def _interpolation(cells: int, size: int) -> np.ndarray:
    """`(size, cells)` weights that smoothly spread `cells` values over `size` pixels (cosine interpolation)."""
    at = np.linspace(0.0, cells - 1.0, size)  # each pixel's position on the cell grid
    lower = np.minimum(at.astype(int), cells - 2)
    blend = 0.5 - 0.5 * np.cos(np.pi * (at - lower))  # 0 at a cell centre, smooth in between
    weights = np.zeros((size, cells))
    weights[np.arange(size), lower] = 1.0 - blend
    weights[np.arange(size), lower + 1] = blend
    return weights


def hsv(hue: float, saturation: float, value: float) -> RGB:
    """An RGB triple from hue, saturation, value in [0, 1]."""
    k = (np.array([5.0, 3.0, 1.0]) + hue * 6.0) % 6.0
    rgb = value - value * saturation * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return tuple(float(c) for c in rgb)
