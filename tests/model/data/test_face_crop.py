"""Face detection and cropping on a real photo (`skimage.data.astronaut`) and on arrays with known answers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from skimage import data

from model.data import face_crop
from model.data.errors import DataError
from model.data.face_crop import FACE_MARGIN, Box, crop_face, crop_square, detect_faces, face_square

# Where the astronaut's face is in the 512×512 photo, read off the picture: the tip of the nose.
ASTRONAUT_FACE_CENTER = (223.0, 114.0)
ASTRONAUT_FACE_SIDE = (80.0, 130.0)  # brows-to-chin box sides any sane detector gives


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return data.astronaut()


def _near(point: tuple[float, float], target: tuple[float, float], tolerance: float) -> bool:
    return float(np.hypot(point[0] - target[0], point[1] - target[1])) < tolerance


def rotate(img: np.ndarray, degrees: float, center: tuple[float, float]) -> np.ndarray:
    rotation = cv2.getRotationMatrix2D(center, degrees, 1.0)
    return cv2.warpAffine(img, rotation, img.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)


def test_box_geometry() -> None:
    box = Box(10, 20, 40, 20)
    assert box.center == (30, 30)
    assert box.area == 800
    assert Box.around(30, 30, 40, 20) == box
    assert box.scaled(0.5) == Box(5, 10, 20, 10)
    assert box.iou(box) == 1.0
    assert box.iou(Box(100, 100, 5, 5)) == 0.0
    assert box.iou(Box(30, 20, 40, 20)) == pytest.approx(1 / 3)  # half of each overlaps


def test_astronaut_face_is_found(astronaut: np.ndarray) -> None:
    faces = detect_faces(astronaut)
    assert len(faces) == 1
    assert _near(faces[0].center, ASTRONAUT_FACE_CENTER, 15)
    assert ASTRONAUT_FACE_SIDE[0] < faces[0].w < ASTRONAUT_FACE_SIDE[1]


def test_crop_face_holds_a_centred_face(astronaut: np.ndarray) -> None:
    crop = crop_face(astronaut, 128, source="astronaut.png")
    assert crop.shape == (128, 128, 3) and crop.dtype == np.uint8
    faces = detect_faces(crop)
    assert faces, "the crop should still show a face"
    # The whole head with some background: the face box is about 1/FACE_MARGIN of the crop, near its middle.
    assert 0.7 / FACE_MARGIN < faces[0].w / 128 < 1.3 / FACE_MARGIN
    assert _near(faces[0].center, (64, 64 + 0.15 * 128 / FACE_MARGIN), 12)


def test_rolled_head_is_found(astronaut: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    tilted = rotate(astronaut, 25, ASTRONAUT_FACE_CENTER)
    with monkeypatch.context() as patch:
        patch.setattr(face_crop, "ROLL_ANGLES", ())
        assert detect_faces(tilted) == []  # 25 degrees of roll defeats the upright and profile cascades...
    faces = detect_faces(tilted)  # ... and the rotated passes find it
    assert faces
    assert _near(faces[0].center, ASTRONAUT_FACE_CENTER, 20)


def test_largest_face_first(astronaut: np.ndarray) -> None:
    small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    pair = np.concatenate([astronaut, np.pad(small, ((0, 256), (0, 0), (0, 0)), mode="edge")], axis=1)
    faces = detect_faces(pair)
    assert len(faces) == 2
    assert faces[0].area > faces[1].area
    assert _near(faces[0].center, ASTRONAUT_FACE_CENTER, 15)
    assert _near(faces[1].center, (512 + ASTRONAUT_FACE_CENTER[0] / 2, ASTRONAUT_FACE_CENTER[1] / 2), 10)


def test_blank_image_has_no_face() -> None:
    blank = np.full((240, 320, 3), 128, np.uint8)
    assert detect_faces(blank) == []
    with pytest.raises(DataError, match="no face") as err:
        crop_face(blank, 64, source="/photos/blank.jpg")
    assert str(err.value).startswith("/photos/blank.jpg: ")


def test_face_square_is_a_raised_square_with_margin() -> None:
    square = face_square(Box(100, 100, 40, 50), margin=2.0)
    assert square.w == square.h == 100  # 2 × the longer side
    assert square.center[0] == 120  # centred across
    assert square.center[1] < 125  # raised toward the hair


def test_crop_square_inside_the_frame_is_a_plain_cut() -> None:
    img = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    np.testing.assert_array_equal(crop_square(img, Box(10, 5, 32, 32), 32), img[5:37, 10:42])


def test_crop_square_replicates_edges_outside_the_frame() -> None:
    img = np.random.default_rng(1).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    crop = crop_square(img, Box(-10, -5, 30, 30), 30)
    np.testing.assert_array_equal(crop[5:, 10:], img[:25, :20])
    np.testing.assert_array_equal(crop[5:, :10], np.repeat(img[:25, :1], 10, axis=1))  # left column repeated
    np.testing.assert_array_equal(crop[:5, 10:], np.repeat(img[:1, :20], 5, axis=0))  # top row repeated
    assert (crop[:5, :10] == img[0, 0]).all()  # the corner pixel fills the corner


def test_crop_square_wholly_outside_is_the_nearest_corner() -> None:
    img = np.random.default_rng(2).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    crop = crop_square(img, Box(200, 300, 20, 20), 16)
    assert crop.shape == (16, 16, 3)
    assert (crop == img[-1, -1]).all()


def test_crop_square_resizes_to_the_requested_size() -> None:
    img = np.zeros((100, 100, 3), np.uint8)
    img[:, 50:] = 255
    down = crop_square(img, Box(0, 0, 100, 100), 10)
    up = crop_square(img, Box(40, 40, 20, 20), 64)
    assert down.shape == (10, 10, 3) and up.shape == (64, 64, 3)
    assert (down[:, :4] == 0).all() and (down[:, 6:] == 255).all()  # the edge stays where it was
    assert (up[:, :28] == 0).all() and (up[:, 36:] == 255).all()
