"""Finding a face in a picture and cutting the square, VoxCeleb-like crop around it.

The one place that decides what a "face crop" is: `daegan prepare` crops every frame of a video with it, and
`index query` / `daegan reenact` crop a user's photo with `crop_face`, so a query looks like the indexed frames.
The paper (section 4) trains on VoxCeleb's face crops; this reproduces their framing on any video or photo.

Choices (the paper is silent):
- Detector: OpenCV's Haar cascades, shipped inside opencv-python, so no weights are downloaded. The frontal cascade
  runs first on a histogram-equalised grey image; when it finds nothing, fallbacks run together and their hits are
  merged: the profile cascade on the image and on its mirror (it only knows one side), and the frontal cascade on
  the image rotated by a few roll angles, because a tilted head — common in talking-head video — defeats it.
  A fallback face's support is the number of raw detections behind it, summed over passes; those with little
  support next to the best one are dropped, which removes the false hits that rotated images breed. Upright hits
  are all kept: there, a weakly supported face is usually a real one further back.
- Margin: the square's side is `FACE_MARGIN` = 1.9 × the detector box's side, centred `FACE_RAISE` = 0.15 box
  heights above the box centre. A Haar box spans brows to chin; VoxCeleb crops show the whole head, hair and some
  background, the face filling about half the crop width — 1.9 reproduces that (checked by eye on carphone and
  astronaut: 1.8 grazes the hair, 2.0 shows shoulders), and the raise trades collar for hair.
- Padding: where the square leaves the frame, edge pixels are replicated. A constant border draws a hard edge whose
  position tells where the face sat in the frame; networks learn such cues. Replication keeps the colours local.
- Resizing: area averaging when shrinking (no aliasing), bicubic when enlarging.
- Several faces: the largest is cropped (the speaker in front), and the count is returned (`crop_largest_face`) so
  the commands can say how many they saw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from model.data.errors import DataError

FACE_MARGIN = 1.9  # crop side / detector box side: whole head and some background, as VoxCeleb's crops
FACE_RAISE = 0.15  # crop centre above the box centre, in box heights: the box sits low on the head (brows to chin)

FRONTAL_CASCADE = "haarcascade_frontalface_default.xml"
PROFILE_CASCADE = "haarcascade_profileface.xml"  # trained on one side only: run it on the mirror too
SCALE_STEP = 1.1  # detectMultiScale's pyramid step: OpenCV's default, finer steps add little on faces this size
MIN_NEIGHBOURS = 5  # overlapping hits a face needs: OpenCV's recommended value, few false positives on frames
MIN_FACE_FRACTION = 0.08  # smallest face side / shorter image side: talking heads and portraits are larger
MIN_FACE_PIXELS = 24  # the frontal cascade's own window: nothing smaller can be found
DETECT_MAX_SIDE = 640  # images are shrunk to this longer side before detecting: faces stay far above 24 px
ROLL_ANGLES = (-30.0, -15.0, 15.0, 30.0)  # degrees tried for tilted heads; the frontal cascade tolerates ~±10
MERGE_IOU = 0.3  # hits of different fallbacks overlapping this much are one face, averaged
MIN_RELATIVE_SUPPORT = 0.4  # a fallback face needs this share of the best one's support: false hits gather 6-12
# raw detections, real faces 20-60 (measured on rotated astronaut)


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels: top-left corner (x, y), width w, height h."""

    x: float
    y: float
    w: float
    h: float

    @property
    def center(self) -> tuple[float, float]:
        """The box centre (cx, cy) in pixels."""
        return (self.x + self.w / 2, self.y + self.h / 2)

    @property
    def area(self) -> float:
        """Width × height in square pixels."""
        return self.w * self.h

    @staticmethod
    def around(cx: float, cy: float, w: float, h: float) -> Box:
        """The box of size (w, h) centred on (cx, cy)."""
        return Box(cx - w / 2, cy - h / 2, w, h)

    def scaled(self, factor: float) -> Box:
        """The same box in an image resized by `factor` (coordinates and size multiplied)."""
        return Box(self.x * factor, self.y * factor, self.w * factor, self.h * factor)

    def iou(self, other: Box) -> float:
        """Intersection over union with another box: 1 for the same box, 0 when they do not touch."""
        ix = max(0.0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0.0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


def detect_faces(img: np.ndarray) -> list[Box]:
    """The faces the cascades find in an RGB uint8 `(H, W, 3)` image, largest first; empty when none.

    Upright frontal faces are looked for first; only when there are none do the profile and rolled-head fallbacks
    run (six more passes); their hits too weakly supported next to the best one are dropped (`MIN_RELATIVE_SUPPORT`).
    """
    assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8, (img.shape, img.dtype)
    height, width = img.shape[:2]
    shrink = min(1.0, DETECT_MAX_SIDE / max(height, width))
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    if shrink < 1.0:
        grey = cv2.resize(grey, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
    grey = cv2.equalizeHist(grey)
    min_side = max(MIN_FACE_PIXELS, round(MIN_FACE_FRACTION * min(grey.shape)))

    faces = _merge(_run_cascade(FRONTAL_CASCADE, grey, min_side))
    if not faces:
        faces = _merge(_fallback_hits(grey, min_side))
        strongest = max((support for _, support in faces), default=0)
        faces = [(box, support) for box, support in faces if support >= MIN_RELATIVE_SUPPORT * strongest]
    kept = [box.scaled(1 / shrink) for box, _ in faces]
    return sorted(kept, key=lambda box: box.area, reverse=True)


def face_square(box: Box, margin: float = FACE_MARGIN) -> Box:
    """The square crop around a detected face box: side `margin` × the box's longer side, raised toward the hair."""
    side = margin * max(box.w, box.h)
    cx, cy = box.center
    return Box.around(cx, cy - FACE_RAISE * box.h, side, side)


def crop_square(img: np.ndarray, square: Box, size: int) -> np.ndarray:
    """Cut `square` out of an `(H, W, 3)` uint8 image and resize it to `(size, size, 3)`.

    The square is snapped to whole pixels; where it leaves the image, edge pixels are replicated.
    """
    assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8, (img.shape, img.dtype)
    assert size > 0, size
    height, width = img.shape[:2]
    side = max(1, round(square.w))
    x0, y0 = round(square.x), round(square.y)
    rows = np.clip(np.arange(y0, y0 + side), 0, height - 1)  # indices past an edge repeat the edge pixel
    cols = np.clip(np.arange(x0, x0 + side), 0, width - 1)
    crop = img[np.ix_(rows, cols)]  # (side, side, 3)
    interpolation = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return cv2.resize(crop, (size, size), interpolation=interpolation)


class FaceCrop(NamedTuple):
    """A photo's largest face, cropped, and how many faces the photo shows (a user is told when it is several)."""

    crop: np.ndarray  # (size, size, 3) uint8: the largest face, cropped as `daegan prepare` crops frames
    num_faces: int  # faces the detector found, >= 1


def crop_largest_face(img: np.ndarray, size: int, *, source: str | Path) -> FaceCrop:
    """One photo's largest face, cropped as `daegan prepare` crops frames, and the number of faces found.

    `source` names the photo in the `DataError` raised when no face is found. A face partly outside the picture is
    cropped when the detector still finds it (the crop replicates the edge pixels); cut so far that it is not
    found, it is "no face found".
    """
    faces = detect_faces(img)
    if not faces:
        raise DataError(source, "no face found")
    return FaceCrop(crop_square(img, face_square(faces[0]), size), len(faces))


def crop_face(img: np.ndarray, size: int, *, source: str | Path) -> np.ndarray:
    """`crop_largest_face`'s crop alone, for callers that do not report how many faces there were."""
    return crop_largest_face(img, size, source=source).crop


def several_faces_note(source: str | Path, num_faces: int) -> str:
    """The one line the commands print when a photo shows several faces, so a user knows which one was used."""
    return f"{source}: {num_faces} faces found; the largest was used"


_cascades: dict[str, cv2.CascadeClassifier] = {}


def _cascade(name: str) -> cv2.CascadeClassifier:
    """A cascade shipped with OpenCV, loaded once per process."""
    if name not in _cascades:
        cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / name))
        if cascade.empty():
            raise RuntimeError(f"OpenCV's {name} is missing from {cv2.data.haarcascades}: reinstall opencv")
        _cascades[name] = cascade
    return _cascades[name]


