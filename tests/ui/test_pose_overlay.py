"""ui/pose_overlay.py: the landmarks and the facing arrow land where the pose says, and the captions compare."""

from __future__ import annotations

import numpy as np

from model.evaluation.landmarks import FaceMeasure
from ui.pose_overlay import ARROW, DRAW_SIZE, NOSE_TIP, draw_pose, pose_caption


def measure(yaw: float, pitch: float) -> FaceMeasure:
    landmarks = np.full((68, 2), 32.0)  # every point at the centre of a 64 px face, the nose tip included
    return FaceMeasure(landmarks, yaw, pitch, 0.0, 0.1, 0.3, None)


def arrow_centre(img: np.ndarray) -> np.ndarray:
    """Mean (x, y) of the arrow's pixels."""
    ys, xs = np.nonzero(np.all(np.abs(img.astype(int) - ARROW) < 40, axis=2))
    return np.array([xs.mean(), ys.mean()])


def test_the_arrow_points_where_the_face_turns() -> None:
    face = np.full((64, 64, 3), 30, np.uint8)
    centre = np.full(2, DRAW_SIZE / 2)
    assert draw_pose(face, None).shape == (DRAW_SIZE, DRAW_SIZE, 3)
    right = arrow_centre(draw_pose(face, measure(40, 0))) - centre
    assert right[0] > 10 and abs(right[1]) < 3  # yaw to image right
    up = arrow_centre(draw_pose(face, measure(0, 40))) - centre
    assert up[1] < -10 and abs(up[0]) < 3  # chin lifted: the face points up
    assert NOSE_TIP == 30


def test_captions_give_the_pose_and_its_difference_from_the_query() -> None:
    query, hit = measure(10, -5), measure(14, 0)
    assert pose_caption(query) == "yaw 10°  pitch -5°  roll 0°  mouth 0.10"
    assert pose_caption(hit, query) == "yaw 14° (+4)  pitch 0° (+5)  roll 0° (+0)  mouth 0.10 (+0.00)"
    assert pose_caption(None, query) == "no face found by dlib"
