"""Each face's head pose drawn on it, so a person can see how closely the hits hold the query's pose (issue 16).

The index's pose codes have no readable units, and real frames have no labels; dlib (the evaluation's independent
judge, `model.evaluation.landmarks`, in the `eval` extra) measures every shown face instead: its 68 landmarks are
drawn as dots, the direction the face points as an arrow from the nose tip (right for a positive yaw, up for a
lifted chin), and yaw, pitch, roll and mouth opening are written under it beside the query's. A face dlib does not
find says so; without the `eval` extra the page says what to install.
"""

from __future__ import annotations

import cv2
import numpy as np

from model.evaluation.landmarks import FaceMeasure

DRAW_SIZE = 160  # faces are enlarged to this side before drawing, so dots and the arrow stay visible
DOT = (80, 220, 255)  # landmark colour
ARROW = (255, 70, 70)  # facing direction
ARROW_LENGTH = 0.35  # of the picture's side at 90 degrees
NOSE_TIP = 30  # dlib's landmark index


def draw_pose(img: np.ndarray, measure: FaceMeasure | None) -> np.ndarray:
    """`img` (RGB uint8) enlarged to `DRAW_SIZE` with `measure`'s landmarks and facing arrow drawn on it."""
    scale = DRAW_SIZE / max(img.shape[:2])
    out = cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)), interpolation=cv2.INTER_CUBIC)
    if measure is None:
        return out
    for x, y in measure.landmarks * scale:
        cv2.circle(out, (round(x), round(y)), 1, DOT, -1, lineType=cv2.LINE_AA)
    nose = measure.landmarks[NOSE_TIP] * scale
    reach = ARROW_LENGTH * DRAW_SIZE
    tip = nose + reach * np.array([np.sin(np.radians(measure.yaw)), -np.sin(np.radians(measure.pitch))])
    cv2.arrowedLine(
        out,
        tuple(np.round(nose).astype(int)),
        tuple(np.round(tip).astype(int)),
        ARROW,
        2,
        line_type=cv2.LINE_AA,
        tipLength=0.25,
    )
    return out


def pose_caption(measure: FaceMeasure | None, query: FaceMeasure | None = None) -> str:
    """ "yaw 12° pitch -3° roll 1° mouth 0.12", with the difference from the query's in brackets when given."""
    if measure is None:
        return "no face found by dlib"
    parts = []
    for name, unit, value in (
        ("yaw", "°", measure.yaw),
        ("pitch", "°", measure.pitch),
        ("roll", "°", measure.roll),
        ("mouth", "", measure.mouth_open),
    ):
        text = f"{name} {value:.0f}{unit}" if unit else f"{name} {value:.2f}"
        if query is not None:
            reference = getattr(query, "mouth_open" if name == "mouth" else name)
            text += f" ({value - reference:+.0f})" if unit else f" ({value - reference:+.2f})"
        parts.append(text)
    return "  ".join(parts)
