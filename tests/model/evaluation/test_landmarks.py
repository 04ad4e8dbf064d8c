"""dlib's landmark judge, checked against SynthVox's exact pose: head-pose signs and order, mouth openness, and the
AKD / CSIM definitions; and the reenactment scores over detected pairs only, on measures made by hand."""

from __future__ import annotations

import numpy as np
import pytest

from model.data.synthvox import Identity, Pose, render
from model.evaluation.landmarks import FaceMeasure, LandmarkModel, akd, csim, reenactment_scores

SIZE = 64  # the shipped model's frame side: the judge must work at it


@pytest.fixture(scope="module")
def judge() -> LandmarkModel:
    return LandmarkModel()


def test_head_pose_follows_synthvox_ground_truth(judge: LandmarkModel) -> None:
    measured = {}
    for name, pose in {
        "left": Pose(yaw=-30),
        "front": Pose(),
        "right": Pose(yaw=30),
        "down": Pose(pitch=-20),
        "up": Pose(pitch=20),
        "ccw": Pose(roll=15),
        "cw": Pose(roll=-15),
    }.items():
        faces = [judge.measure(render(Identity.from_seed(1, i), pose, SIZE)) for i in range(4)]
        found = [f for f in faces if f is not None]
        assert len(found) >= 3, name  # a lowered head sometimes defeats the HOG detector at 64 px
        measured[name] = np.mean([f.pose()[:3] for f in found], axis=0)  # (yaw, pitch, roll)
    assert measured["left"][0] < -15 < measured["front"][0] < 15 < measured["right"][0]
    assert measured["down"][1] < measured["front"][1] < measured["up"][1]
    assert measured["cw"][2] < -8 and measured["ccw"][2] > 8


def test_mouth_openness_grows_with_the_mouth(judge: LandmarkModel) -> None:
    closed, opened = (judge.measure(render(Identity.from_seed(1, 0), Pose(mouth_open=m), SIZE)) for m in (0.0, 1.0))
    assert opened.mouth_open > closed.mouth_open + 0.1


def test_akd_and_csim_definitions(judge: LandmarkModel) -> None:
    a = judge.measure(render(Identity.from_seed(1, 0), Pose(), SIZE), descriptor=True)
    b = judge.measure(render(Identity.from_seed(1, 0), Pose(yaw=25), SIZE), descriptor=True)
    assert akd([a], [a]) == (0.0, 1) and csim([a], [a])[0] == pytest.approx(1.0)
    distance, pairs = akd([a, None], [b, b])  # a pair without a face is left out
    assert pairs == 1 and distance > 1.0
    assert np.isnan(akd([None], [b])[0])


def test_landmarks_of_a_larger_picture_can_be_given_in_the_smaller_ones_pixels(judge: LandmarkModel) -> None:
    """A reenactment drawn at twice the frames' size is compared with them in their pixels: AKD between the two
    renderings of one face is under a pixel with `side`, about the face's size without it."""
    small = judge.measure(render(Identity.from_seed(1, 0), Pose(), SIZE))
    big = render(Identity.from_seed(1, 0), Pose(), 2 * SIZE)
    assert akd([small], [judge.measure(big, side=SIZE)])[0] < 1.0
    assert akd([small], [judge.measure(big)])[0] > 10.0


def test_a_blank_image_has_no_face(judge: LandmarkModel) -> None:
    assert judge.measure(np.full((SIZE, SIZE, 3), 128, np.uint8)) is None


def _face(offset: float, descriptor: list[float]) -> FaceMeasure:
    """A measure by hand: landmarks on a line shifted by `offset` pixels, a 2-d stand-in descriptor."""
    points = np.stack([np.arange(68.0), np.zeros(68)], axis=1) + offset
    return FaceMeasure(points, 0.0, 0.0, 0.0, 0.3, 0.3, np.array(descriptor))


def test_akd_and_csim_count_only_pairs_where_the_faces_are_found() -> None:
    driver, source, good, far = _face(0, [0, 1]), _face(10, [1, 0]), _face(1, [1, 0]), _face(50, [1, 1])
    # pair 0: every face found; 1: no face in the reenactment; 2: none in the source frame; 3: none in the driver
    driving = [driver, driver, driver, None]
    sources = [source, source, None, source]
    reenacted = [good, None, far, good]
    scores = reenactment_scores(driving, sources, reenacted, same_person=(0.8, 5))
    assert scores.akd.to_json() == {
        "model": pytest.approx(np.sqrt(2)),
        "source": pytest.approx(10 * np.sqrt(2)),
        "pairs": 1,
        "source_all": pytest.approx(10 * np.sqrt(2)),
        "source_all_pairs": 2,
    }
    assert scores.faces_detected.to_json() == {"reenacted": 0.75, "driving": 0.75, "source": 0.75}
    assert scores.missing_face_rate.to_json() == {"model": pytest.approx(1 / 3), "source": pytest.approx(1 / 3)}
    csim_scores = scores.csim.to_json()  # source vs reenactment where both are found: pairs 0 and 3, both alike
    assert (csim_scores["model"], csim_scores["pairs"]) == (pytest.approx(1.0), 2)
    assert (csim_scores["same_person"], csim_scores["same_person_pairs"]) == (0.8, 5)
    assert csim_scores["ratio"] == pytest.approx(1.25)
    # no reenactment with a face: nothing to average, and every driver's face is missed
    none = reenactment_scores(driving, sources, [None] * 4, same_person=(0.8, 5))
    assert np.isnan(none.akd.model) and none.akd.pairs == 0 and np.isnan(none.csim.model)
    assert none.missing_face_rate.model == 1.0 and np.isnan(none.csim.ratio)