def _run_cascade(name: str, grey: np.ndarray, min_side: int) -> list[tuple[Box, int]]:
    """Hits of one cascade as (box, support): support counts the raw detections OpenCV grouped into the box."""
    found, support = _cascade(name).detectMultiScale2(
        grey, scaleFactor=SCALE_STEP, minNeighbors=MIN_NEIGHBOURS, minSize=(min_side, min_side)
    )
    return [(Box(float(x), float(y), float(w), float(h)), int(n)) for (x, y, w, h), n in zip(found, support)]


def _fallback_hits(grey: np.ndarray, min_side: int) -> list[tuple[Box, int]]:
    """Profile faces (both sides) and rolled frontal faces, in the coordinates of `grey`."""
    width = grey.shape[1]
    hits = _run_cascade(PROFILE_CASCADE, grey, min_side)
    mirrored = _run_cascade(PROFILE_CASCADE, np.ascontiguousarray(grey[:, ::-1]), min_side)
    hits += [(Box(width - box.x - box.w, box.y, box.w, box.h), n) for box, n in mirrored]
    for angle in ROLL_ANGLES:
        hits += _rolled_hits(grey, angle, min_side)
    return hits


def _rolled_hits(grey: np.ndarray, angle: float, min_side: int) -> list[tuple[Box, int]]:
    """Frontal faces in `grey` rotated by `angle` degrees, mapped back as upright boxes around the face centre."""
    height, width = grey.shape
    cos, sin = abs(math.cos(math.radians(angle))), abs(math.sin(math.radians(angle)))
    out_w, out_h = round(width * cos + height * sin), round(width * sin + height * cos)  # the whole image fits
    rotation = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    rotation[:, 2] += ((out_w - width) / 2, (out_h - height) / 2)
    rotated = cv2.warpAffine(grey, rotation, (out_w, out_h), borderMode=cv2.BORDER_REPLICATE)
    back = cv2.invertAffineTransform(rotation)
    hits = []
    for box, support in _run_cascade(FRONTAL_CASCADE, rotated, min_side):
        cx, cy = back @ np.array([*box.center, 1.0])
        hits.append((Box.around(float(cx), float(cy), box.w, box.h), support))
    return hits


def _merge(hits: list[tuple[Box, int]]) -> list[tuple[Box, int]]:
    """Group hits overlapping by more than `MERGE_IOU` into one face: the support-weighted mean box, summed support."""
    groups: list[list[tuple[Box, int]]] = []
    for hit in sorted(hits, key=lambda h: h[0].area, reverse=True):
        group = next((g for g in groups if g[0][0].iou(hit[0]) > MERGE_IOU), None)
        if group is None:
            groups.append([hit])
        else:
            group.append(hit)
    faces = []
    for group in groups:
        params = np.array([[*box.center, box.w, box.h] for box, _ in group])  # (hits, 4) cx, cy, w, h
        weights = np.array([support for _, support in group], dtype=float)
        cx, cy, w, h = (weights @ params / weights.sum()).tolist()
        faces.append((Box.around(cx, cy, w, h), int(weights.sum())))
    return faces
